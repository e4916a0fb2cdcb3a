"""A small world for the domain tests: people with their roles, and district DD05.

Plain builders (not fixtures) so that hypothesis tests can build a fresh world per example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder

from events.domain import (
    District,
    OfficialChannel,
    Person,
    Policy,
    register_transcodings,
)

# Monday 3 March 2025, 10:00 in Mexico City (UTC-6): a business day, within working hours.
T0 = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
POLICY = Policy()
OFICIO = OfficialChannel.oficio("IECM/DD05/0001/2025")
FINGERPRINT = "ab" * 16


def later(minutes: float = 0, *, hours: float = 0, days: float = 0) -> datetime:
    """An instant after T0."""
    return T0 + timedelta(minutes=minutes, hours=hours, days=days)


def sealed(label: str) -> dict[str, str]:
    """Stand-in for the custody layer's sealed personal data."""
    return {"personal_data": f"vault:v1:{label}-ciphertext", "personal_data_key": "transit/pii/1"}


def new_person(
    username: str,
    *,
    by: Person,
    role: str | None = None,
    district: str | None = None,
    at: datetime = T0,
) -> Person:
    person = Person.register(username, **sealed(username), by=by, at=at)
    if role is not None:
        person.grant_role(role, district=district, by=by, at=at)
    return person


@dataclass
class World:
    """UTCSyD (``coadmin``), DD05's titular, three administrators (two of DD05, one free),
    an administrator of DD06, the Secretaría Ejecutiva, and DD05 with two open accounts."""

    coadmin: Person
    titular: Person
    ana: Person
    beto: Person
    carla: Person
    other: Person
    secretaria: Person
    district: District

    @property
    def people(self) -> list[Person]:
        return [
            self.coadmin,
            self.titular,
            self.ana,
            self.beto,
            self.carla,
            self.other,
            self.secretaria,
        ]


def make_world(*, designate: bool = True, rotate: bool = True, collect: bool = True) -> World:
    """DD05 with ``DD05-x`` and ``DD05-facebook``; optionally ana designated at T0 and both
    accounts at version 1 (confirmed at T0 + 1 minute, fulfilling the designation's
    obligations). With ``collect``, the events so far are discarded so that tests see only
    their own; without it, the whole history stays pending (to be saved)."""
    coadmin = Person.bootstrap("utcsyd", **sealed("utcsyd"), at=T0)
    titular = new_person("titular05", by=coadmin, role="titular", district="DD05")
    ana = new_person("ana", by=coadmin, role="administrador", district="DD05")
    beto = new_person("beto", by=coadmin, role="administrador", district="DD05")
    carla = new_person("carla", by=coadmin, role="administrador")
    other = new_person("otro06", by=coadmin, role="administrador", district="DD06")
    secretaria = new_person("secretaria", by=coadmin, role="secretaria")
    ana.register_device("pc-dd05-01", by=coadmin, at=T0)

    district = District.register("DD05", by=coadmin, at=T0)
    district.appoint_titular(titular, by=coadmin, at=T0)
    district.register_account(
        "DD05-x", handle="DD05IECM", email="dd05.x@iecm.mx", by=coadmin, at=T0
    )
    district.register_account(
        "DD05-facebook", handle="iecm.dd05", email="dd05.fb@iecm.mx", by=coadmin, at=T0
    )
    if designate:
        district.designate(ana, by=titular, channel=OFICIO, policy=POLICY, at=T0)
    if rotate:
        for account in ("DD05-x", "DD05-facebook"):
            district.start_rotation(account, version=1, fingerprint=FINGERPRINT, by=coadmin, at=T0)
        for account in ("DD05-x", "DD05-facebook"):
            district.confirm_rotation(account, version=1, by=coadmin, at=later(1))
    world = World(coadmin, titular, ana, beto, carla, other, secretaria, district)
    if collect:
        for aggregate in [*world.people, district]:
            aggregate.collect_events()
    return world


def event_names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


class DomainApplication(Application[Any]):
    """An application with the default in-memory (POPO) persistence, as later layers use the
    domain: with the domain's transcodings registered."""

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)


def in_memory_application(cls: type[Application[Any]] = DomainApplication) -> Application[Any]:
    return cls(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
