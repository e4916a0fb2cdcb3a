"""``custodia historial``: who held each role of a district, when, on which vía oficial — a pure
function of the district's events (R9)."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from events.domain import OfficialChannel
from projections.history import designation_history
from tests.unit.domain.domain_world import OFICIO, POLICY, later, make_world, new_person


def test_every_holder_of_every_role_with_dates_and_channel() -> None:
    """Titular, acting titular, administrator and substitute rows, each with from/to and its
    vía oficial; a UTCSyD exception is shown on the designation it backed; ``on`` keeps who
    held each role that day (Mexico City time)."""
    world = make_world(collect=False)
    district = world.district
    names: dict[UUID, str] = {p.id: p.username for p in world.people}
    rosa = new_person("rosa", by=world.coadmin, role="secretaria")
    names[rosa.id] = "rosa"
    memo = OfficialChannel.memorandum("MEM/DD05/7")
    # 3 March: ana is the administrator (make_world); 4 March: beto substitutes.
    district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 3, 4),
        ends_on=date(2025, 3, 6),
        by=world.titular,
        channel=memo,
        policy=POLICY,
        at=later(30),
    )
    district.appoint_acting_titular(
        rosa,
        starts_on=date(2025, 3, 5),
        ends_on=date(2025, 3, 7),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(40),
    )
    # The service's periodic pass records the substitution's start and the return.
    district.advance(policy=POLICY, at=later(days=1.5))
    district.advance(policy=POLICY, at=later(days=3.5))
    # 10 March: UTCSyD designates carla, by exception.
    district.designate(
        world.carla,
        by=world.coadmin,
        channel=OFICIO,
        policy=POLICY,
        at=later(days=7),
        exception="Titular sin sistema",
    )
    events = list(district.collect_events())
    rows = designation_history(events, names.get)
    by_role = {(r["rol"], r["persona"]): r for r in rows}
    assert set(by_role) == {
        ("titular", "titular05"),
        ("titular_encargado", "rosa"),
        ("administrador", "ana"),
        ("sustituto", "beto"),
        ("administrador", "carla"),
    }
    beto = by_role[("sustituto", "beto")]
    assert beto["desde"] == POLICY.start_of_day(date(2025, 3, 4)).isoformat()
    assert beto["hasta"] == POLICY.start_of_day(date(2025, 3, 6)).isoformat()
    assert beto["via_oficial"].startswith("memorandum MEM/DD05/7")
    carla = by_role[("administrador", "carla")]
    assert carla["hasta"] is None
    assert carla["excepcion"] == "Titular sin sistema"
    assert by_role[("administrador", "ana")]["hasta"] == later(days=7).isoformat()
    assert by_role[("administrador", "ana")]["excepcion"] is None

    on_5th = designation_history(events, names.get, on=date(2025, 3, 5))
    assert {(r["rol"], r["persona"]) for r in on_5th} == {
        ("titular", "titular05"),
        ("titular_encargado", "rosa"),
        ("administrador", "ana"),
        ("sustituto", "beto"),
    }
    on_12th = designation_history(events, names.get, on=date(2025, 3, 12))
    assert {(r["rol"], r["persona"]) for r in on_12th} == {
        ("titular", "titular05"),
        ("administrador", "carla"),
    }


def test_a_departure_closes_the_rows_of_the_person_who_left() -> None:
    """After ``personas baja`` of the administrator and the titular, their rows end at the
    departure and nobody holds either role from then on."""
    world = make_world(collect=False)
    district = world.district
    names: dict[UUID, str] = {p.id: p.username for p in world.people}
    at = later(days=1)
    for person in (world.ana, world.titular):
        person.depart("baja", by=world.coadmin, channel=OFICIO, at=at)
        district.release_person(
            person,
            roles=frozenset({"titular", "administrador"}),
            reason="baja",
            cause="salida",
            by=world.coadmin,
            channel=OFICIO,
            policy=POLICY,
            at=at,
        )
    events = list(district.collect_events())
    rows = designation_history(events, names.get)
    assert {(r["rol"], r["persona"]) for r in rows} == {
        ("titular", "titular05"),
        ("administrador", "ana"),
    }
    assert all(r["hasta"] == at.isoformat() for r in rows)
    assert designation_history(events, names.get, on=(at + timedelta(days=1)).date()) == []
