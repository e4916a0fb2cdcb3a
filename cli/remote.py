"""Calling ``custodia servicio`` from a command: session, endpoints, one request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # at run time imported by the functions that need them (a thin client)
    from custody.config import Settings
    from custody.vault.session import Session


def settings() -> Settings:
    from custody.config import Settings

    return Settings.from_env()


def session() -> Session:
    from custody.vault import session as sessions

    current = settings()
    return sessions.load(sessions.session_path(current))


def vault_verify() -> bool | str:
    """What to verify OpenBao's certificate with: ``CUSTODIA_VAULT_CACERT``, else the system."""
    ca = settings().vault_ca
    return str(ca) if ca else True


def call(command: str, args: dict[str, Any] | None = None, *, anonymous: bool = False) -> Any:
    """Send ``command`` with the current session's token; the reply data."""
    from custody.bootstrap import resolve
    from custody.service.client import CommandClient

    current = settings()
    opened = None if anonymous else session()
    endpoints = resolve(current, "cliente")
    clean = {k: v for k, v in (args or {}).items() if v is not None}
    # The session's token is also the person's NATS credential (custody.service.callout).
    return CommandClient(
        endpoints,
        opened.token if opened else None,
        username=opened.username if opened else None,
    ).call(command, clean)


def channel_args(
    oficio: str | None, memorandum: str | None, correo_oficial: str | None, fecha: str | None
) -> dict[str, Any]:
    return {
        "oficio": oficio,
        "memorandum": memorandum,
        "correo_oficial": correo_oficial,
        "fecha": fecha,
    }


# Keys (JSON, unaccented for scripts) as a person reads them in a table or a key: value line.
_LABELS = {
    "codigo": "código",
    "descripcion": "descripción",
    "destruccion_pendiente": "destrucción pendiente",
    "excepcion": "excepción",
    "lista_verificacion": "lista de verificación",
    "linea": "línea",
    "motivo_decision": "motivo de la decisión",
    "periodo": "periodo",
    "telefono": "teléfono",
    "ultima_alerta": "última alerta",
    "ultimo_error": "último error",
    "version": "versión",
    "version_descartada": "versión descartada",
    "version_preparada": "versión preparada",
    "via_oficial": "vía oficial",
    "violaciones": "incumplimientos",
}


def label(key: str) -> str:
    """How ``key`` is shown to a person (``via_oficial`` → ``vía oficial``)."""
    return _LABELS.get(key) or key.replace("_", " ")


def show(data: Any, json_output: bool, title: str | None = None) -> None:
    """``--json``: the data as is; otherwise a rich table (lists) or key: value lines."""
    from cli.output import print_json

    if json_output:
        print_json(data)
        return
    if isinstance(data, dict):
        # Plain lines, not rich: importing rich costs a one-record command (``sesion quien``)
        # as much as its round trip (issue 17, the thin client); a value is printed as it is,
        # never read as rich markup.
        if title:
            typer.echo(typer.style(title, bold=True))
        for key, value in data.items():
            typer.echo(f"  {label(key)}: {_cell(value)}")
        return
    from cli.output import console, text

    out = console()
    if isinstance(data, list):
        if not data:
            out.print(text("Sin resultados.", "dim"))
            return
        from rich.table import Table

        # Cells and title as rich text: a value is shown as written, never read as markup.
        table = Table(title=None if title is None else text(title), title_justify="left")
        keys = list(data[0].keys())
        for key in keys:
            table.add_column(text(label(key)), overflow="fold")
        for row in data:
            table.add_row(*(text(_cell(row.get(k))) for k in keys))
        out.print(table)
        return
    typer.echo(str(data))


_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")


def spanish_datetime(text: str) -> str | None:
    """An ISO 8601 instant shown in Mexico City time, Spanish style (``28 nov 2026 23:16``)."""
    if len(text) < 19 or text[4] != "-" or text[10] != "T":
        return None
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    local = instant.astimezone(ZoneInfo("America/Mexico_City"))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M}"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return spanish_datetime(value) or value
    if value is True:
        return "sí"
    if value is False:
        return "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(k if v is None else f"{k}={v}" for k, v in value.items()) or "—"
    return str(value)
