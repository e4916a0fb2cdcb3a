"""Reports as text: ``tabla`` (rich, fits 80 columns), ``json`` (the command line's keys),
``csv``, ``html``.

Instants are stored in UTC. ``tabla`` and ``html`` show them in the policy's time zone (Mexico
City) in Spanish format, ``03/03/2025 10:00``; ``json`` and ``csv`` write ISO 8601 with the
offset of that zone (``2025-03-03T10:00:00-06:00``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Literal, cast, get_args

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from events.domain import Policy
from projections.labels import ESTADOS as ESTADOS
from projections.labels import MESES as MESES
from projections.labels import fecha as fecha
from projections.reports import READ_FINDINGS, Report

__all__ = [
    "FORMATS",
    "Format",
    "fecha",
    "iso",
    "json_rows",
    "print_tabla",
    "render",
    "spreadsheet_safe",
]

Format = Literal["tabla", "json", "csv", "html"]
FORMATS: Final = cast(tuple[Format, ...], get_args(Format))


def iso(value: datetime, policy: Policy) -> str:
    """ISO 8601 with the offset of the policy's time zone."""
    return policy.local(value).isoformat()


def _jsonable(value: Any, policy: Policy) -> Any:
    if isinstance(value, datetime):
        return iso(value, policy)
    if isinstance(value, dict):
        return {k: _jsonable(v, policy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, policy) for v in value]
    return value


def json_rows(report: Report, policy: Policy) -> list[dict[str, Any]]:
    """The report's rows as JSON values (instants as ISO 8601 text with offset)."""
    return [_jsonable(row, policy) for row in report.rows]


def _json(report: Report, policy: Policy) -> str:
    return json.dumps(json_rows(report, policy), ensure_ascii=False, indent=2) + "\n"


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` for a CSV cell that a spreadsheet shows as written: one that would start a
    formula (``=HYPERLINK(…)`` in an oficio number, say, which the reviewer's spreadsheet would
    run) gets a leading apostrophe, which spreadsheets take as "text" and do not show."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "si" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        if all(isinstance(v, str | int) for v in value):
            return spreadsheet_safe("; ".join(str(v) for v in value))
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return spreadsheet_safe(str(value))


def _csv(report: Report, policy: Policy) -> str:
    rows = json_rows(report, policy)
    out = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


# --- tabla --------------------------------------------------------------------------------------


def _table(
    title: str | None,
    headers: list[str],
    keep: frozenset[int] = frozenset(),
    widths: dict[int, int] | None = None,
) -> Table:
    """A plain table; columns whose index is in ``keep`` never wrap (identifiers, dates), and
    ``widths`` gives some columns a minimum width."""
    table = Table(
        title=None if title is None else Text(title),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=False,
        collapse_padding=True,
    )
    for i, header in enumerate(headers):
        minimum = (widths or {}).get(i)
        table.add_column(Text(header), overflow="fold", no_wrap=i in keep, min_width=minimum)
    return table


def _add(table: Table, *cells: str | Text) -> None:
    """A row of ``table``: text is shown as it is, never read as rich markup. Free text from
    the ledger (an oficio number, say) may hold brackets: read as markup, ``[/b]`` would stop
    the whole report (rich raises) and ``[link=…]`` would put a link in it."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def _corta(value: datetime | None, policy: Policy) -> str:
    """A date over two lines (``03/03/2025`` / ``10:00``), to keep tables within 80 columns."""
    return fecha(value, policy).replace(" ", "\n", 1)


MOTIVOS: Final = {
    "designacion": "designación",
    "fin_designacion": "fin design.",
    "sustitucion": "sustitución",
    "regreso": "regreso",
    "antiguedad": "antigüedad",
}


def _names(values: list[str | None]) -> str:
    return ", ".join(v or "—" for v in values) or "—"


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _distribution_table(summary: dict[str, Any]) -> Table | None:
    per_district = summary.get("por_distrito") or {}
    if not per_district:
        return None
    table = _table(
        "Tiempo para rotar (horas hábiles) y obligaciones a tiempo",
        ["Distrito", "n", "Mediana", "P90", "Máx.", "A tiempo"],
    )
    for district, item in per_district.items():
        d = item["tiempo_de_rotacion"]
        _add(
            table,
            district,
            str(d["n"]),
            _hours(d["mediana"]),
            _hours(d["p90"]),
            _hours(d["maximo"]),
            _share(item["a_tiempo"]),
        )
    return table


def _tabla_cumplimiento(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None,
        ["DD", "Titular", "Administración", "Cuentas", "Obligaciones", "Camb.\nInc.", "Veredicto"],
        frozenset({0, 6}),
        {2: 16, 3: 8, 4: 10},
    )
    for r in report.rows:
        faulty = sum(1 for a in r["cuentas"] if a["politica"] != "cumple")
        admin = r["administrador"] or "sin designar"
        if r["administrador_desde"]:
            admin += f"\ndesde {fecha(r['administrador_desde'], policy)}"
        holder = r["en_funciones"]
        if holder and holder != r["administrador"]:
            admin += f"\nen funciones: {holder}"
        _add(
            table,
            r["distrito"],
            r["titular"] or "—",
            admin,
            f"{len(r['cuentas'])}" + (f"\n{faulty} fuera\nde pol." if faulty else ""),
            f"{r['obligaciones_a_tiempo']} en plazo\n{r['obligaciones_vencidas']} vencidas",
            f"{r['cambios_abiertos']} / {r['incidentes_abiertos']}",
            "cumple" if r["veredicto"] == "cumple" else Text("NO CUMPLE", style="bold red"),
        )
    console.print(table)
    for r in report.rows:
        if r["veredicto"] != "cumple":
            console.print(Text(f"• {r['resumen']}"))
    console.print(Text(str(report.summary.get("linea", "")), style="bold"))
    distribution = _distribution_table(report.summary)
    if distribution is not None:
        console.print(distribution)


def _tabla_rotaciones(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None,
        ["Cuenta", "Motivo", "Abierta", "Vence", "Cerrada", "Estado"],
        frozenset({0}),
        {1: 11, 2: 10, 3: 10, 4: 10},
    )
    for r in report.rows:
        closed = _corta(r["cerrada"], policy)
        if r["cerrada_por"]:
            closed += f"\n{r['cerrada_por']}"
        state = ESTADOS.get(r["estado"], r["estado"])
        if r["horas_habiles_de_retraso"]:
            state += f"\n+{r['horas_habiles_de_retraso']:.1f} h háb."
        _add(
            table,
            r["cuenta"],
            MOTIVOS.get(r["motivo"], r["motivo"]),
            _corta(r["abierta"], policy),
            _corta(r["vence"], policy),
            closed,
            state,
        )
    console.print(table)
    distribution = _distribution_table(report.summary)
    if distribution is not None:
        console.print(distribution)


def _tabla_exposicion(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None, ["Cuenta", "Versión", "Desde", "Han visto", "Ya sin acceso"], frozenset({0}), {2: 10}
    )
    for r in report.rows:
        version = f"{r['version']}\n{r['estado']}"
        _add(
            table,
            r["cuenta"],
            version,
            _corta(r["desde"], policy),
            _names(r["personas"]),
            _names(r["sin_acceso_actual"]) if r["sin_acceso_actual"] else "—",
        )
    console.print(table)


def _tabla_cambios(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None,
        ["Solicitud", "Cuenta", "Campo", "Vía oficial", "Estado", "Solicitada"],
        frozenset({0, 1}),
        {5: 10},
    )
    for r in report.rows:
        _add(
            table,
            r["solicitud"][:8],
            r["cuenta"],
            r["campo"],
            r["via_oficial"],
            r["estado"],
            _corta(r["solicitada"], policy),
        )
    console.print(table)


def _tabla_incidentes(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None,
        ["Incidente", "Cuenta", "Reportado", "Notificado", "Contenido", "Cerrado"],
        frozenset({1}),
        {0: 11, 2: 10, 3: 10, 4: 10, 5: 10},
    )
    kinds = {
        "intervencion": "intervención",
        "operacion_no_autorizada": "no autoriz.",
        "bitacora_alterada": "bitácora alterada",
        "perdida_acceso": "pérdida de acceso",
        "suplantacion": "suplantación",
        "filtracion": "filtración",
        "lectura_no_registrada": "lectura no registrada",
        "cambio_de_acceso_no_registrado": "acceso sin registro",
    }
    for r in report.rows:
        notified = Text(_corta(r["notificado"], policy))
        if r["notificado_a_tiempo"] is not None:
            if r["notificado_a_tiempo"]:
                notified.append("\n(a tiempo)")
            else:
                notified.append("\n(TARDE)", style="red")
        elif r["notificacion_vencida"]:
            notified = Text("SIN NOTIF.\nVENCIDO", style="bold red")
        _add(
            table,
            f"{r['incidente'][:8]}\n{kinds.get(r['tipo'], r['tipo'])}",
            r["cuenta"] or "Instituto",  # the ledger's incident is the institution's
            _corta(r["reportado"], policy),
            notified,
            _corta(r["contenido"], policy),
            # Issue 19: a false alarm shows when it was dismissed.
            _corta(r["cerrado"], policy) if not r.get("descartado") else "descartado",
        )
    console.print(table)
    s = report.summary
    if s.get("notificados"):
        console.print(
            Text(
                f"Notificados a tiempo: {s['notificados_a_tiempo']} de {s['notificados']}; "
                f"abiertos: {s['abiertos']}."
            )
        )


def _tabla_lecturas(report: Report, policy: Policy, console: Console) -> None:
    table = _table(
        None, ["Fecha", "Cuenta", "Persona", "Equipo", "Hallazgos"], frozenset({1}), {0: 10, 2: 13}
    )
    for r in report.rows:
        _add(
            table,
            _corta(r["fecha"], policy),
            r["cuenta"] or f"contacto de {r.get('contacto_de')}",  # issue 18
            f"{r['persona']}\n{r['calidad']}",
            r["dispositivo"] or "—",
            ", ".join(READ_FINDINGS.get(h, h) for h in r["hallazgos"]),
        )
    console.print(table)


_TABLAS: Final[dict[str, Callable[[Report, Policy, Console], None]]] = {
    "cumplimiento": _tabla_cumplimiento,
    "rotaciones": _tabla_rotaciones,
    "exposicion": _tabla_exposicion,
    "cambios": _tabla_cambios,
    "incidentes": _tabla_incidentes,
    "lecturas": _tabla_lecturas,
}


def print_tabla(report: Report, policy: Policy, console: Console) -> None:
    """Prints the report for people on ``console`` (Spanish, local time)."""
    where = f"Dirección Distrital {report.district}" if report.district else "todas las DD"
    console.print(Text(report.title, style="bold"))
    console.print(
        Text(
            f"{where} · al {fecha(report.generated_at, policy)} (hora de la Ciudad de México) · "
            f"bitácora hasta el evento {report.position}"
        )
    )
    if report.projection_errors:
        console.print(
            Text.assemble(
                ("Atención:", "bold red"),
                f" {report.projection_errors} evento(s) de la bitácora no se pudieron proyectar; "
                "consulte «custodia reporte errores».",
            )
        )
    if not report.rows:
        console.print(Text("Sin registros."))
        return
    _TABLAS[report.kind](report, policy, console)


def _tabla(report: Report, policy: Policy) -> str:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None, force_terminal=False, markup=False)
    print_tabla(report, policy, console)
    return out.getvalue()


def render(report: Report, fmt: str, policy: Policy | None = None) -> str:
    """The report in format ``fmt`` (``tabla``, ``json``, ``csv``, ``html``)."""
    policy = policy or Policy()
    if fmt == "json":
        return _json(report, policy)
    if fmt == "csv":
        return _csv(report, policy)
    if fmt == "html":
        from projections.html import render_html

        return render_html(report, policy)
    if fmt == "tabla":
        return _tabla(report, policy)
    raise ValueError(f"unknown format {fmt!r}")
