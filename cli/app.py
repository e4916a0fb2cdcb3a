"""The ``custodia`` typer application: one sub-app per area, each command a thin wrapper.

Heavy libraries (hvac, nats, eventsourcing, cryptography, structlog) are imported inside the
commands, never at module level, so ``custodia --help`` stays fast.
"""

from __future__ import annotations

from cli import bitacora_cmds, controles_cmds, demo_cmd, ordenes, reporte_cmds, stack_cmds
from cli.spanish import App

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
controles_cmds.register_commands(app)


@app.callback()
def _configure() -> None:
    # Runs before every command: structlog is configured once, here (not for --help, which
    # must stay light).
    if HELP_ONLY:
        return
    from cli.logging import configure

    configure()
