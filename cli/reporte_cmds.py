"""``custodia reporte``: compliance reports from the projections (``projections/``).

For now the commands read the local projection database, ``$CUSTODIA_HOME/proyecciones.sqlite``
(kept by ``custodia servicio``; rebuilt by ``custodia reporte reconstruir``), with the access of
whoever can read that directory (the operator): every district. :func:`load_report` is the one
place the data comes from, so that routing reports through the command service (with the
caller's scope) changes only that function.

Heavy libraries are imported inside the commands (``custodia --help`` stays light).
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.messages import EXIT_CONFIG, EXIT_DENIED, EXIT_NOT_FOUND, EXIT_USAGE
from cli.messages import register as message
from cli.spanish import App

if TYPE_CHECKING:
    from events.domain import Policy
    from projections.names import PersonNames
    from projections.reports import Report, ReportFilter, Scope

DATABASE_NAME = "proyecciones.sqlite"
FORMATOS = ("tabla", "json", "csv", "html")


def _register_messages() -> None:
    message(
        "ProjectionDatabaseError",
        EXIT_NOT_FOUND,
        lambda e: (
            f"No hay proyecciones utilizables en {getattr(e, 'path', '')}. Se crean con "
            "«custodia servicio»; para rehacerlas desde la bitácora use "
            "«custodia reporte reconstruir»."
        ),
    )
    message(
        "ReportScopeError",
        EXIT_DENIED,
        lambda e: (
            f"Su función ({getattr(e, 'role', '')}) no permite ver el reporte "
            f"«{getattr(e, 'report', '')}»"
            + (f" de {e.district}" if getattr(e, "district", None) else "")
            + ". Los titulares ven solo su Dirección Distrital; las personas administradoras, "
            "solo el cumplimiento y las rotaciones de la suya."
        ),
    )
    message(
        "UnknownReportError",
        EXIT_USAGE,
        lambda e: f"No existe el reporte «{getattr(e, 'report', '')}».",
    )
    message(
        "RebuildFailedError",
        EXIT_CONFIG,
        lambda e: (
            f"La reconstrucción de las proyecciones no terminó: {getattr(e, 'problem', '')}. "
            "Las proyecciones anteriores no se modificaron; vuelva a intentarlo."
        ),
    )
    message(
        "ProjectionHaltedError",
        EXIT_CONFIG,
        lambda e: (
            f"Las proyecciones se detuvieron en {getattr(e, 'position', '')}: un evento de la "
            "bitácora no se pudo proyectar (política «detener»). Consulte "
            "«custodia reporte errores»."
        ),
    )


_register_messages()


# -- options -------------------------------------------------------------------------------------


def _district(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    from events.domain import DistrictId, InvalidIdentifierError

    try:
        return str(DistrictId.parse(value))
    except InvalidIdentifierError:
        raise typer.BadParameter(
            f"«{value}» no es una Dirección Distrital (DD01 … DD33)."
        ) from None


def _format(value: str) -> str:
    if value not in FORMATOS:
        raise typer.BadParameter(f"«{value}» no es uno de: {', '.join(FORMATOS)}.")
    return value


def _day(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"«{value}» no es una fecha AAAA-MM-DD.") from None
    return value


DistritoOption = Annotated[
    str | None,
    typer.Option(
        "--distrito",
        help="Solo esta Dirección Distrital (DD05, 05 o 5).",
        callback=_district,
    ),
]
FormatoOption = Annotated[
    str,
    typer.Option(
        "--formato",
        help="tabla (para leer), json (para scripts), csv u html (un archivo autónomo).",
        callback=_format,
    ),
]
SalidaOption = Annotated[
    Path | None,
    typer.Option("--salida", help="Escribe el reporte en este archivo.", dir_okay=False),
]
DesdeOption = Annotated[
    str | None,
    typer.Option("--desde", help="Desde este día (AAAA-MM-DD, hora de la Ciudad de México).",
                 callback=_day),
]  # fmt: skip
HastaOption = Annotated[
    str | None,
    typer.Option("--hasta", help="Hasta este día, inclusive (AAAA-MM-DD).", callback=_day),
]


def register(app: App) -> None:
    """Add the ``reporte`` sub-app to the root app."""
    reporte = App(
        name="reporte",
        help=(
            "Reportes de cumplimiento construidos solo a partir de la bitácora (nunca del estado "
            "vivo de OpenBao): cumplimiento, rotaciones, exposición, cambios, incidentes y "
            "lecturas fuera de horario, desde equipos no registrados o no entregadas. Formatos "
            "tabla, json, csv "
            "y html. Los pide al servicio, que aplica el alcance de cada rol (una persona titular "
            "ve solo su distrito)."
        ),
    )
    reporte.command("cumplimiento")(cumplimiento)
    reporte.command("rotaciones")(rotaciones)
    reporte.command("exposicion")(exposicion)
    reporte.command("cambios")(cambios)
    reporte.command("incidentes")(incidentes)
    reporte.command("lecturas")(lecturas)
    reporte.command("designaciones")(designaciones)
    reporte.command("errores")(errores)
    reporte.command("reconstruir")(reconstruir)
    app.add_typer(reporte, name="reporte")


# -- the seam: where reports come from ------------------------------------------------------------


def home() -> Path:
    """``CUSTODIA_HOME`` (default ``~/.local/share/custodia``)."""
    from custody import config

    return config.home()


def database() -> Path:
    """The local projection database."""
    return home() / DATABASE_NAME


def policy() -> Policy:
    """The policy in force (``CUSTODIA_POLITICA``), for deadlines, working hours, time zone."""
    from custody.config import policy_file
    from events.domain import Policy

    path = policy_file()
    return Policy.from_toml(path) if path else Policy()


def load_report(
    kind: str, scope: Scope, filters: ReportFilter, names: PersonNames | None = None
) -> Report:
    """The report ``kind`` for ``scope``: today from the local projection database; later, from
    the command service (which will also know the caller's scope and the user names)."""
    from projections.reports import load_report as from_database

    return from_database(kind, scope, filters, database=database(), policy=policy(), names=names)


# -- running a report -----------------------------------------------------------------------------


def _instant(day: str | None, end: bool, tz: Any) -> datetime | None:
    if day is None:
        return None
    moment = time.max if end else time.min
    when = datetime.combine(date.fromisoformat(day), moment, tzinfo=tz)
    return when.astimezone(UTC)


def run_report(
    kind: str,
    distrito: str | None,
    formato: str,
    salida: Path | None,
    desde: str | None = None,
    hasta: str | None = None,
) -> None:
    """Asks ``custodia servicio`` for report ``kind`` (in the caller's scope) and writes it to
    ``salida`` or stdout."""
    from cli.remote import call

    data = call(
        "reporte",
        {"tipo": kind, "distrito": distrito, "formato": formato, "desde": desde, "hasta": hasta},
    )
    content = str(data["contenido"])
    if salida is not None:
        salida.write_text(content, encoding="utf-8")
        typer.echo(f"Reporte «{kind}» ({formato}) escrito en {salida}.", err=True)
        return
    sys.stdout.write(content if content.endswith("\n") else content + "\n")


JsonFlag = Annotated[bool, typer.Option("--json", help="Atajo de --formato json.")]


# -- commands -------------------------------------------------------------------------------------


def cumplimiento(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Cumplimiento por Dirección Distrital: titular, persona administradora (desde cuándo),
    cuentas y su política, obligaciones de cambio de contraseña en plazo y vencidas (en horas
    hábiles), cambios e incidentes abiertos, y un veredicto por distrito y del Instituto.

    Ejemplo: [cyan]custodia reporte cumplimiento --formato html --salida cumplimiento.html[/cyan]
    """
    run_report("cumplimiento", distrito, "json" if json_output else formato, salida)


def rotaciones(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
    desde: DesdeOption = None,
    hasta: HastaOption = None,
) -> None:
    """Cada obligación de cambio de contraseña (6.X): cuándo se abrió, su plazo, cuándo y quién
    la cumplió, su estado (abierta, vencida, cumplida, cumplida_tarde) y la distribución del
    tiempo para rotar por distrito.

    Ejemplo: [cyan]custodia reporte rotaciones --distrito 5 --formato csv[/cyan]
    """
    run_report("rotaciones", distrito, "json" if json_output else formato, salida, desde, hasta)


def exposicion(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Por cuenta, quién ha visto la contraseña vigente (y la preparada) desde su última
    rotación: la lista que decide a quién afecta una salida.

    Ejemplo: [cyan]custodia reporte exposicion --distrito DD05 --formato json[/cyan]
    """
    run_report("exposicion", distrito, "json" if json_output else formato, salida)


def cambios(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
    desde: DesdeOption = None,
    hasta: HastaOption = None,
) -> None:
    """Solicitudes de cambio de configuración (6.XI, 11.1) con su vía oficial y sus decisiones.

    Ejemplo: [cyan]custodia reporte cambios --desde 2025-01-01 --formato csv[/cyan]
    """
    run_report("cambios", distrito, "json" if json_output else formato, salida, desde, hasta)


def incidentes(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
    desde: DesdeOption = None,
    hasta: HastaOption = None,
) -> None:
    """Bitácora de incidentes para la Secretaría Ejecutiva (8.C, 9.XVIII): tiempo a la
    notificación contra su plazo, contención y cierre.

    Ejemplo: [cyan]custodia reporte incidentes --formato html --salida incidentes.html[/cyan]
    """
    run_report("incidentes", distrito, "json" if json_output else formato, salida, desde, hasta)


def lecturas(
    distrito: DistritoOption = None,
    formato: FormatoOption = "tabla",
    salida: SalidaOption = None,
    json_output: JsonFlag = False,
    desde: DesdeOption = None,
    hasta: HastaOption = None,
) -> None:
    """Lecturas de credenciales fuera del horario laboral (8.A), desde equipos no registrados
    (8.B) o que el servidor de secretos no llegó a entregar (registradas y luego anuladas), y
    cada lectura de datos de contacto de una persona (6.VII; tipo «contacto»: quién, de quién
    y para qué), que revisan la UTCSyD y la Secretaría Ejecutiva.

    Ejemplo: [cyan]custodia reporte lecturas --distrito 12 --desde 2025-03-01[/cyan]
    """
    run_report("lecturas", distrito, "json" if json_output else formato, salida, desde, hasta)


def errores(
    json_output: Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")] = False,
) -> None:
    """Eventos de la bitácora que las proyecciones no pudieron aplicar (ilegibles, de un tipo
    desconocido o inconsistentes) y mensajes inválidos del flujo. Ninguno se omite en silencio.

    Ejemplo: [cyan]custodia reporte errores --json[/cyan]
    """
    from projections.model import open_database, read_view

    with open_database(database()) as conn:
        data = read_view(conn, None, frozenset())
    rows = [
        {
            "referencia": e.ref,
            "tipo": e.kind,
            "evento": e.notification_id,
            "mensaje": e.stream_seq,
            "tema": e.topic,
            "agregado": e.originator_id,
            "version": e.originator_version,
            "motivo": e.reason,
            "accion": e.action,
        }
        for e in data.errors
    ]
    if json_output:
        from cli.output import print_json

        print_json(rows)
        return
    if not rows:
        typer.echo("Sin errores de proyección.")
        return
    for row in rows:
        where = f"evento {row['evento']}" if row["evento"] else f"mensaje {row['mensaje']}"
        typer.echo(f"{where}: {row['tipo']} ({row['tema'] or '—'}) — {row['accion']}")


def reconstruir(
    detener: Annotated[
        bool,
        typer.Option(
            "--detener-en-error",
            help="Detenerse en el primer evento que no se pueda proyectar (si no, se registra "
            "y se continúa).",
        ),
    ] = False,
) -> None:
    """Reconstruye las proyecciones desde el primer evento de la bitácora, con barra de
    progreso, y reemplaza [cyan]$CUSTODIA_HOME/proyecciones.sqlite[/cyan]. Detenga antes el
    servicio.

    Ejemplo: [cyan]custodia reporte reconstruir[/cyan]
    """
    from cli.bitacora_cmds import nats_target, progress_bar
    from projections.runner import rebuild

    # The same connection settings as every command (URL, credentials file or user, CA).
    env = {**nats_target().nats_env(), "CREATE_TABLE": "n"}
    with progress_bar("Reconstruyendo proyecciones") as progress:
        result = rebuild(
            database(), env, progress=progress, on_error="detener" if detener else "continuar"
        )
    typer.echo(
        f"Proyecciones reconstruidas: {result.events} eventos en {result.seconds:.1f} s"
        + (
            f"; {result.errors} error(es) registrados («custodia reporte errores»)."
            if result.errors
            else "."
        )
    )


def designaciones(
    distrito: Annotated[
        str, typer.Option("--distrito", help="La Dirección Distrital (DD05, 05 o 5).")
    ],
    fecha: Annotated[
        str | None,
        typer.Option("--fecha", help="Quién tenía cada rol ese día (AAAA-MM-DD).", callback=_day),
    ] = None,
    formato: Annotated[
        str, typer.Option("--formato", help="tabla, json o csv (claves de «historial»).")
    ] = "tabla",
    salida: SalidaOption = None,
) -> None:
    """Historial de designaciones (6.VII): quién fue titular, titular por encargo, administradora
    o sustituta del distrito, desde y hasta cuándo y con qué vía oficial; lo mismo que
    «custodia historial», en formato de reporte.

    Ejemplo: [cyan]custodia reporte designaciones --distrito DD05 --formato csv[/cyan]
    """
    import csv
    import io
    import json

    from cli.remote import call, show
    from projections.render import spreadsheet_safe

    if formato not in ("tabla", "json", "csv"):
        raise typer.BadParameter("use tabla, json o csv.", param_hint="--formato")
    rows = call("historial", {"distrito": distrito, "fecha": fecha})
    if formato == "tabla" and salida is None:
        show(rows, False, f"Designaciones de {distrito}")
        return
    if formato == "json":
        content = json.dumps(rows, ensure_ascii=False, indent=2)
    else:
        out = io.StringIO()
        keys = ["rol", "persona", "desde", "hasta", "via_oficial", "excepcion"]
        writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            {k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in rows
        )
        content = out.getvalue()
    if salida is not None:
        salida.write_text(content, encoding="utf-8")
        typer.echo(f"Reporte «designaciones» ({formato}) escrito en {salida}.", err=True)
        return
    sys.stdout.write(content if content.endswith("\n") else content + "\n")
