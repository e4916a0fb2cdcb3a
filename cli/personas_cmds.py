"""``personas contacto`` and ``personas importar`` (issue 18): thin wrappers over the service's
``personas.contacto``, ``personas.alta``, ``personas.baja`` and ``personas.cambiar``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cli.movimientos import COLUMNS, MovementFileError, Step, parse_movements, parse_passwords, plan
from cli.remote import call, show
from cli.spanish import App

Json = Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")]


def contacto(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario de la persona.")],
    motivo: Annotated[
        str, typer.Option("--motivo", help="Para qué se consulta (queda en la bitácora).")
    ],
    json_output: Json = False,
) -> None:
    """Nombre, correo y teléfono de una persona (solo coadministración; 6.VII, 6.VIII). Cada
    consulta queda registrada en la bitácora antes de mostrarse (quién, de quién, cuándo y
    para qué; nunca los datos) y la ve la Secretaría Ejecutiva en «custodia reporte
    lecturas». Los datos de una persona borrada («personas borrar-datos») ya no se pueden leer.

    Ejemplo: [cyan]custodia personas contacto --usuario bety --motivo "confirmar su
    designación con el distrito"[/cyan]
    """
    data = call("personas.contacto", {"usuario": usuario, "motivo": motivo})
    show(data, json_output, "Datos de contacto")


IMPORT_HELP = (
    "Aplica en bloque los movimientos de personal del extracto de Recursos Humanos: altas, "
    "bajas y cambios de adscripción. Sin --aplicar solo muestra lo que cambiaría.\n\n"
    "El archivo es CSV (UTF-8, separado por comas) con estos encabezados: "
    f"[cyan]{','.join(COLUMNS)}[/cyan]\n\n"
    "- [bold]alta[/bold]: usuario, nombre, correo y rol; telefono opcional; distrito para "
    "titular (opcional para administrador). La contraseña inicial se pide oculta, o con "
    "--contrasenas-stdin se lee de la entrada estándar, una línea «usuario contraseña» por "
    "alta; nunca va en el archivo ni se muestra.\n"
    "- [bold]baja[/bold]: usuario, motivo (baja, promocion, cambio-adscripcion, otro) y "
    "oficio; como «personas baja»: terminan todos sus roles y su acceso.\n"
    "- [bold]cambio[/bold]: usuario, rol, distrito y oficio; la persona queda con ese único "
    "rol (los demás terminan como en «personas revocar»).\n"
    "- [bold]fecha[/bold]: fecha del oficio (AAAA-MM-DD), opcional. En baja y cambio no se "
    "usan nombre, correo ni telefono.\n\n"
    "Se revisan todos los renglones antes de aplicar alguno: con un solo error no se aplica "
    "nada. Un renglón ya en efecto sale «sin_cambios»: repetir el archivo no cambia nada. Si "
    "el servicio rechaza un renglón, se informa y se sigue con los demás (son personas "
    "distintas); la salida es distinta de cero y basta volver a ejecutar el archivo, "
    "corregido, para completar.\n\n"
    "Ejemplo: [cyan]custodia personas importar --archivo movimientos.csv[/cyan], luego "
    "[cyan]custodia personas importar --archivo movimientos.csv --aplicar[/cyan]"
)


def importar(
    archivo: Annotated[Path, typer.Option("--archivo", help="CSV de movimientos.")],
    aplicar: Annotated[
        bool, typer.Option("--aplicar", help="Aplica los movimientos (sin esto: solo muestra).")
    ] = False,
    contrasenas_stdin: Annotated[
        bool,
        typer.Option(
            "--contrasenas-stdin",
            help="Lee las contraseñas iniciales de las altas: «usuario contraseña» por línea.",
        ),
    ] = False,
    json_output: Json = False,
) -> None:
    from events.domain import ValidationError

    try:
        text = archivo.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(
            "no es texto UTF-8; en la hoja de cálculo, guárdelo como «CSV UTF-8».",
            param_hint="--archivo",
        ) from None
    except OSError as error:
        from cli.messages import file_problem

        raise typer.BadParameter(file_problem(error), param_hint="--archivo") from None
    try:
        movements = parse_movements(text)
        people = call("personas.lista")
        steps = plan(movements, people)
    except MovementFileError as error:
        _refuse(error.problems)
    pending = [s for s in steps if s.accion != "sin_cambios"]
    if not aplicar:
        rows = [s.row() for s in steps]
        if json_output:
            show({"aplicado": False, "cambios": len(pending), "filas": rows}, True)
            return
        _table(rows, "Movimientos (vista previa: no se aplicó nada)")
        if pending:
            typer.echo(f"{len(pending)} movimiento(s) por aplicar; use --aplicar para aplicarlos.")
        else:
            typer.echo("Nada que cambiar: el archivo ya está aplicado.")
        return
    passwords = _passwords([s for s in pending if s.accion == "alta"], contrasenas_stdin)
    results: list[dict[str, Any]] = []
    stopped = False
    for step in steps:
        row = step.row()
        if step.accion == "sin_cambios":
            results.append({**row, "resultado": "sin_cambios", "mensaje": None})
            continue
        if stopped:
            results.append({**row, "resultado": "no_intentado", "mensaje": None})
            continue
        try:
            _apply(step, passwords)
        except ValidationError as error:
            results.append({**row, "resultado": "rechazado", "mensaje": _message(error)})
        except Exception as error:
            from events.errors import CustodiaError

            if not isinstance(error, CustodiaError):
                raise
            message = _message(error)
            results.append({**row, "resultado": "rechazado", "mensaje": message})
            # The service unreachable, the session gone: every later row would fail the same.
            stopped = _infrastructure(error)
        else:
            results.append({**row, "resultado": "aplicado", "mensaje": None})
    counts = {k: sum(1 for r in results if r["resultado"] == k) for k in _RESULTS}
    if json_output:
        show({"aplicado": True, **counts, "filas": results}, True)
    else:
        _table(results, "Movimientos aplicados")
        if not pending:
            typer.echo("Nada que cambiar: el archivo ya está aplicado.")
        else:
            typer.echo(
                f"Aplicados: {counts['aplicado']}; rechazados: {counts['rechazado']}; "
                f"sin cambios: {counts['sin_cambios']}; no intentados: {counts['no_intentado']}."
            )
    if counts["rechazado"] or counts["no_intentado"]:
        from cli.messages import EXIT_DOMAIN

        typer.echo(
            "Error: no todos los movimientos se aplicaron; corrija y vuelva a ejecutar el "
            "archivo (lo ya aplicado sale «sin_cambios»).",
            err=True,
        )
        raise typer.Exit(EXIT_DOMAIN)


importar.__doc__ = IMPORT_HELP

_RESULTS = ("aplicado", "rechazado", "sin_cambios", "no_intentado")


def _refuse(problems: list[str]) -> NoReturn:
    from cli.messages import EXIT_USAGE

    typer.echo("Error: el archivo no se aplicó (ningún movimiento):", err=True)
    for problem in problems[:200]:
        typer.echo(f"  - {problem}", err=True)
    if len(problems) > 200:
        typer.echo(f"  … y {len(problems) - 200} más.", err=True)
    raise typer.Exit(EXIT_USAGE)


def _passwords(hires: list[Step], from_stdin: bool) -> dict[str, str]:
    """The initial password of each hire, every one before anything is applied."""
    if not hires:
        return {}
    if from_stdin:
        try:
            given = parse_passwords(sys.stdin.read())
        except MovementFileError as error:
            _refuse(error.problems)
        missing = [s.movement.usuario for s in hires if not given.get(s.movement.usuario)]
        if missing:
            _refuse([f"falta la contraseña inicial de {user}." for user in missing])
        return given
    if not sys.stdin.isatty():
        _refuse(
            [
                "hay altas y la entrada estándar no es una terminal: dé las contraseñas "
                "iniciales con --contrasenas-stdin («usuario contraseña» por línea)."
            ]
        )
    return {
        s.movement.usuario: typer.prompt(
            f"Contraseña inicial de {s.movement.usuario}", hide_input=True
        )
        for s in hires
    }


def _apply(step: Step, passwords: dict[str, str]) -> None:
    m = step.movement
    channel = {"oficio": m.oficio, "fecha": m.fecha}
    if step.accion == "alta":
        call(
            "personas.alta",
            {
                "usuario": m.usuario,
                "nombre": m.nombre,
                "correo": m.correo,
                "telefono": m.telefono,
                "rol": m.rol,
                "distrito": m.distrito,
                "contrasena": passwords[m.usuario],
            },
        )
    elif step.accion == "baja":
        call("personas.baja", {"usuario": m.usuario, "motivo": m.motivo, **channel})
    else:
        call(
            "personas.cambiar",
            {"usuario": m.usuario, "rol": m.rol, "distrito": m.distrito, **channel},
        )


def _message(error: BaseException) -> str:
    from cli.messages import describe

    return describe(error)[1]


def _infrastructure(error: BaseException) -> bool:
    from cli.messages import EXIT_CONFIG, EXIT_UNAVAILABLE, describe

    names = getattr(error, "remote_chain", None) or [c.__name__ for c in type(error).__mro__]
    return describe(error)[0] in (EXIT_UNAVAILABLE, EXIT_CONFIG) or (
        "NotAuthenticatedError" in names
    )


def _table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    from cli.output import console, text
    from cli.remote import label

    # Cells and title as rich text: a value is shown as written, never read as markup.
    table = Table(title=text(title), title_justify="left")
    keys = [k for k in rows[0] if k not in ("rol", "distrito")] if rows else []
    for key in keys:
        table.add_column(text(label(key)), overflow="fold")
    for row in rows:
        table.add_row(*(text("—" if row[k] is None else str(row[k])) for k in keys))
    console().print(table)


def register(personas: App) -> None:
    """Add ``contacto`` and ``importar`` to the ``personas`` sub-app."""
    personas.command("contacto")(contacto)
    personas.command("importar", help=IMPORT_HELP)(importar)
