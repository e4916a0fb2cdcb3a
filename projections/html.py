"""The HTML report: one self-contained file, in Spanish, printable, with inline SVG charts.

No script, no font, no image and no style sheet is fetched: everything is in the file, so it can
be mailed, archived and opened offline. Charts are drawn where a picture reads better than a
table: time to rotate per district (median bar, 90th-percentile tick), the share of obligations
met on time per district (stacked bar), and incidents reported per month (stacked columns). Each
chart keeps to its own colours (:data:`COLORS`), which nothing else on the page uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any, Final

from events.domain import Policy
from projections.labels import ESTADOS, MESES, fecha
from projections.reports import READ_FINDINGS, Report

__all__ = ["COLORS", "render_html"]

COLORS: Final = {
    "mediana": "#1565c0",
    "p90": "#0d2c54",
    "cumplida": "#2e7d32",
    "cumplida_tarde": "#f9a825",
    "vencida": "#c62828",
    "abierta": "#90a4ae",
    "intervencion": "#6a1b9a",
    "operacion_no_autorizada": "#ef6c00",
}

MESES_LARGOS: Final = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)

LEYENDAS: Final = {
    "cumplida": "cumplidas a tiempo",
    "cumplida_tarde": "cumplidas tarde",
    "vencida": "vencidas",
    "abierta": "abiertas en plazo",
    "intervencion": "intervención",
    "operacion_no_autorizada": "operación no autorizada",
}

CSS: Final = """
@page { size: A4 landscape; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #212121;
  margin: 24px; font-size: 13px; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid #bdbdbd; }
p.meta { color: #616161; margin: 0 0 12px; }
p.veredicto { font-size: 15px; font-weight: bold; padding: 8px 12px; border-left: 6px solid; }
p.cumple { border-color: #1b5e20; background: #f1f8e9; }
p.no_cumple { border-color: #b71c1c; background: #fff3f3; }
p.aviso { border-left: 6px solid #b71c1c; padding: 6px 10px; background: #fff3f3; }
.graficas { display: flex; flex-wrap: wrap; gap: 16px; }
figure.grafica { margin: 0; padding: 8px; border: 1px solid #e0e0e0; flex: 1 1 440px;
  max-width: 760px;
  break-inside: avoid; page-break-inside: avoid; }
figure.grafica figcaption { font-weight: bold; margin-bottom: 4px; }
figure.grafica svg { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; font-size: 11px; fill: #212121; }
table { border-collapse: collapse; width: 100%; margin-bottom: 12px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
td.no_cumple, td.mal { color: #b71c1c; font-weight: bold; }
ul.motivos { margin: 4px 0 12px 18px; padding: 0; }
@media print { body { margin: 0; font-size: 10pt; } h2 { break-after: avoid; } }
"""


def _e(value: Any) -> str:
    return escape("—" if value is None or value == "" else str(value))


# --- charts -------------------------------------------------------------------------------------


def _legend(keys: Sequence[str], x: float, y: float) -> tuple[str, float]:
    """Legend swatches and labels in a row from ``(x, y)``; returns them and where they end."""
    parts = []
    for key in keys:
        text = LEYENDAS.get(key, key)
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{COLORS[key]}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y + 9}">{escape(text)}</text>')
        x += 26 + 6.2 * len(text)
    return "".join(parts), x


def _hbar_chart(
    caption: str,
    chart_id: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, float]], float | None]],
    maximum: float,
    unit: str,
    legend: Sequence[str],
) -> str:
    """Horizontal (stacked) bars: each row a label, segments ``(colour key, value)`` and an
    optional tick (drawn in the p90 colour)."""
    label_w, bar_w, row_h = 48, 400, 18
    ly = 10 + row_h * len(rows) + 8
    legend_svg, legend_end = _legend(legend, float(label_w), ly)
    width = max(label_w + bar_w + 110, legend_end)
    height = ly + 18
    parts = [
        f'<figure class="grafica" id="{chart_id}"><figcaption>{escape(caption)}</figcaption>',
        f'<svg viewBox="0 0 {width:.0f} {height}" role="img" aria-label="{escape(caption)}">',
    ]
    scale = bar_w / maximum if maximum > 0 else 0.0
    for i, (label, segments, tick) in enumerate(rows):
        y = 6 + i * row_h
        parts.append(f'<text x="0" y="{y + 12}">{escape(label)}</text>')
        x = float(label_w)
        total = 0.0
        for key, value in segments:
            bar = value * scale
            if bar > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 2}" width="{bar:.1f}" height="{row_h - 5}" '
                    f'fill="{COLORS[key]}"><title>{escape(LEYENDAS.get(key, key))}: '
                    f"{value:g}</title></rect>"
                )
            x += bar
            total += value
        end = x
        if tick is not None and scale:
            tx = label_w + tick * scale
            parts.append(
                f'<rect x="{tx - 1.5:.1f}" y="{y}" width="3" height="{row_h - 1}" '
                f'fill="{COLORS["p90"]}"><title>p90: {tick:g}</title></rect>'
            )
            end = max(end, tx + 2)
        text = f"{total:g}" if tick is None else f"{total:g} / {tick:g}"
        parts.append(f'<text x="{end + 4:.1f}" y="{y + 12}">{text}{escape(unit)}</text>')
    parts.append(legend_svg)
    parts.append("</svg></figure>")
    return "".join(parts)


def chart_time_to_rotate(per_district: dict[str, Any]) -> str:
    rows = []
    for district, item in per_district.items():
        d = item["tiempo_de_rotacion"]
        if d["n"]:
            rows.append((district, [("mediana", float(d["mediana"]))], float(d["p90"])))
    if not rows:
        return ""
    maximum = max(max(s[0][1] for _, s, _ in rows), max(t or 0.0 for _, _, t in rows))
    return _hbar_chart(
        "Tiempo para rotar por distrito (horas hábiles; barra: mediana, marca: percentil 90)",
        "grafica-tiempo-rotacion",
        rows,
        maximum,
        " h",
        ["mediana", "p90"],
    )


def chart_on_time(per_district: dict[str, Any]) -> str:
    keys = ("cumplida", "cumplida_tarde", "vencida", "abierta")
    rows = []
    for district, item in per_district.items():
        states = item["estados"]
        segments = [(k, float(states.get(k, 0))) for k in keys]
        if sum(v for _, v in segments):
            rows.append((district, segments, None))
    if not rows:
        return ""
    maximum = max(sum(v for _, v in s) for _, s, _ in rows)
    return _hbar_chart(
        "Obligaciones de cambio de contraseña por distrito: a tiempo, tarde y vencidas",
        "grafica-a-tiempo",
        rows,
        maximum,
        "",
        list(keys),
    )


def chart_incidents(months: list[dict[str, Any]]) -> str:
    if not months:
        return ""
    keys = ("intervencion", "operacion_no_autorizada")
    left, plot_w, plot_h, top = 36, 560, 150, 10
    base = top + plot_h
    col_w = plot_w / len(months)
    every = max(1, int(44 // col_w) + 1) if col_w < 44 else 1
    maximum = max(sum(int(m.get(k, 0)) for k in keys) for m in months) or 1
    scale = plot_h / maximum
    caption = "Incidentes reportados por mes"
    legend_svg, _ = _legend(keys, float(left), base + 26)
    parts = [
        f'<figure class="grafica" id="grafica-incidentes"><figcaption>{caption}</figcaption>',
        f'<svg viewBox="0 0 {left + plot_w + 10} {base + 44}" role="img" aria-label="{caption}">',
        f'<text x="0" y="{top + 10}">{maximum}</text>',
        f'<text x="0" y="{base}">0</text>',
        f'<rect x="{left - 2}" y="{base}" width="{plot_w + 4}" height="1" fill="#9e9e9e"/>',
    ]
    for i, month in enumerate(months):
        x = left + i * col_w + col_w * 0.15
        y = float(base)
        for key in keys:
            count = int(month.get(key, 0))
            if count:
                h = count * scale
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{col_w * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="{COLORS[key]}"><title>{escape(LEYENDAS[key])}: {count}</title></rect>'
                )
        if i % every == 0:
            year, number = month["mes"].split("-")
            label = f"{MESES[int(number) - 1]} {year[2:]}"
            parts.append(f'<text x="{x:.1f}" y="{base + 14}">{escape(label)}</text>')
    parts.append(legend_svg)
    parts.append("</svg></figure>")
    return "".join(parts)


def _charts(report: Report) -> str:
    s = report.summary
    charts: list[str] = []
    if report.kind in ("cumplimiento", "rotaciones"):
        per_district = s.get("por_distrito") or {}
        charts += [chart_time_to_rotate(per_district), chart_on_time(per_district)]
    if report.kind in ("cumplimiento", "incidentes"):
        charts.append(chart_incidents(s.get("incidentes_por_mes") or []))
    charts = [c for c in charts if c]
    if not charts:
        return ""
    return '<h2>Gráficas</h2><div class="graficas">' + "".join(charts) + "</div>"


# --- tables -------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<td{cls}>{_e(value)}</td>"


def _names(values: list[str | None]) -> str:
    return ", ".join(v or "—" for v in values)


def _body_cumplimiento(report: Report, policy: Policy) -> str:
    s = report.summary
    verdict = s.get("veredicto", "cumple")
    parts = [f'<p class="veredicto {verdict}">{_e(s.get("linea"))}</p>']
    failing = [r for r in report.rows if r["veredicto"] != "cumple"]
    if failing:
        parts.append(
            '<ul class="motivos">'
            + "".join(f"<li>{_e(r['resumen'])}</li>" for r in failing)
            + "</ul>"
        )
    parts.append(_charts(report))
    parts.append("<h2>Por Dirección Distrital</h2>")
    rows = []
    for r in report.rows:
        accounts = "; ".join(
            a["cuenta"]
            + ("" if a["politica"] == "cumple" else f" ({', '.join(a['incumplimientos'])})")
            for a in r["cuentas"]
        )
        rows.append(
            [
                _td(r["distrito"]),
                _td(r["titular"]),
                _td(r["administrador"] or "sin designar"),
                _td(fecha(r["administrador_desde"], policy)),
                _td(r["en_funciones"]),
                _td(accounts),
                _td(r["obligaciones_a_tiempo"]),
                _td(r["obligaciones_vencidas"], "mal" if r["obligaciones_vencidas"] else ""),
                _td(r["horas_habiles_vencidas"]),
                _td(r["cambios_abiertos"]),
                _td(r["incidentes_abiertos"]),
                _td("cumple" if r["veredicto"] == "cumple" else "no cumple", r["veredicto"]),
            ]
        )
    parts.append(
        _table(
            [
                "Distrito",
                "Titular",
                "Persona administradora",
                "Desde",
                "En funciones",
                "Cuentas (política)",
                "Oblig. a tiempo",
                "Oblig. vencidas",
                "Horas hábiles vencidas",
                "Cambios abiertos",
                "Incidentes abiertos",
                "Veredicto",
            ],
            rows,
        )
    )
    return "".join(parts)


def _body_rotaciones(report: Report, policy: Policy) -> str:
    rows = [
        [
            _td(r["cuenta"]),
            _td(r["motivo"]),
            _td(fecha(r["abierta"], policy)),
            _td(fecha(r["vence"], policy)),
            _td(fecha(r["cerrada"], policy)),
            _td(r["cerrada_por"]),
            _td(r["horas_habiles"]),
            _td(
                ESTADOS.get(r["estado"], r["estado"]),
                "mal" if r["estado"] in ("vencida", "cumplida_tarde") else "",
            ),
        ]
        for r in report.rows
    ]
    table = _table(
        ["Cuenta", "Motivo", "Abierta", "Vence", "Cerrada", "Por", "Horas hábiles", "Estado"], rows
    )
    return _charts(report) + "<h2>Obligaciones</h2>" + table


def _body_exposicion(report: Report, policy: Policy) -> str:
    rows = [
        [
            _td(r["cuenta"]),
            _td(f"{r['version']} ({r['estado']})"),
            _td(fecha(r["desde"], policy)),
            _td(_names(r["personas"])),
            _td(_names(r["sin_acceso_actual"]), "mal" if r["sin_acceso_actual"] else ""),
        ]
        for r in report.rows
    ]
    headers = ["Cuenta", "Versión", "Desde", "Personas que la han visto", "Ya sin acceso"]
    return _table(headers, rows)


def _body_cambios(report: Report, policy: Policy) -> str:
    rows = [
        [
            _td(r["solicitud"][:8]),
            _td(r["cuenta"]),
            _td(r["campo"]),
            _td(r["via_oficial"]),
            _td(r["estado"]),
            _td(fecha(r["solicitada"], policy)),
            _td(r["solicitada_por"]),
            _td(fecha(r["decidida"], policy)),
            _td(r["decidida_por"]),
            _td(fecha(r["aplicada"], policy)),
        ]
        for r in report.rows
    ]
    headers = [
        "Solicitud",
        "Cuenta",
        "Campo",
        "Vía oficial",
        "Estado",
        "Solicitada",
        "Por",
        "Decidida",
        "Por",
        "Aplicada",
    ]
    return _table(headers, rows)


def _body_incidentes(report: Report, policy: Policy) -> str:
    rows = []
    for r in report.rows:
        on_time = r["notificado_a_tiempo"]
        notified = {True: "a tiempo", False: "tarde", None: "—"}[on_time]
        if r["notificacion_vencida"]:
            notified = "sin notificar, vencido"
        rows.append(
            [
                _td(r["incidente"][:8]),
                _td(r["cuenta"] or "Instituto"),  # the ledger's incident: the institution's
                _td(r["tipo"]),
                _td(fecha(r.get("detectado"), policy)),
                _td(fecha(r["reportado"], policy)),
                _td(fecha(r["plazo_notificacion"], policy)),
                _td(fecha(r["notificado"], policy)),
                _td(notified, "mal" if on_time is False or r["notificacion_vencida"] else ""),
                _td(fecha(r.get("enterado"), policy)),
                _td(fecha(r["contenido"], policy)),
                _td(
                    fecha(r["cerrado"], policy)
                    if not r.get("descartado")
                    else f"descartado {fecha(r['descartado'], policy)}"
                ),
            ]
        )
    headers = [
        "Incidente",
        "Cuenta",
        "Tipo",
        "Detectado",
        "Reportado",
        "Plazo de notificación",
        "Notificado",
        "Notificación",
        "Enterado (Secretaría)",
        "Contenido",
        "Cerrado",
    ]
    return _charts(report) + "<h2>Incidentes</h2>" + _table(headers, rows)


def _body_lecturas(report: Report, policy: Policy) -> str:
    rows = [
        [
            _td(fecha(r["fecha"], policy)),
            _td(r["cuenta"] or f"contacto de {r.get('contacto_de')}"),  # issue 18
            _td(r["persona"]),
            _td(r["calidad"]),
            _td(r["dispositivo"]),
            _td(", ".join(READ_FINDINGS.get(h, h) for h in r["hallazgos"]), "mal"),
            _td(r["motivo"]),
        ]
        for r in report.rows
    ]
    headers = ["Fecha", "Cuenta", "Persona", "Calidad", "Equipo", "Hallazgos", "Motivo"]
    return _table(headers, rows)


_BODIES: Final = {
    "cumplimiento": _body_cumplimiento,
    "rotaciones": _body_rotaciones,
    "exposicion": _body_exposicion,
    "cambios": _body_cambios,
    "incidentes": _body_incidentes,
    "lecturas": _body_lecturas,
}


def _long_date(value: datetime, policy: Policy) -> str:
    local = policy.local(value)
    return f"{local.day} de {MESES_LARGOS[local.month - 1]} de {local.year}, {local:%H:%M}"


def render_html(report: Report, policy: Policy) -> str:
    """The report as one self-contained HTML document."""
    where = f"Dirección Distrital {report.district}" if report.district else "Todas las DD"
    meta = (
        f"{escape(where)} · al {escape(_long_date(report.generated_at, policy))} "
        f"(hora de la Ciudad de México) · bitácora hasta el evento {report.position}"
    )
    warning = ""
    if report.projection_errors:
        warning = (
            f'<p class="aviso">Atención: {report.projection_errors} evento(s) de la bitácora no se '
            "pudieron proyectar; este reporte puede estar incompleto.</p>"
        )
    body = _BODIES[report.kind](report, policy) if report.rows else "<p>Sin registros.</p>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="es"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)} — Custodia IECM</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>{escape(report.title)}</h1><p class='meta'>{meta}</p>{warning}{body}"
        "<p class='meta'>Generado por Custodia a partir de la bitácora de eventos; "
        "ninguna credencial ni dato personal más allá de nombres de usuario.</p>"
        "</body></html>\n"
    )
