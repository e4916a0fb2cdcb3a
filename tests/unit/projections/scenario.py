"""A week of DD05 (and a quiet DD06), with known answers for every report.

Monday 3 March 2025, 10:00 Mexico City (T0): the domain world — ana designated, DD05-x and
DD05-facebook at version 1 (confirmed at 10:01, fulfilling the designation's obligations). At
12:00 ana reads DD05-facebook v1 from her registered device, in working hours (no finding).

- Tue 4 March 10:00: the titular designates beto; obligations open for both accounts, due at the
  end of the next business day (Wed 5 March, 24:00).
- Tue 4 March 11:00: ana (no longer holder) cannot read; beto reads DD05-x v1 from no device
  (8.B finding).
- Wed 5 March 12:00: DD05-x rotated to v2 (on time); DD05-facebook never is (overdue from
  Thu 6 March 00:00: by Fri 7 March 10:00, 9 + 1 = 10 business hours).
- Sat 8 March 22:00 is after as_of; as_of is Fri 7 March 10:00.
- Wed 5 March 20:00: beto reads DD05-x v2 from his registered device, outside working hours (8.A).
- Thu 6 March 09:00: the titular files a change of e-mail by oficio; UTCSyD approves at 10:00.
- Thu 6 March 11:00: an incident is reported; notified at 13:30 (late: deadline 12:00).
- DD06: registered with a titular and no accounts (complies).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from events.domain import ChangeRequest, District, Incident, OfficialChannel, Person
from tests.unit.domain.domain_world import FINGERPRINT, OFICIO, POLICY, World, make_world
from tests.unit.projections.local import LocalLedger

AS_OF = datetime(2025, 3, 7, 16, 0, tzinfo=UTC)  # Fri 7 March 10:00 in Mexico City
USERNAMES = ("utcsyd", "titular05", "ana", "beto", "carla", "otro06", "secretaria", "titular06")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of March 2025 given in Mexico City time (UTC-6, no DST)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC) + timedelta(hours=6)


@dataclass
class Scenario:
    db: Path
    world: World
    titular06: Person
    request: ChangeRequest
    incident: Incident
    ledger: LocalLedger


def build(tmp_path: Path) -> Scenario:
    w = make_world(collect=False)
    ledger = LocalLedger()
    titular06 = Person.register(
        "titular06",
        personal_data="vault:v1:t6",
        personal_data_key="transit/pii/1",
        by=w.coadmin,
        at=w.district.modified_on,
    )
    titular06.grant_role("titular", district="DD06", by=w.coadmin, at=w.district.modified_on)
    dd06 = District.register("DD06", by=w.coadmin, at=w.district.modified_on)
    dd06.appoint_titular(titular06, by=w.coadmin, at=w.district.modified_on)
    ledger.save(*w.people, titular06, w.district, dd06)

    d = w.district
    d.record_read(
        "DD05-facebook",
        reader=w.ana,
        version=1,
        purpose="publicación",
        device_id="pc-dd05-01",
        policy=POLICY,
        at=local(3, 12),
    )
    d.designate(w.beto, by=w.titular, channel=OFICIO, policy=POLICY, at=local(4, 10))
    d.record_read(
        "DD05-x",
        reader=w.beto,
        version=1,
        purpose="publicación",
        device_id=None,
        policy=POLICY,
        at=local(4, 11),
    )
    d.start_rotation("DD05-x", version=2, fingerprint=FINGERPRINT, by=w.coadmin, at=local(5, 12))
    d.confirm_rotation("DD05-x", version=2, by=w.coadmin, at=local(5, 12, 5))
    ledger.save(d)
    w.beto.register_device("pc-dd05-02", by=w.coadmin, at=local(5, 13))
    ledger.save(w.beto)
    d.record_read(
        "DD05-x",
        reader=w.beto,
        version=2,
        purpose="publicación nocturna",
        device_id="pc-dd05-02",
        policy=POLICY,
        at=local(5, 20),
    )
    ledger.save(d)
    request = ChangeRequest.file(
        d,
        "DD05-x",
        "correo",
        "nuevo buzón institucional",
        channel=OfficialChannel.oficio("IECM/DD05/0077/2025"),
        by=w.titular,
        at=local(6, 9),
    )
    request.approve(by=w.coadmin, at=local(6, 10))
    incident = Incident.report(
        d,
        "DD05-facebook",
        "intervencion",
        "publicaciones ajenas",
        by=w.beto,
        policy=POLICY,
        at=local(6, 11),
    )
    incident.notify(
        channel=OfficialChannel.memorandum("MEM/SE/3"), by=w.coadmin, at=local(6, 13, 30)
    )
    ledger.save(request, incident)
    db = ledger.project_into(tmp_path / "proyecciones.sqlite")
    return Scenario(db, w, titular06, request, incident, ledger)


def ids(scenario: Scenario) -> dict[str, UUID]:
    w = scenario.world
    return {p: getattr(w, p).id for p in ("coadmin", "titular", "ana", "beto", "carla")}
