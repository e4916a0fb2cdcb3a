"""The controls' events (issue 19) in the report projection: devices, calendar and policies
are projected without poison, and the compliance report shows each district's recertification
answer, overdue ones and a revoked enlace who is still designated making it ``no_cumple``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from events.domain import District
from events.domain.controls import DeviceRegistry, Recertification, WorkingCalendar
from projections.names import PersonNames
from projections.reports import ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import OFICIO, POLICY, T0, later, make_world
from tests.unit.projections.local import LocalLedger


def test_controls_are_projected_and_recertification_shows_in_compliance(tmp_path: Path) -> None:
    """DD05 answers (confirmed), DD06 does not: before the due date DD06 is ``pendiente`` and
    keeps its verdict; after it, ``vencida`` and ``no_cumple``. A titular who revokes their
    enlace leaves the district ``no_cumple`` while that person is still designated. The
    contract's compliance keys are all still there; no projection error is recorded. The
    institute's verdict and summary line follow the districts'."""
    world = make_world(collect=False)
    dd06 = District.register("DD06", by=world.coadmin, at=T0)
    registry = DeviceRegistry.open(by=world.coadmin, at=T0)
    registry.register("PC-1", district="DD05", description="PC", by=world.coadmin, at=T0)
    registry.register("PC-2", district="DD05", description="PC", by=world.coadmin, at=T0)
    registry.retire("PC-2", by=world.coadmin, at=T0)
    calendar = WorkingCalendar.open(by=None, at=T0)
    calendar.adopt(POLICY, at=T0)
    calendar.declare_non_working_day("2025-03-05", channel=OFICIO, by=world.coadmin, at=T0)
    calendar.authorize_hours(
        starts_on="2025-03-08",
        ends_on="2025-03-09",
        start="18:00",
        end="06:00",
        reason="jornada",
        channel=OFICIO,
        by=world.coadmin,
        at=T0,
    )
    campaign = Recertification.open("2025-T1", due=later(days=10), by=world.coadmin, at=later(2))
    campaign.attest(
        "DD05",
        titular_id=world.titular.id,
        administrator_id=world.ana.id,
        accounts=["DD05-x"],
        by=world.titular,
        at=later(3),
    )
    campaign.attest_roster(["utcsyd"], by=world.coadmin, at=later(4))
    ledger = LocalLedger()
    ledger.save(*world.people, world.district, dd06, registry, calendar, campaign)
    db = ledger.project_into(tmp_path / "view.sqlite")

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM projection_errors").fetchone() == (0,)
        assert conn.execute("SELECT device_id, district FROM devices").fetchall() == [
            ("PC-1", "DD05")
        ]
        assert conn.execute("SELECT day FROM non_working_days").fetchall() == [("2025-03-05",)]
        assert conn.execute("SELECT start, end FROM special_hours").fetchall() == [
            ("18:00", "06:00")
        ]
        assert conn.execute("SELECT COUNT(*) FROM policies").fetchone() == (1,)

    names = PersonNames({str(p.id): p.username for p in world.people})

    summaries: list[dict[str, object]] = []

    def compliance(days: float) -> dict[str, dict[str, object]]:
        built = load_report(
            "cumplimiento",
            Scope("coadministrador"),
            ReportFilter(),
            database=db,
            names=names,
            now=later(days=days),
        )
        summaries.append(built.summary)
        return {str(r["distrito"]): r for r in built.rows}

    early = compliance(1)
    assert early["DD05"]["recertificacion"] == {
        "periodo": "2025-T1",
        "estado": "confirmada",
        "vence": early["DD05"]["recertificacion"]["vence"],  # type: ignore[index]
    }
    assert early["DD06"]["recertificacion"]["estado"] == "pendiente"  # type: ignore[index]
    assert early["DD06"]["recertificacion_vencida"] is False
    for key in ("titular", "administrador", "cuentas", "obligaciones_vencidas", "veredicto"):
        assert key in early["DD05"]

    late = compliance(11)
    assert late["DD06"]["recertificacion"]["estado"] == "vencida"  # type: ignore[index]
    assert late["DD06"]["recertificacion_vencida"] is True
    assert late["DD06"]["veredicto"] == "no_cumple"
    assert any("recertificación 2025-T1" in str(m) for m in late["DD06"]["motivos"])  # type: ignore[attr-defined]
    assert late["DD05"]["recertificacion_vencida"] is False
    assert summaries[-1]["veredicto"] == "no_cumple"
    assert "DD06" in str(summaries[-1]["linea"])
    assert late["DD05"]["veredicto_instituto"] == "no_cumple"

    campaign.revoke(
        "DD05",
        titular_id=world.titular.id,
        administrator_id=world.ana.id,
        reason="cambió de área",
        by=world.titular,
        at=later(5),
    )
    ledger.save(campaign)
    ledger.project_into(db)
    revoked = compliance(1)["DD05"]
    assert revoked["recertificacion"]["estado"] == "revocada"  # type: ignore[index]
    assert revoked["veredicto"] == "no_cumple"
