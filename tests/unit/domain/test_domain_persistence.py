"""The domain on eventsourcing's own machinery: storing, reloading, snapshots, upcasting, topics.

Uses the library's in-memory (POPO) persistence; nothing here depends on a persistence module.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from events.domain import (
    AccountOpeningRequest,
    ChangeRequest,
    District,
    Incident,
    OfficialChannel,
    Person,
)

from .domain_world import (
    FINGERPRINT,
    OFICIO,
    POLICY,
    DomainApplication,
    World,
    in_memory_application,
    later,
    make_world,
)


def rich_history() -> tuple[World, ChangeRequest, Incident]:
    """A district that went through most of its life: designation, a scheduled absence with a
    read by the substitute, a return, a password change request, an incident to closure."""
    world = make_world(collect=False)
    district = world.district
    district.register_totp("DD05-x", by=world.coadmin, at=later(2))
    district.record_read(
        "DD05-x", reader=world.ana, version=1, purpose="publicar", device_id="pc-dd05-01",
        policy=POLICY, at=later(3),
    )  # fmt: skip
    district.report_absence(
        "vacaciones", substitute=world.beto, starts_on=date(2025, 3, 4),
        ends_on=date(2025, 3, 6), by=world.titular, channel=OFICIO, policy=POLICY, at=later(4),
    )  # fmt: skip
    district.record_code_read(
        "DD05-x", reader=world.beto, purpose="entrar", device_id=None, policy=POLICY,
        at=later(days=1),
    )  # fmt: skip
    district.advance(policy=POLICY, at=later(days=3))
    request = ChangeRequest.file(
        district, "DD05-x", "contrasena", "Rotar tras el regreso",
        channel=OfficialChannel.email("titular.dd05@iecm.mx", date(2025, 3, 6)),
        by=world.titular, at=later(days=3, minutes=1),
    )  # fmt: skip
    request.approve(by=world.coadmin, at=later(days=3, minutes=2))
    district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin,
        at=later(days=3, minutes=3),
    )  # fmt: skip
    district.confirm_rotation(
        "DD05-x", version=2, by=world.coadmin, at=later(days=3, minutes=4),
        change_request=request,
    )  # fmt: skip
    request.apply(district, by=world.coadmin, at=later(days=3, minutes=5))
    incident = Incident.report(
        district, "DD05-facebook", "intervencion", "Publicaciones ajenas", by=world.ana,
        policy=POLICY, at=later(days=3, minutes=6),
    )  # fmt: skip
    incident.notify(channel=OFICIO, by=world.coadmin, at=later(days=3, minutes=7))
    district.start_rotation(
        "DD05-facebook", version=2, fingerprint=FINGERPRINT, by=world.coadmin,
        at=later(days=3, minutes=8),
    )  # fmt: skip
    district.confirm_rotation(
        "DD05-facebook", version=2, by=world.coadmin, at=later(days=3, minutes=9)
    )
    incident.contain(district, "Rotada", by=world.coadmin, at=later(days=3, minutes=10))
    incident.close("Recuperada", by=world.coadmin, at=later(days=3, minutes=11))
    world.ana.revoke_role("administrador", by=world.coadmin, at=later(days=4))
    return world, request, incident


def aggregates(world: World, *others: Aggregate) -> list[Aggregate]:
    return [*world.people, world.district, *others]


def test_every_aggregate_round_trips_through_an_application() -> None:
    """Saved and reloaded through the library, each aggregate equals the one in memory."""
    world, request, incident = rich_history()
    app = in_memory_application()
    app.save(*aggregates(world, request, incident))
    for aggregate in aggregates(world, request, incident):
        assert app.repository.get(aggregate.id) == aggregate


def test_events_need_no_custom_transcodings() -> None:
    """Event payloads are plain JSON types, UUIDs and datetimes: an application with the
    library's default transcoder stores and reloads them (other layers can read the ledger
    without this package's transcodings)."""
    world, request, incident = rich_history()
    app: Application[Any] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(*aggregates(world, request, incident))
    assert app.repository.get(world.district.id) == world.district
    assert app.repository.get(request.id) == request


def test_snapshots_round_trip_with_the_domain_transcodings() -> None:
    """State (dataclasses, dates) survives a snapshot when `register_transcodings` is used."""

    class SnapshottingApplication(DomainApplication):
        snapshotting_intervals = {District: 5, Person: 2}  # noqa: RUF012

    world, request, incident = rich_history()
    app = in_memory_application(SnapshottingApplication)
    app.save(*aggregates(world, request, incident))
    assert app.snapshots is not None
    assert list(app.snapshots.get(world.district.id))
    for aggregate in aggregates(world):
        assert app.repository.get(aggregate.id) == aggregate


def _read_v1_state(world: World) -> dict[str, Any]:
    # A CredentialRead as version 1 stored it: no `kind`, no `class_version`.
    return {
        "timestamp": later(days=5),
        "account": "DD05-x",
        "version": 2,
        "reader_role": "coadministrador",
        "purpose": "auditoría",
        "device_id": None,
        "registered_device": False,
        "outside_working_hours": False,
        "by": world.carla.id,
    }


def test_version_1_credential_reads_are_upcast() -> None:
    """An old CredentialRead without `kind` loads as a password read and still updates who has
    seen the version; new reads are stored as version 2."""
    world, request, incident = rich_history()
    app = in_memory_application()
    app.save(*aggregates(world, request, incident))
    stored_v2 = [
        n for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.topic == "custodia:District.CredentialRead"
    ]  # fmt: skip
    assert stored_v2
    assert all(b'"class_version":2' in n.state for n in stored_v2)

    old = StoredEvent(
        originator_id=world.district.id,
        originator_version=world.district.version + 1,
        topic="custodia:District.CredentialRead",
        state=app.mapper.transcoder.encode(_read_v1_state(world)),
    )
    assert b"kind" not in old.state
    upcast = app.mapper.to_domain_event(old)
    assert isinstance(upcast, District.CredentialRead)
    assert (upcast.kind, upcast.version, upcast.by) == ("contrasena", 2, world.carla.id)

    app.recorder.insert_events([old])
    reloaded: District = app.repository.get(world.district.id)
    assert isinstance(reloaded, District)
    assert world.carla.id in reloaded.exposure("DD05-x", 2)


def test_version_1_incident_reports_are_upcast() -> None:
    """Issue 19: a report stored before the detection time was asked loads as detected when
    it was reported; new reports are stored as version 2 with their own detection time."""
    world, request, incident = rich_history()
    app = in_memory_application()
    app.save(*aggregates(world, request, incident))
    [stored] = [
        n for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.topic == "custodia:Incident.Reported"
    ]  # fmt: skip
    assert b'"class_version":2' in stored.state
    state = app.mapper.transcoder.decode(stored.state)
    del state["detected_at"]
    state.pop("class_version")
    old = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=app.mapper.transcoder.encode(state),
    )
    upcast = app.mapper.to_domain_event(old)
    assert isinstance(upcast, Incident.Reported)
    assert upcast.detected_at == upcast.timestamp
    other = in_memory_application()
    other.recorder.insert_events([old])
    reloaded: Incident = other.repository.get(incident.id)
    assert isinstance(reloaded, Incident)
    assert reloaded.detected_at == reloaded.reported_at


EXPECTED_TOPICS = {
    "custodia:AccountOpeningRequest": ["Approved", "Filed", "Rejected"],
    "custodia:ChangeRequest": ["Applied", "Approved", "Filed", "Rejected"],
    "custodia:District": [
        "AbsenceEnded",
        "AbsenceReported",
        "AbsenceStarted",
        "AccountClosed",
        "AccountRegistered",
        "AccountSecretsDestroyed",
        "AccountSettingChanged",
        "AccountStatusRecorded",
        "ActingTitularAppointed",
        "ActingTitularEnded",
        "AdministratorDesignated",
        "AuthorityExceptionRecorded",
        "CredentialHolderChanged",
        "CredentialRead",
        "DesignationEnded",
        "ReadVoided",
        "Registered",
        "RotationAbandoned",
        "RotationConfirmed",
        "RotationObligationOpened",
        "RotationObligationWithdrawn",
        "RotationStarted",
        "TitularAppointed",
        "TitularEnded",
        "TotpRegistered",
    ],
    "custodia:Incident": [
        "Acknowledged",
        "Closed",
        "Contained",
        "Dismissed",
        "LedgerContained",
        "LedgerTamperingDetected",
        "Notified",
        "Reported",
        "UnrecordedAccessChangeDetected",
        "UnrecordedReadDetected",
    ],
    "custodia:Person": [
        "ContactRead",
        "Departed",
        "DeviceRegistered",
        "DeviceRetired",
        "PersonalDataErased",
        "PersonalDataReplaced",
        "Registered",
        "RoleGranted",
        "RoleRevoked",
        "SecondFactorEnrolled",
        "SecondFactorRequired",
        "SecondFactorReset",
    ],
}


def test_topics_are_stable_and_registered() -> None:
    """The ledger names classes by these topics for years: renaming a class or moving a module
    must not change them (register the old topic if a name ever changes)."""
    found: dict[str, list[str]] = {}
    for cls in (AccountOpeningRequest, ChangeRequest, District, Incident, Person):
        events = sorted(
            name
            for name, value in vars(cls).items()
            if isinstance(value, type)
            and issubclass(value, CanMutateAggregate)
            and name not in ("Event", "Created")
        )
        topic = vars(cls)["TOPIC"]
        found[topic] = events
        assert resolve_topic(topic) is cls
        for name in events:
            assert resolve_topic(f"{topic}.{name}") is getattr(cls, name)
    assert found == EXPECTED_TOPICS


def test_stored_topics_are_the_stable_ones() -> None:
    """What is written to the store is the stable topic, not the module path."""
    world, request, incident = rich_history()
    app = in_memory_application()
    app.save(*aggregates(world, request, incident))
    topics = {n.topic for n in app.recorder.select_notifications(start=1, limit=1000)}
    assert all(topic.startswith("custodia:") for topic in topics)
    assert "custodia:District.CredentialHolderChanged" in topics
