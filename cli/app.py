"""The ``custodia`` typer application: one sub-app per area, each command a thin wrapper.

Heavy libraries (hvac, nats, eventsourcing, cryptography, structlog) are imported inside the
commands, never at module level, so ``custodia --help`` stays fast.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli import (
    avisos_cmds,
    bitacora_cmds,
    controles_cmds,
    demo_cmd,
    ordenes,
    reporte_cmds,
    stack_cmds,
    web_cmd,
)
from cli.spanish import App

if TYPE_CHECKING:
    from typer._click import Command

# Set by cli.main.run: a --help anywhere means nothing runs, so nothing heavy is imported.
HELP_ONLY = False

app = App(
    name="custodia",
    help=(
        "[bold]Custodia[/bold]: custodia de las credenciales de las cuentas de redes sociales "
        "de las 33 Direcciones Distritales del IECM y bitácora a prueba de alteraciones de "
        "todo lo que les ocurre (Lineamientos UTCSyD/LI/03).\n\n"
        "Ejemplo: [cyan]custodia demo[/cyan] recorre un escenario completo en un directorio "
        "desechable."
    ),
    add_completion=True,
)

demo_cmd.register(app)
stack_cmds.register(app)
ordenes.register(app)
bitacora_cmds.register(app)
reporte_cmds.register(app)
avisos_cmds.register(app)
web_cmd.register(app)
controles_cmds.register_commands(app)


@app.callback()
def _configure() -> None:
    # Runs before every command: structlog is configured once, here, as soon as anything
    # imports it (not for --help, which must stay light; a data command never imports it).
    if HELP_ONLY:
        return
    from cli.logging import configure_on_import

    configure_on_import()


def command_for(args: Sequence[str]) -> Command:
    """The click command that runs ``args``. typer builds every parameter of every command it
    is given, which costs more than a data command's round trip, so: when ``args`` start with
    an area or a command, a tree with only that branch; for the top-level help, the names and
    summaries only; the whole tree for anything else (a usage error, the completion options,
    shell completion, which reads its words from the environment)."""
    import typer.main

    chosen = app
    first = args[0] if args else ""
    if "_CUSTODIA_COMPLETE" in os.environ:
        pass
    elif first in ("", "-h", "--help"):
        chosen = _summaries()
    elif not first.startswith("-"):
        groups = [g for g in app.registered_groups if g.name == first]
        commands = [c for c in app.registered_commands if c.name == first]
        if groups or commands:
            chosen = copy.copy(app)
            chosen.registered_groups = groups
            chosen.registered_commands = commands
    return typer.main.get_command(chosen)


def _summaries() -> App:
    """The app as the top-level help sees it: every area without its commands, every command
    without its parameters (their help texts, panels and flags kept)."""
    listing = copy.copy(app)
    listing.registered_groups = []
    for group in app.registered_groups:
        shallow = copy.copy(group)
        if group.typer_instance is not None:
            shallow.typer_instance = copy.copy(group.typer_instance)
            shallow.typer_instance.registered_groups = []
            shallow.typer_instance.registered_commands = []
        listing.registered_groups.append(shallow)
    listing.registered_commands = []
    for command in app.registered_commands:
        summary = copy.copy(command)
        if command.help is not None:  # else typer takes the summary from the function
            summary.callback = _never_run
        listing.registered_commands.append(summary)
    return listing


def _never_run() -> None:
    # Stands for a command in the top-level help's listing (no docstring: it is never shown).
    raise AssertionError("the top-level help's tree runs no command")
