"""Reports answer the guidelines' questions from the view alone, within the viewer's scope."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from events.domain import Person
from projections.errors import ProjectionDatabaseError, ReportScopeError, UnknownReportError
from projections.names import ERASED_LABEL, PersonNames
from projections.reports import Report, ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import POLICY, make_world
from tests.unit.projections.local import LocalLedger
from tests.unit.projections.scenario import AS_OF, USERNAMES, Scenario, build, local

NAMES = PersonNames(USERNAMES)
COADMIN = Scope("coadministrador")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build(tmp_path_factory.mktemp("scenario"))


def report(
    s: Scenario, kind: str, scope: Scope = COADMIN, filters: ReportFilter | None = None
) -> Report:
    return load_report(
        kind, scope, filters or ReportFilter(), database=s.db, names=NAMES, now=AS_OF
    )


def by(rows: list[dict[str, Any]], key: str, value: object) -> list[dict[str, Any]]:
    return [r for r in rows if r[key] == value]


def test_rotation_obligations_have_their_states_and_business_hours(scenario: Scenario) -> None:
    """6.X: the designation's obligations are met on time, DD05-x's after beto's designation
    too, and DD05-facebook's is overdue by 10 business hours (Thu 9 h + Fri 1 h)."""
    rows = report(scenario, "rotaciones").rows
    assert [(r["cuenta"], r["estado"]) for r in rows] == [
        ("DD05-facebook", "cumplida"),
        ("DD05-x", "cumplida"),
        ("DD05-facebook", "vencida"),
        ("DD05-x", "cumplida"),
    ]
    overdue = rows[2]
    assert overdue["cerrada"] is None
    assert overdue["vence"] == local(6, 0)
    assert overdue["horas_habiles_de_retraso"] == 10.0
    assert (overdue["saliente"], overdue["entrante"]) == ("ana", "beto")
    done = rows[3]
    assert (done["cerrada"], done["cerrada_por"], done["version"]) == (local(5, 12, 5), "utcsyd", 2)


def test_compliance_verdicts_per_district_and_for_the_institute(scenario: Scenario) -> None:
    """DD05 fails on its overdue obligation; DD06 (no accounts) complies; the institute does not."""
    r = report(scenario, "cumplimiento")
    dd05, dd06 = r.rows
    assert dd05["distrito"] == "DD05"
    assert (dd05["titular"], dd05["administrador"]) == ("titular05", "beto")
    assert dd05["administrador_desde"] == local(4, 10)
    assert (dd05["obligaciones_abiertas"], dd05["obligaciones_vencidas"]) == (1, 1)
    assert (dd05["cambios_abiertos"], dd05["incidentes_abiertos"]) == (1, 1)
    assert dd05["veredicto"] == "no_cumple"
    assert dd05["motivos"] == ["1 obligación de cambio de contraseña vencida (6.X)"]
    assert [a["cuenta"] for a in dd05["cuentas"]] == ["DD05-facebook", "DD05-x"]
    assert dd06["veredicto"] == "cumple"
    assert r.summary["veredicto"] == "no_cumple"
    assert "1 de 2" in r.summary["linea"]
    own = report(scenario, "cumplimiento", Scope("titular", "DD06"))
    assert own.summary["linea"] == "Dirección Distrital DD06: cumple."  # not «las 1 … cumplen»


def test_exposure_lists_who_saw_each_live_version_and_who_lost_access(
    scenario: Scenario,
) -> None:
    """DD05-facebook v1 was seen by UTCSyD (who generated it) and ana, who no longer holds it;
    DD05-x v2 by UTCSyD and beto, both still entitled."""
    rows = report(scenario, "exposicion").rows
    facebook = by(rows, "cuenta", "DD05-facebook")[0]
    assert (facebook["version"], facebook["personas"]) == (1, ["utcsyd", "ana"])
    assert facebook["sin_acceso_actual"] == ["ana"]
    x = by(rows, "cuenta", "DD05-x")[0]
    assert (x["version"], x["estado"], x["personas"], x["sin_acceso_actual"]) == (
        2,
        "vigente",
        ["utcsyd", "beto"],
        [],
    )


def test_reads_outside_hours_or_from_unregistered_devices(scenario: Scenario) -> None:
    """8.A/8.B: only the two flagged reads show, each with its finding; ana's is not one."""
    rows = report(scenario, "lecturas").rows
    assert [(r["fecha"], r["persona"], r["hallazgos"]) for r in rows] == [
        (local(4, 11), "beto", ["equipo_no_registrado"]),
        (local(5, 20), "beto", ["fuera_de_horario"]),
    ]


def test_incident_and_change_request_ledgers(scenario: Scenario) -> None:
    """8.C: the notification came 150 minutes after the report, past the one-hour deadline;
    6.XI: the request shows its vía oficial and decision."""
    (incident,) = report(scenario, "incidentes").rows
    assert incident["notificado_a_tiempo"] is False
    assert incident["minutos_a_notificacion"] == 150.0
    assert (incident["contenido"], incident["cerrado"]) == (None, None)
    (request,) = report(scenario, "cambios").rows
    assert (request["via_oficial"], request["estado"], request["decidida_por"]) == (
        "oficio IECM/DD05/0077/2025",
        "aprobada",
        "utcsyd",
    )


def test_period_filter_narrows_list_reports(scenario: Scenario) -> None:
    """``desde``/``hasta`` keep rows whose main instant is in the period."""
    rows = report(scenario, "lecturas", filters=ReportFilter(since=local(5, 0))).rows
    assert [r["fecha"] for r in rows] == [local(5, 20)]


def test_titular_sees_only_their_own_district(scenario: Scenario) -> None:
    """A titular's report covers their district; asking for another is refused."""
    r = report(scenario, "cumplimiento", Scope("titular", "DD06"))
    assert [row["distrito"] for row in r.rows] == ["DD06"]
    assert report(scenario, "rotaciones", Scope("titular", "DD06")).rows == []
    with pytest.raises(ReportScopeError) as refused:
        report(scenario, "lecturas", Scope("titular", "DD06"), ReportFilter(district="5"))
    assert (refused.value.role, refused.value.district) == ("titular", "DD05")


def test_administrator_sees_compliance_of_their_district_with_names_only(
    scenario: Scenario,
) -> None:
    """An administrator gets cumplimiento and rotaciones of their district (no absence
    details), and no report that shows others' reads or exposure."""
    admin = Scope("administrador", "DD05")
    (row,) = report(scenario, "cumplimiento", admin).rows
    assert row["distrito"] == "DD05"
    assert "ausencia" not in row
    assert report(scenario, "rotaciones", admin).rows
    for kind in ("exposicion", "lecturas", "cambios", "incidentes"):
        with pytest.raises(ReportScopeError):
            report(scenario, kind, admin)


def test_secretaria_sees_everything_and_unknown_reports_fail(scenario: Scenario) -> None:
    """The Secretaría Ejecutiva sees all districts; an unknown kind is a specific error."""
    r = report(scenario, "incidentes", Scope("secretaria"))
    assert r.rows
    with pytest.raises(UnknownReportError):
        report(scenario, "sueldos")


def test_people_without_a_known_user_name_and_erased_people() -> None:
    """Unknown ids show a short reference; erased ones a fixed label whatever the list says."""
    names = PersonNames(["ana"])
    from events.domain import person_id

    assert names.name(str(person_id("ana"))) == "ana"
    assert names.name("0123456789abcdef") == "persona-01234567"
    assert names.name("suprimida-3") == ERASED_LABEL
    assert names.name(None) is None


def test_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    """No projection database: a specific error naming the path (and nothing is created)."""
    with pytest.raises(ProjectionDatabaseError) as missing:
        load_report("cumplimiento", COADMIN, ReportFilter(), database=tmp_path / "no.sqlite")
    assert missing.value.problem == "missing"
    assert not (tmp_path / "no.sqlite").exists()


def test_a_read_never_delivered_is_a_finding_of_its_own(tmp_path: Path) -> None:
    """A read recorded while the wrapped read was on its way, which the secrets server then
    refused (``District.ReadVoided``), is listed with the finding ``no_entregada`` and the
    error's name, even when nothing else flags it; the next, delivered read of the same
    version by the same person is not touched, nor a read of another person."""
    w = make_world(collect=False)
    ledger = LocalLedger()
    d = w.district

    def read(reader: Person, at: datetime) -> None:
        d.record_read(
            "DD05-x",
            reader=reader,
            version=1,
            purpose="publicación",
            device_id="pc-dd05-01",
            policy=POLICY,
            at=at,
        )

    read(w.ana, local(3, 12))
    d.void_read("DD05-x", reader=w.ana, version=1, reason="VaultUnreachableError", at=local(3, 12))
    read(w.ana, local(3, 13))
    read(w.coadmin, local(3, 21))
    ledger.save(*w.people, d)
    db = ledger.project_into(tmp_path / "proyecciones.sqlite")
    rows = load_report(
        "lecturas", COADMIN, ReportFilter(), database=db, names=NAMES, now=AS_OF
    ).rows
    assert [
        (r["fecha"], r["persona"], r["hallazgos"], r["entregada"], r["causa_no_entrega"])
        for r in rows
    ] == [
        (local(3, 12), "ana", ["no_entregada"], False, "VaultUnreachableError"),
        (local(3, 21), "utcsyd", rows[1]["hallazgos"], True, None),
    ]
    assert "no_entregada" not in rows[1]["hallazgos"]
