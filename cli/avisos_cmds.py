"""``custodia avisos``: the e-mail notices the ledger made due, sent and pending (issue 19)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.remote import call, show
from cli.spanish import App

avisos = App(name="avisos", help="Avisos por correo: enviados y pendientes.")


@avisos.command("lista")
def avisos_lista(
    json_output: Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")] = False,
) -> None:
    """Los avisos por correo (incidentes, designaciones, rotaciones pendientes), enviados y
    pendientes; sin CUSTODIA_SMTP_URL todos quedan pendientes (coadministración, Secretaría
    Ejecutiva).

    Ejemplo: [cyan]custodia avisos lista --json[/cyan]
    """
    rows = call("avisos.lista", {})
    if not json_output:
        keys = ("aviso", "tipo", "destinatario", "estado", "intentos", "enviado")
        rows = [{k: r.get(k) for k in keys} for r in rows]
    show(rows, json_output, "Avisos")


def register(app: App) -> None:
    app.add_typer(avisos, name="avisos")
