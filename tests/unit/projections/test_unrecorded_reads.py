"""Issue 16: an unrecorded read (found in OpenBao's audit log) is in the reports.

It opens an incident (``incidentes``), it is a read with the finding ``lectura_no_registrada``
(``lecturas``) and, for a password, its reader is exposed to that version (``exposicion``);
a token of no person (root) is named as OpenBao names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from events.domain import Incident, person_id
from projections.names import PersonNames
from projections.reports import ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import POLICY, later, make_world
from tests.unit.projections.local import LocalLedger

COADMIN = Scope("coadministrador")
NAMES = PersonNames(["utcsyd", "titular05", "ana", "beto"])


def unrecorded(reader: str | None, identity: str, kind: str, version: int | None) -> Incident:
    return Incident.unrecorded_read(
        incident_id=uuid4(),
        district="DD05",
        account="DD05-x",
        kind=kind,  # type: ignore[arg-type]
        version=version,
        staged=False,
        reader=person_id(reader) if reader else None,
        identity=identity,
        remote_address="10.0.0.7",
        audit_request_id=str(uuid4()),
        accessed_at=later(120),
        policy=POLICY,
        at=later(121),
    )


def rows(db: Path, kind: str) -> list[dict[str, Any]]:
    report = load_report(kind, COADMIN, ReportFilter(), database=db, names=NAMES, now=later(200))
    return report.rows


def test_unrecorded_reads_are_incidents_reads_and_exposures(tmp_path: Path) -> None:
    """beto (not the designated administrator) read version 1 and a 2FA code directly; an
    operator's root token read version 1: three incidents reported by the service, three reads
    flagged ``lectura_no_registrada``, beto and the root token exposed to version 1."""
    world = make_world(collect=False)
    ledger = LocalLedger()
    ledger.save(*world.people, world.district)
    ledger.save(
        unrecorded("beto", "entity-beto", "contrasena", 1),
        unrecorded("beto", "entity-beto", "codigo_totp", None),
        unrecorded(None, "token", "contrasena", 1),
    )
    db = ledger.project_into(tmp_path / "reports.sqlite")

    incidents = [r for r in rows(db, "incidentes") if r["tipo"] == "lectura_no_registrada"]
    assert len(incidents) == 3
    assert {r["reportado_por"] for r in incidents} == {"custodia-servicio"}
    assert {r["estado"] for r in incidents} == {"reportado"}

    reads = [r for r in rows(db, "lecturas") if "lectura_no_registrada" in r["hallazgos"]]
    assert sorted((r["persona"], r["tipo"], r["version"]) for r in reads) == [
        ("beto", "codigo_totp", None),
        ("beto", "contrasena", 1),
        ("openbao:token", "contrasena", 1),
    ]
    assert {r["calidad"] for r in reads} == {"no_registrada"}

    exposure = [r for r in rows(db, "exposicion") if (r["cuenta"], r["version"]) == ("DD05-x", 1)]
    assert {"beto", "openbao:token"} <= set(exposure[0]["personas"])
    assert {"beto", "openbao:token"} <= set(exposure[0]["sin_acceso_actual"])
