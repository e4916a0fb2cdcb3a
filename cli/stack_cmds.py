"""``custodia init``, ``estado``, ``detener``: the embedded servers of a ``CUSTODIA_HOME``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.spanish import App

JsonOption = Annotated[
    bool, typer.Option("--json", help="Salida JSON para scripts (claves documentadas en CLI.md).")
]


def register(app: App) -> None:
    """Add the stack commands to the root app."""
    app.command("estado")(estado)
    app.command("detener")(detener)
    app.command("arrancar", hidden=True)(arrancar)


def arrancar(json_output: JsonOption = False) -> None:
    """Arranca (o reutiliza) los servidores embebidos NATS y OpenBao de este CUSTODIA_HOME.

    Ejemplo: [cyan]CUSTODIA_HOME=/tmp/c custodia arrancar[/cyan]
    """
    from custody.config import Settings
    from custody.embedded import EmbeddedStack

    settings = Settings.from_env()
    info = EmbeddedStack(settings.home).start()
    if json_output:
        from cli.output import print_json

        print_json({"nats": {"url": info.nats_url}, "vault": {"addr": info.vault_addr}})
    else:
        typer.echo(f"NATS: {info.nats_url}\nOpenBao: {info.vault_addr}")


def estado(json_output: JsonOption = False) -> None:
    """Muestra qué está en ejecución para este CUSTODIA_HOME: NATS y OpenBao (embebidos o
    externos), sus direcciones, salud y versiones, y el servicio.

    Ejemplo: [cyan]custodia estado --json[/cyan]
    """
    from cli.output import console, print_json
    from custody.config import Settings
    from custody.embedded import EmbeddedStack

    settings = Settings.from_env()
    status = EmbeddedStack(settings.home).status()
    if settings.nats_url:
        status["nats"] = {
            "url": settings.nats_url,
            "embebido": False,
            "salud": _probe_nats(settings.nats_url),
        }
    if settings.vault_addr:
        status["vault"] = {
            "addr": settings.vault_addr,
            "embebido": False,
            "salud": _probe_vault(settings.vault_addr),
        }
    status["home"] = str(settings.home)
    if json_output:
        print_json(status)
        return
    from rich.table import Table

    table = Table(title=f"Custodia en {settings.home}", title_justify="left")
    table.add_column("Componente")
    table.add_column("Dirección")
    table.add_column("Embebido")
    table.add_column("Salud")
    table.add_column("Versión")
    for label, key, addr_key in (("NATS JetStream", "nats", "url"), ("OpenBao", "vault", "addr")):
        item = status[key]
        table.add_row(
            label,
            str(item.get(addr_key) or "—"),
            "sí" if item.get("embebido") else "no",
            _salud(str(item.get("salud"))),
            str(item.get("version") or "—"),
        )
    servicio = status["servicio"]
    table.add_row("Servicio", "—", "—", "activo" if servicio["activo"] else "detenido", "—")
    console().print(table)


def _salud(value: str) -> str:
    return {
        "ok": "[green]en línea[/green]",
        "detenido": "[dim]detenido[/dim]",
        "sellado": "[red]sellado[/red]",
        "sin_inicializar": "[yellow]sin inicializar[/yellow]",
        "sin_respuesta": "[red]sin respuesta[/red]",
    }.get(value, value)


def _probe_nats(url: str) -> str:
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), 2):
            return "ok"
    except OSError:
        return "sin_respuesta"


def _probe_vault(addr: str) -> str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(addr + "/v1/sys/health", timeout=2) as response:  # noqa: S310
            return "ok" if response.status == 200 else "sin_respuesta"
    except urllib.error.HTTPError as exc:
        return {503: "sellado", 501: "sin_inicializar"}.get(exc.code, "sin_respuesta")
    except OSError:
        return "sin_respuesta"


def detener() -> None:
    """Detiene limpiamente los servidores embebidos (y el servicio) de este CUSTODIA_HOME.

    Ejemplo: [cyan]custodia detener[/cyan]
    """
    from custody.config import Settings
    from custody.embedded import EmbeddedStack

    settings = Settings.from_env()
    if EmbeddedStack(settings.home).stop():
        typer.echo("Servidores embebidos detenidos.")
    else:
        typer.echo("No había servidores embebidos en ejecución.")
