"""The institution's controls in the domain (issue 19): institutional devices per district
(8.B), authorized other hours and the IECM's non-working days (8.A), the policy in force, the
maximum password age and recertification campaigns."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import resolve_topic

from events.domain import (
    District,
    NotCoadministratorError,
    NotDistrictAuthorityError,
    Policy,
    ValidationError,
)
from events.domain.controls import (
    DeviceRegistry,
    InvalidRecertificationPeriodError,
    Recertification,
    RegistryDeviceAlreadyRegisteredError,
    RegistryDeviceNotFoundError,
    WorkingCalendar,
)
from events.domain.policy import SpecialHours
from events.errors import ConfigurationError
from tests.unit.domain.domain_world import (
    OFICIO,
    POLICY,
    T0,
    World,
    in_memory_application,
    later,
    make_world,
    new_person,
)

# Monday 3 March 2025, 23:00 Mexico City: outside the default working hours.
NIGHT = datetime(2025, 3, 4, 5, 0, tzinfo=UTC)


def read(world: World, at: datetime, device: str | None, policy: Policy = POLICY, **kw: Any) -> Any:
    world.district.record_read(
        "DD05-x",
        reader=world.ana,
        version=1,
        purpose="publicar",
        device_id=device,
        policy=policy,
        at=at,
        **kw,
    )
    return world.district.collect_events()[-1]


# --- devices (8.B) --------------------------------------------------------------------------


def test_devices_are_registered_per_district_by_a_coadministrator() -> None:
    """Only UTCSyD registers a device; it belongs to one district; a second registration of
    the same id and a retirement of an unknown one are refused."""
    world = make_world()
    registry = DeviceRegistry.open(by=world.coadmin, at=T0)
    registry.register("PC-DD05-07", district="5", description="PC", by=world.coadmin, at=T0)
    assert registry.is_registered("PC-DD05-07", "DD05")
    assert not registry.is_registered("PC-DD05-07", "DD06")
    assert registry.devices_of("DD05") == frozenset({"PC-DD05-07"})
    with pytest.raises(RegistryDeviceAlreadyRegisteredError):
        registry.register("PC-DD05-07", district="DD06", description="x", by=world.coadmin, at=T0)
    with pytest.raises(NotCoadministratorError):
        registry.register("PC-2", district="DD05", description="x", by=world.titular, at=T0)
    with pytest.raises(NotCoadministratorError):
        DeviceRegistry.open(by=world.ana, at=T0)
    registry.retire("PC-DD05-07", by=world.coadmin, at=later(1))
    assert not registry.is_registered("PC-DD05-07", "DD05")
    with pytest.raises(RegistryDeviceNotFoundError):
        registry.retire("PC-DD05-07", by=world.coadmin, at=later(2))


def test_a_read_is_flagged_unless_its_device_is_registered_for_the_district() -> None:
    """8.B: a device of the district counts as registered; another district's device, no
    device or an unknown one do not; the older per-person registration still counts."""
    world = make_world()
    assert read(world, later(5), "PC-DD05-07", district_devices={"PC-DD05-07"}).registered_device
    assert not read(
        world, later(6), "PC-DD06-01", district_devices={"PC-DD05-07"}
    ).registered_device
    assert not read(world, later(7), None, district_devices={"PC-DD05-07"}).registered_device
    assert read(world, later(8), "pc-dd05-01").registered_device  # ana's own, per person


# --- hours and calendar (8.A) ---------------------------------------------------------------


def test_special_hours_cover_their_days_and_hours_even_past_midnight() -> None:
    """A window with hours covers those hours of each day; an overnight one (18:00–06:00)
    covers the small hours after its last day too; a window without hours, whole days."""
    zone = POLICY.zone
    night = SpecialHours(date(2025, 3, 3), date(2025, 3, 3), time(18, 0), time(6, 0))
    assert night.covers(datetime(2025, 3, 3, 23, 0, tzinfo=zone))
    assert night.covers(datetime(2025, 3, 4, 5, 59, tzinfo=zone))
    assert not night.covers(datetime(2025, 3, 4, 6, 0, tzinfo=zone))
    assert not night.covers(datetime(2025, 3, 3, 17, 0, tzinfo=zone))
    whole = SpecialHours(date(2025, 3, 8), date(2025, 3, 9))
    assert whole.covers(datetime(2025, 3, 9, 3, 0, tzinfo=zone))
    assert not whole.covers(datetime(2025, 3, 10, 3, 0, tzinfo=zone))


def test_a_read_within_authorized_hours_is_not_flagged_and_a_declared_day_is() -> None:
    """8.A: the calendar recorded in the ledger changes the verdict on a read: 23:00 is
    outside hours until an authorized window covers it; a declared non-working day makes
    10:00 of a Wednesday outside hours."""
    world = make_world()
    calendar = WorkingCalendar.open(by=None, at=T0)
    assert read(world, NIGHT, None, calendar.apply_to(POLICY)).outside_working_hours
    calendar.authorize_hours(
        starts_on="2025-03-03",
        ends_on="2025-03-03",
        start="18:00",
        end="06:00",
        reason="jornada electoral",
        channel=OFICIO,
        by=world.coadmin,
        at=later(1),
    )
    assert not read(world, NIGHT, None, calendar.apply_to(POLICY)).outside_working_hours
    wednesday = datetime(2025, 3, 5, 16, 0, tzinfo=UTC)  # 10:00 local
    assert not read(world, wednesday, None, calendar.apply_to(POLICY)).outside_working_hours
    assert calendar.declare_non_working_day(
        "2025-03-05", channel=OFICIO, by=world.coadmin, at=later(2)
    )
    assert not calendar.declare_non_working_day(
        date(2025, 3, 5), channel=OFICIO, by=world.coadmin, at=later(3)
    )
    later_read = read(world, wednesday + timedelta(minutes=1), None, calendar.apply_to(POLICY))
    assert later_read.outside_working_hours


def test_calendar_entries_are_validated_and_for_coadministrators_only() -> None:
    """Bad dates, a reversed period, half a time range, equal times and people other than
    UTCSyD are refused with nothing recorded."""
    world = make_world()
    calendar = WorkingCalendar.open(by=None, at=T0)
    calendar.collect_events()
    base: dict[str, Any] = {
        "starts_on": "2025-03-03",
        "ends_on": "2025-03-04",
        "start": None,
        "end": None,
        "reason": "proceso electoral",
        "channel": OFICIO,
        "by": world.coadmin,
        "at": later(1),
    }
    for change in (
        {"starts_on": "2025-02-30"},
        {"ends_on": "2025-03-01"},
        {"start": "18:00"},
        {"start": "25:00", "end": "06:00"},
        {"start": "08:00", "end": "08:00"},
    ):
        with pytest.raises(ValidationError):
            calendar.authorize_hours(**{**base, **change})
    with pytest.raises(NotCoadministratorError):
        calendar.authorize_hours(**{**base, "by": world.titular})
    with pytest.raises(NotCoadministratorError):
        calendar.declare_non_working_day("2025-03-05", channel=OFICIO, by=world.ana, at=later(1))
    assert calendar.collect_events() == []


def test_the_policy_is_recorded_once_per_change() -> None:
    """The service records the policy it runs under; the same settings again record nothing,
    a change records the new ones."""
    calendar = WorkingCalendar.open(by=None, at=T0)
    assert calendar.adopt(POLICY, at=later(1))
    assert not calendar.adopt(Policy(), at=later(2))
    assert calendar.adopt(Policy(max_password_age_days=90), at=later(3))
    adopted = [e for e in calendar.collect_events() if isinstance(e, WorkingCalendar.PolicyAdopted)]
    assert [e.settings["plazos"]["antiguedad_maxima_dias"] for e in adopted] == [180, 90]


def test_policy_file_keys_for_password_age_and_devices() -> None:
    """``[plazos] antiguedad_maxima_dias`` (default 180) and ``[equipos] exigir_registrado``
    (default false) are read; bad values name their key."""
    assert Policy().max_password_age_days == 180
    assert not Policy().require_registered_device
    policy = Policy.from_mapping(
        {"plazos": {"antiguedad_maxima_dias": 90}, "equipos": {"exigir_registrado": True}}
    )
    assert policy.max_password_age == timedelta(days=90)
    assert policy.require_registered_device
    for data, key in (
        ({"plazos": {"antiguedad_maxima_dias": -1}}, "plazos.antiguedad_maxima_dias"),
        ({"plazos": {"antiguedad_maxima_dias": "180"}}, "plazos.antiguedad_maxima_dias"),
        ({"equipos": {"exigir_registrado": "si"}}, "equipos.exigir_registrado"),
        ({"equipos": {"otra": 1}}, "equipos.otra"),
    ):
        with pytest.raises(ConfigurationError) as caught:
            Policy.from_mapping(data)
        assert caught.value.name == key


# --- password age -----------------------------------------------------------------------------


def test_an_old_password_opens_one_rotation_obligation_until_it_is_rotated() -> None:
    """A current password older than the maximum age opens one obligation (cause
    ``antiguedad``); asking again records nothing; once a rotation is confirmed, the new
    password ages afresh."""
    world = make_world()
    policy = Policy(max_password_age_days=30)
    district = world.district
    assert district.open_age_obligations(policy=policy, at=later(days=29)) == []
    opened = district.open_age_obligations(policy=policy, at=later(days=31))
    assert sorted(opened) == ["DD05-facebook", "DD05-x"]
    assert district.open_age_obligations(policy=policy, at=later(days=32)) == []
    events = district.collect_events()
    assert {e.cause for e in events if isinstance(e, District.RotationObligationOpened)} == {
        "antiguedad"
    }
    district.start_rotation(
        "DD05-x", version=2, fingerprint="cd" * 16, by=world.coadmin, at=later(days=33)
    )
    district.confirm_rotation("DD05-x", version=2, by=world.coadmin, at=later(days=33))
    assert not [o for o in district.open_obligations("DD05-x")]
    assert district.open_age_obligations(policy=policy, at=later(days=62)) == []
    assert district.open_age_obligations(policy=policy, at=later(days=64)) == ["DD05-x"]


# --- recertification --------------------------------------------------------------------------


def test_a_campaign_takes_each_titulars_answer_and_shows_what_is_overdue() -> None:
    """Only the titular the district appointed answers for it (confirm or revoke); UTCSyD
    attests its roster; unanswered districts are ``pendiente`` until the due date,
    ``vencida`` after."""
    world = make_world()
    due = later(days=15)
    with pytest.raises(InvalidRecertificationPeriodError):
        Recertification.open("2026-T5", due=due, by=world.coadmin, at=T0)
    with pytest.raises(NotCoadministratorError):
        Recertification.open("2025-T1", due=due, by=world.titular, at=T0)
    campaign = Recertification.open("2025-t1", due=due, by=world.coadmin, at=T0)
    assert campaign.period == "2025-T1"
    assert campaign.status("DD05", later(days=1)) == "pendiente"
    with pytest.raises(NotDistrictAuthorityError):
        campaign.attest(
            "DD05",
            titular_id=world.titular.id,
            administrator_id=world.ana.id,
            accounts=[],
            by=world.coadmin,
            at=T0,
        )
    with pytest.raises(NotDistrictAuthorityError):
        campaign.attest(
            "DD06",
            titular_id=world.titular.id,
            administrator_id=None,
            accounts=[],
            by=world.titular,
            at=T0,
        )
    stranger = new_person("titular05b", by=world.coadmin, role="titular", district="DD05")
    with pytest.raises(NotDistrictAuthorityError):  # a titular's role, not the one appointed
        campaign.attest(
            "DD05",
            titular_id=world.titular.id,
            administrator_id=None,
            accounts=[],
            by=stranger,
            at=T0,
        )
    campaign.attest(
        "DD05",
        titular_id=world.titular.id,
        administrator_id=world.ana.id,
        accounts=["DD05-x"],
        by=world.titular,
        at=later(1),
    )
    assert campaign.status("DD05", later(days=20)) == "confirmada"
    assert campaign.status("DD06", later(days=20)) == "vencida"
    campaign.revoke(
        "DD05",
        titular_id=world.titular.id,
        administrator_id=world.ana.id,
        reason="cambió de área",
        by=world.titular,
        at=later(2),
    )
    assert campaign.status("DD05", later(days=20)) == "revocada"
    with pytest.raises(NotCoadministratorError):
        campaign.attest_roster(["utcsyd"], by=world.titular, at=later(3))
    campaign.attest_roster(["utcsyd"], by=world.coadmin, at=later(3))
    assert campaign.status("UTCSyD", later(days=20)) == "confirmada"


def test_controls_are_saved_and_loaded_with_stable_topics() -> None:
    """The three aggregates round-trip through an event store under ``custodia:`` topics that
    do not move with the code."""
    world = make_world()
    registry = DeviceRegistry.open(by=world.coadmin, at=T0)
    registry.register("PC-1", district="DD05", description="PC", by=world.coadmin, at=T0)
    calendar = WorkingCalendar.open(by=None, at=T0)
    calendar.adopt(POLICY, at=T0)
    calendar.declare_non_working_day("2025-12-24", channel=OFICIO, by=world.coadmin, at=T0)
    campaign = Recertification.open("2025-T1", due=later(days=1), by=world.coadmin, at=T0)
    campaign.attest(
        "DD05",
        titular_id=world.titular.id,
        administrator_id=world.ana.id,
        accounts=[],
        by=world.titular,
        at=T0,
    )
    app = in_memory_application()
    app.save(registry, calendar, campaign)
    assert app.repository.get(registry.id).devices_of("DD05") == {"PC-1"}
    assert app.repository.get(calendar.id).non_working_days == {date(2025, 12, 24)}
    assert app.repository.get(campaign.id).status("DD05", later(days=2)) == "confirmada"
    topics = {n.topic for n in app.recorder.select_notifications(start=1, limit=100)}
    assert topics >= {
        "custodia:DeviceRegistry.Opened",
        "custodia:DeviceRegistry.DeviceRegistered",
        "custodia:WorkingCalendar.PolicyAdopted",
        "custodia:Recertification.DistrictAttested",
    }
    for cls in (DeviceRegistry, WorkingCalendar, Recertification):
        topic = vars(cls)["TOPIC"]
        assert resolve_topic(topic) is cls
        for name, value in vars(cls).items():
            if (
                isinstance(value, type)
                and issubclass(value, CanMutateAggregate)
                and name not in ("Event", "Created")
            ):
                assert resolve_topic(f"{topic}.{name}") is value
