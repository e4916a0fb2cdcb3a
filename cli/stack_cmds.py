"""``custodia init``, ``estado``, ``detener``: the embedded servers of a ``CUSTODIA_HOME``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

import typer

from cli.spanish import App

JsonOption = Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")]


def register(app: App) -> None:
    """Add the stack commands to the root app."""
    app.command("init")(init)
    app.command("servicio")(servicio)
    app.command("estado")(estado)
    app.command("detener")(detener)
    app.command("arrancar", hidden=True)(arrancar)
    app.command("servicio-lectura", hidden=True)(servicio_lectura)


def arrancar(json_output: JsonOption = False) -> None:
    """Arranca (o reutiliza) los servidores embebidos NATS y OpenBao de este CUSTODIA_HOME.

    Ejemplo: [cyan]CUSTODIA_HOME=/tmp/c custodia arrancar[/cyan]
    """
    from custody.config import Settings
    from custody.stack.embedded import EmbeddedStack

    settings = Settings.from_env()
    info = EmbeddedStack(settings.home).start()
    if json_output:
        from cli.output import print_json

        print_json({"nats": {"url": info.nats_url}, "vault": {"addr": info.vault_addr}})
    else:
        typer.echo(f"NATS: {info.nats_url}\nOpenBao: {info.vault_addr}")


def estado(json_output: JsonOption = False) -> None:
    """Muestra qué está en ejecución para este CUSTODIA_HOME: NATS y OpenBao (embebidos o
    externos), sus direcciones, salud y versiones, el servicio, y la integridad de la bitácora
    (la última alerta del seguidor que firma los puntos de control, si la hay).

    Ejemplo: [cyan]custodia estado --json[/cyan]
    """
    from cli.output import console, print_json, text
    from custody.config import Settings
    from custody.stack.embedded import EmbeddedStack

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
    status["inicializado"] = bool(
        settings.vault_token or (settings.home / "secrets" / "servicio-token").exists()
    )
    status["bitacora"] = _ledger_integrity(settings.home)
    if json_output:
        print_json(status)
        return
    from rich.table import Table

    # Every cell as rich text (the console reads no markup; a table title would): the home's
    # path, an address or a server's version is shown as written.
    table = Table(title=text(f"Custodia en {settings.home}"), title_justify="left")
    for header in ("Componente", "Dirección", "Embebido", "Salud", "Versión"):
        table.add_column(text(header))
    for label, key, addr_key in (("NATS JetStream", "nats", "url"), ("OpenBao", "vault", "addr")):
        item = status[key]
        table.add_row(
            text(label),
            text(str(item.get(addr_key) or "—")),
            text("sí" if item.get("embebido") else "no"),
            _salud(str(item.get("salud"))),
            text(str(item.get("version") or "—")),
        )
    servicio = status["servicio"]
    row = ("Servicio", "—", "—", "activo" if servicio["activo"] else "detenido", "—")
    table.add_row(*(text(cell) for cell in row))
    ledger, detail = _ledger_text(status["bitacora"])
    table.add_row(text("Bitácora"), text("—"), text("—"), ledger, text("—"))
    console().print(table)
    if detail:
        console().print(text(detail))
    if not status["inicializado"]:
        console().print(
            text("Custodia no está inicializado aquí: ejecute «custodia init --usuario U».")
        )


# -- the ledger's integrity (issue 16): what the service last saw of the follower's alerts ------


def _ledger_integrity(home: Path) -> dict[str, Any]:
    """``bitacora`` in ``estado --json``: ``integra`` (None: the service has not checked yet),
    ``alertas``, ``ultima_alerta``, ``incidentes_abiertos``, ``revisado``."""
    from custody.app.ledger_status import read_status  # light: no NATS, no eventsourcing

    found = read_status(home)
    if found is None:
        return {
            "integra": None,
            "alertas": None,
            "ultima_alerta": None,
            "incidentes_abiertos": [],
            "revisado": None,
        }
    return found


_DIVERGENCES = {
    "reescrita": "entradas reescritas",
    "truncada": "bitácora recortada",
    "entrada_faltante": "falta una entrada",
    "bifurcada": "otra historia firmada",
    "cabeza_invalida": "cabeza anclada inválida",
}


def _ledger_text(ledger: dict[str, Any]) -> tuple[Any, str]:
    """The ``Bitácora`` row's health (rich text), and a line on the last alert (if any)."""
    from cli.output import text

    integra = ledger.get("integra")
    if integra is None:
        return text("sin revisar", "dim"), ""
    last = ledger.get("ultima_alerta") or None
    line = ""
    if isinstance(last, dict):
        where = f" desde la entrada {last['entrada']}" if last.get("entrada") else ""
        kind = _DIVERGENCES.get(str(last.get("tipo")), "contradice lo firmado")
        line = (
            f"Última alerta del seguidor de la bitácora ({last.get('fecha')}): {kind}{where}; "
            f"cabeza anclada de {last.get('tamano_anclado')} entradas; "
            f"incidente {last.get('incidente')}."
        )
    if integra:
        return text("íntegra", "green"), line
    count = ledger.get("alertas") or 0
    shown = text("ALTERADA", "red")
    shown.append(f" ({count} alerta{'s' if count != 1 else ''})")
    return shown, line


_SALUD: Final = {
    "ok": ("en línea", "green"),
    "detenido": ("detenido", "dim"),
    "sellado": ("sellado", "red"),
    "sin_inicializar": ("sin inicializar", "yellow"),
    "sin_respuesta": ("sin respuesta", "red"),
}


def _salud(value: str) -> Any:
    """A component's health as rich text (anything unknown, as written)."""
    from cli.output import text

    return text(*_SALUD.get(value, (value, "")))


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
    from custody.stack.embedded import EmbeddedStack

    settings = Settings.from_env()
    if EmbeddedStack(settings.home).stop():
        typer.echo("Servidores embebidos detenidos.")
    else:
        typer.echo("No había servidores embebidos en ejecución.")


def init(
    usuario: Annotated[
        str, typer.Option("--usuario", help="Usuario de la primera persona coadministradora.")
    ] = "coadmin",
    nombre: Annotated[str, typer.Option("--nombre", help="Su nombre (dato protegido).")] = "",
    correo: Annotated[str, typer.Option("--correo", help="Su correo institucional.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Lee la contraseña de la entrada estándar.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Inicializa Custodia: directorio de datos, servidores embebidos (si no hay externos),
    motores y políticas de OpenBao, los 33 distritos y la primera persona coadministradora.

    Se puede repetir sin efectos duplicados.

    Ejemplo: [cyan]echo "$CLAVE" | custodia init --usuario ana --password-stdin[/cyan]
    """
    import sys

    from custody.config import Settings
    from custody.runner import initialize

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        from cli.output import ask_secret

        password = ask_secret("Contraseña de la persona coadministradora", confirm=True)
    if len(password) < 12:
        from events.domain import ValidationError

        raise ValidationError("contrasena", "at least 12 characters")
    settings = Settings.from_env()
    result = initialize(
        settings, usuario, password, nombre or usuario, correo or f"{usuario}@iecm.mx"
    )
    data = {
        "nats": {"url": result.nats_url},
        "vault": {"addr": result.vault_addr},
        "coadministrador": result.first_user,
        "bitacora_creada": result.ledger_created,
        "politicas_aplicadas": result.layout_applied,
        "token_raiz_revocado": result.root_token_revoked,
    }
    if json_output:
        from cli.output import print_json

        print_json(data)
        return
    typer.echo(f"Custodia inicializada en {settings.home}")
    typer.echo(f"  NATS JetStream: {result.nats_url}")
    typer.echo(f"  OpenBao:        {result.vault_addr}")
    typer.echo(f"  Coadministración: {result.first_user}")
    if result.root_token_revoked:
        typer.echo("  El token raíz de OpenBao se revocó (ver README para generar otro).")
    if not result.layout_applied:
        typer.echo(
            "  Aviso: la configuración de OpenBao no se volvió a aplicar (no hay token raíz). "
            "Para aplicarla, un operador genera un token con «bao operator generate-root» y lo "
            "pasa en CUSTODIA_VAULT_TOKEN. La contraseña no se cambió."
        )


def servicio() -> None:
    """Ejecuta en primer plano el servicio de órdenes (el único que escribe la bitácora) y las
    proyecciones; arranca los servidores embebidos si no hay externos. Ctrl-C lo detiene.

    Ejemplo: [cyan]custodia servicio[/cyan]
    """
    import asyncio

    from cli.logging import configure
    from custody.config import Settings
    from custody.runner import serve

    configure(level="INFO")
    settings = Settings.from_env()

    def ready() -> None:
        typer.echo("Servicio de Custodia en ejecución (Ctrl-C para detener).", err=True)

    asyncio.run(serve(settings, ready=ready))


def servicio_lectura() -> None:
    """Proceso interno de ``custodia servicio``: proyecciones de reportes y puntos de control
    firmados de la bitácora. Lo arranca y lo detiene el servicio."""
    from cli.logging import configure
    from custody.config import Settings
    from custody.runner import build
    from custody.stack.readside import run

    configure(level="INFO")
    run(Settings.from_env(), build)
