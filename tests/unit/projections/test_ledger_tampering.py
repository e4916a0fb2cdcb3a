"""Issue 16: the institution's incident (the ledger found altered) in the reports.

It has no district and no account: the incident ledger lists it with ``cuenta`` and
``distrito`` null, reported by the service; a district's report does not list it (no
district's fault); the Instituto's compliance verdict fails while it is open, and passes once
it is closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from events.domain import Incident, OfficialChannel
from projections.names import PersonNames
from projections.render import render
from projections.reports import ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import POLICY, later, make_world
from tests.unit.projections.local import LocalLedger

COADMIN = Scope("coadministrador")
NAMES = PersonNames(["utcsyd", "titular05", "ana", "beto"])


def tampering() -> Incident:
    return Incident.ledger_tampering(
        incident_id=uuid4(),
        divergence="reescrita",
        entry=21,
        anchored_size=30,
        anchored_root="q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
        observed_size=30,
        observed_root="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        alert_id="00000000000000000030-0123456789abcdef",
        diverged_at=later(120),
        policy=POLICY,
        at=later(121),
    )


def report(db: Path, kind: str, scope: Scope = COADMIN) -> Any:
    return load_report(kind, scope, ReportFilter(), database=db, names=NAMES, now=later(200))


def test_the_institutions_incident_in_the_incident_ledger_and_compliance(
    tmp_path: Path,
) -> None:
    """Listed with null account and district and reported by ``custodia-servicio``; absent
    from DD05's report; the Instituto does not comply while it is open (and says why), each
    district's own verdict untouched; once contained and closed, the Instituto complies."""
    world = make_world(collect=False)
    ledger = LocalLedger()
    ledger.save(*world.people, world.district)
    incident = tampering()
    ledger.save(incident)
    db = ledger.project_into(tmp_path / "reports.sqlite")

    [row] = [r for r in report(db, "incidentes").rows if r["tipo"] == "bitacora_alterada"]
    assert (row["cuenta"], row["distrito"], row["estado"]) == (None, None, "reportado")
    assert row["reportado_por"] == "custodia-servicio"
    assert "entrada 21" in row["descripcion"]
    dd05 = report(db, "incidentes", Scope("titular", "DD05")).rows
    assert all(r["tipo"] != "bitacora_alterada" for r in dd05)
    assert "Instituto" in render(report(db, "incidentes"), "tabla", POLICY)

    compliance = report(db, "cumplimiento")
    assert compliance.summary["veredicto"] == "no_cumple"
    assert compliance.summary["incidentes_institucionales_abiertos"] == 1
    assert "integridad de la bitácora" in compliance.summary["linea"]
    assert all(r["incidentes_abiertos"] == 0 for r in compliance.rows)
    own = report(db, "cumplimiento", Scope("titular", "DD05"))
    assert "integridad" not in own.summary["linea"]

    channel = OfficialChannel.oficio("IECM/UTCSyD/0045/2025")
    incident.notify(channel=channel, by=world.coadmin, at=later(130))
    incident.contain(None, "Historia restaurada", by=world.coadmin, at=later(140))
    incident.close("Verificada íntegra", by=world.coadmin, at=later(150))
    ledger.save(incident)
    db = ledger.project_into(tmp_path / "again.sqlite")
    [row] = [r for r in report(db, "incidentes").rows if r["tipo"] == "bitacora_alterada"]
    assert row["estado"] == "cerrado"
    assert row["contenido"] is not None
    assert row["version_rotada"] is None
    assert report(db, "cumplimiento").summary["incidentes_institucionales_abiertos"] == 0
