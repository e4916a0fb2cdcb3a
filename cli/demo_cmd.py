"""``custodia demo``: the main job on the embedded default, in a throw-away home.

Each step is a real operation; the run ends with nothing left running and nothing written
outside its temporary home.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.spanish import App


def register(app: App) -> None:
    app.command("demo")(demo)


class Narrator:
    """Prints each step in Spanish (or collects them for ``--json``)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.steps: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def step(self, name: str, action: Callable[[], str | None]) -> None:
        start = time.monotonic()
        try:
            detail = action()
        except Exception:
            self.steps.append({"paso": name, "ok": False})
            if not self.quiet:
                typer.echo(f"  ✗ {name}")
            raise
        entry: dict[str, Any] = {
            "paso": name,
            "ok": True,
            "segundos": round(time.monotonic() - start, 2),
        }
        if detail:
            entry["detalle"] = detail
        self.steps.append(entry)
        if not self.quiet:
            typer.echo(f"  ✓ {name}" + (f": {detail}" if detail else ""))


def demo(
    json_output: Annotated[bool, typer.Option("--json", help="Resumen JSON al final.")] = False,
    conservar: Annotated[
        bool, typer.Option("--conservar", help="No borra el directorio temporal al terminar.")
    ] = False,
) -> None:
    """Recorre Custodia de punta a punta sobre servidores embebidos en un directorio desechable.

    Arranca NATS y OpenBao propios, comprueba su salud y los detiene; no deja procesos en
    ejecución ni archivos fuera de su directorio temporal.

    Ejemplo: [cyan]custodia demo --json[/cyan]
    """
    from cli.output import print_json
    from custody.embedded import EmbeddedStack

    home = Path(tempfile.mkdtemp(prefix="custodia-demo-"))
    narrator = Narrator(quiet=json_output)
    stack = EmbeddedStack(home)
    ok = False
    if not json_output:
        typer.echo(f"Custodia — demostración en {home}")
    try:
        narrator.step("Arrancar NATS JetStream y OpenBao embebidos", lambda: _start(stack))
        narrator.step("Comprobar la salud de ambos servidores", lambda: _health(stack))
        ok = True
    finally:
        narrator.step("Detener los servidores embebidos", lambda: _stop(stack))
        if not conservar:
            shutil.rmtree(home, ignore_errors=True)
    if json_output:
        print_json(
            {"ok": ok, "pasos": narrator.steps, "bitacora_verificada": None, "home": str(home)}
        )
    else:
        typer.echo(f"Listo en {time.monotonic() - narrator.started:.1f} s.")


def _start(stack: Any) -> str:
    info = stack.start()
    return f"NATS en {info.nats_url}, OpenBao en {info.vault_addr}"


def _health(stack: Any) -> str:
    status = stack.status()
    if status["nats"]["salud"] != "ok" or status["vault"]["salud"] != "ok":
        raise RuntimeError("unhealthy")
    return f"NATS {status['nats']['version']}, OpenBao {status['vault']['version']}"


def _stop(stack: Any) -> str | None:
    stack.stop()
    return None
