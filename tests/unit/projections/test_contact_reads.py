"""Issue 18: reads of contact data (``Person.ContactRead``) in the domain, the read model and
``reporte lecturas`` — who read whose contact and why, for the UTCSyD and the Secretaría
Ejecutiva, in every format, with the same keys as a credential read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from events.domain.errors import NotCoadministratorError, PersonalDataErasedError, ValidationError
from projections.names import PersonNames
from projections.render import render
from projections.reports import ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import POLICY, later, make_world
from tests.unit.projections.local import LocalLedger

NAMES = PersonNames(["utcsyd", "titular05", "ana", "beto", "carla", "otro06", "secretaria"])


def _report(db: Path, scope: Scope, filters: ReportFilter | None = None) -> Any:
    return load_report(
        "lecturas", scope, filters or ReportFilter(), database=db, names=NAMES, now=later(300)
    )


def test_only_a_coadministrator_records_a_read_and_never_of_erased_data() -> None:
    """The domain: a titular or an administrator cannot read contacts; a purpose is required;
    an erased person's data stay unreadable (nothing recorded)."""
    world = make_world()
    with pytest.raises(NotCoadministratorError):
        world.carla.record_contact_read(reader=world.titular, purpose="x", at=later(2))
    with pytest.raises(NotCoadministratorError):
        world.carla.record_contact_read(reader=world.ana, purpose="x", at=later(2))
    with pytest.raises(ValidationError):
        world.carla.record_contact_read(reader=world.coadmin, purpose="  ", at=later(2))
    world.carla.revoke_role("administrador", by=world.coadmin, at=later(2))
    world.carla.erase_personal_data(by=world.coadmin, at=later(3))
    world.carla.collect_events()
    with pytest.raises(PersonalDataErasedError):
        world.carla.record_contact_read(reader=world.coadmin, purpose="x", at=later(4))
    assert world.carla.collect_events() == []
    world.beto.record_contact_read(reader=world.coadmin, purpose="llamar", at=later(5))
    (read,) = world.beto.collect_events()
    assert vars(read).keys() >= {"purpose", "by"}
    assert "personal_data" not in vars(read)


def _ledger_with_reads(tmp_path: Path) -> Path:
    world = make_world(collect=False)
    world.beto.record_contact_read(reader=world.coadmin, purpose="confirmar enlace", at=later(10))
    world.other.record_contact_read(reader=world.coadmin, purpose="DAOD", at=later(20))
    ledger = LocalLedger()
    ledger.save(*world.people, world.district)
    return ledger.project_into(tmp_path / "reports.sqlite")


def test_reads_of_contacts_are_in_lecturas_for_the_utcsyd_and_the_secretaria(
    tmp_path: Path,
) -> None:
    """Each read is a row with ``tipo`` ``contacto``, the reader, whose data (``contacto_de``)
    and why, the same keys as a credential read; a titular or a district filter does not show
    them (they belong to no district); the period filter applies."""
    db = _ledger_with_reads(tmp_path)
    for scope in (Scope("coadministrador"), Scope("secretaria")):
        rows = [r for r in _report(db, scope).rows if r["tipo"] == "contacto"]
        assert [(r["persona"], r["contacto_de"], r["motivo"]) for r in rows] == [
            ("utcsyd", "beto", "confirmar enlace"),
            ("utcsyd", "otro06", "DAOD"),
        ]
        assert all("datos_de_contacto" in r["hallazgos"] for r in rows)
    report = _report(db, Scope("secretaria"))
    assert report.summary["lecturas_de_contacto"] == 2
    keys = {frozenset(r) for r in report.rows}
    assert len(keys) == 1  # credential reads and contact reads: the same keys
    assert not [r for r in _report(db, Scope("titular", "DD05")).rows if r["tipo"] == "contacto"]
    narrowed = _report(db, Scope("secretaria"), ReportFilter(district="DD05"))
    assert not [r for r in narrowed.rows if r["tipo"] == "contacto"]
    late = _report(db, Scope("secretaria"), ReportFilter(since=later(15)))
    assert [r["contacto_de"] for r in late.rows if r["tipo"] == "contacto"] == ["otro06"]


def test_contact_reads_render_in_every_format(tmp_path: Path) -> None:
    """Table, JSON, CSV and HTML show whose contact was read and the finding."""
    report = _report(_ledger_with_reads(tmp_path), Scope("secretaria"))
    as_json = json.loads(render(report, "json", POLICY))
    assert {"contacto_de", "tipo", "motivo"} <= set(as_json[0])
    assert "contacto" in render(report, "csv", POLICY)
    html = render(report, "html", POLICY)
    assert "contacto de beto" in html
    assert "datos de contacto" in html
    assert "contacto" in render(report, "tabla", POLICY)


def test_erasing_a_person_replaces_them_in_the_reads_of_their_contact(tmp_path: Path) -> None:
    """9.XX: once carla's data are erased, the read of her contact names an alias."""
    world = make_world(collect=False)
    world.carla.record_contact_read(reader=world.coadmin, purpose="x", at=later(10))
    world.carla.revoke_role("administrador", by=world.coadmin, at=later(11))
    world.carla.erase_personal_data(by=world.coadmin, at=later(12))
    ledger = LocalLedger()
    ledger.save(*world.people, world.district)
    db = ledger.project_into(tmp_path / "reports.sqlite")
    rows = [r for r in _report(db, Scope("secretaria")).rows if r["tipo"] == "contacto"]
    assert len(rows) == 1
    assert rows[0]["contacto_de"] != "carla"
    assert rows[0]["persona"] == "utcsyd"
