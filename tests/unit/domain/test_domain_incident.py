"""Incidents (8.C, 9.XVIII; R5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.domain import (
    ContainmentWithoutRotationError,
    DetectionTimeError,
    Incident,
    InvalidChoiceError,
    InvalidTransitionError,
    NotAllowedToReportError,
    NotCoadministratorError,
    NotExecutiveSecretariatError,
    OfficialChannel,
    Person,
    Policy,
)

from .domain_world import FINGERPRINT, POLICY, World, later, make_world

TO_SECRETARIAT = OfficialChannel.oficio("IECM/UTCSyD/0042/2025")


@pytest.fixture
def world() -> World:
    return make_world()


def report(world: World, *, by: Person | None = None, policy: Policy = POLICY) -> Incident:
    return Incident.report(
        world.district,
        "DD05-x",
        "intervencion",
        "Publicaciones ajenas al Instituto desde las 03:00",
        by=by or world.ana,
        policy=policy,
        at=later(60),
    )


@pytest.mark.parametrize("reporter", ["ana", "titular", "coadmin"])
def test_the_administrator_titular_or_utcsyd_report(world: World, reporter: str) -> None:
    """8.C, 9.XVIII: the administrator informs the titular and UTCSyD; any of them may record
    the report. The notification deadline is fixed at report time."""
    incident = report(world, by=getattr(world, reporter))
    assert (incident.status, incident.account, incident.incident_type) == (
        "reportado",
        "DD05-x",
        "intervencion",
    )
    assert incident.notify_by == later(60) + timedelta(hours=1)


@pytest.mark.parametrize("reporter", ["secretaria", "beto", "other"])
def test_others_cannot_report(world: World, reporter: str) -> None:
    """Someone outside the district (or the Secretaría Ejecutiva, who is notified) cannot."""
    with pytest.raises(NotAllowedToReportError):
        report(world, by=getattr(world, reporter))


def test_incident_types_are_those_of_the_guidelines(world: World) -> None:
    """Intervened by outsiders, or operated by unauthorized staff (and issue 19's others)."""
    incident = Incident.report(
        world.district,
        "DD05-facebook",
        "operacion-no-autorizada",
        "Publicó personal no designado",
        by=world.titular,
        policy=POLICY,
        at=later(60),
    )
    assert incident.incident_type == "operacion_no_autorizada"
    with pytest.raises(InvalidChoiceError):
        Incident.report(
            world.district, "DD05-x", "spam", "x", by=world.titular, policy=POLICY, at=later(60)
        )


@pytest.mark.parametrize(
    ("minutes", "on_time"), [(30, True), (60, True), (61, False), (60 * 24, False)]
)
def test_notification_is_measured_against_the_deadline(
    world: World, minutes: int, on_time: bool
) -> None:
    """ "Inmediatamente": on time up to one hour after the report (by default)."""
    incident = report(world)
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(60 + minutes))
    assert incident.status == "notificado"
    assert incident.notified_on_time is on_time


def test_a_stricter_policy_shortens_the_deadline(world: World) -> None:
    """The deadline in force at report time is the one applied."""
    incident = report(world, policy=Policy(notification_window=timedelta(minutes=15)))
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(80))
    assert incident.notified_on_time is False


def test_only_utcsyd_notifies_and_states_only_move_forward(world: World) -> None:
    """Reported → notified → contained → closed; no closing before containment, no second
    notification, no going back."""
    incident = report(world)
    with pytest.raises(NotCoadministratorError):
        incident.notify(channel=TO_SECRETARIAT, by=world.titular, at=later(61))
    with pytest.raises(InvalidTransitionError):
        incident.close("Cerrado", by=world.coadmin, at=later(61))
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(62))
    with pytest.raises(InvalidTransitionError) as raised:
        incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(63))
    assert raised.value.state == "notificado"


def test_containment_needs_a_rotation_confirmed_after_the_report(world: World) -> None:
    """8.C: the credentials rotated before the report do not contain it; one confirmed after
    does, and containment records its version."""
    incident = report(world)
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(61))
    with pytest.raises(ContainmentWithoutRotationError) as raised:
        incident.contain(world.district, "Se revisó", by=world.coadmin, at=later(62))
    assert raised.value.last_confirmed_at == later(1)
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(70)
    )
    world.district.confirm_rotation("DD05-x", version=2, by=world.coadmin, at=later(75))
    incident.contain(world.district, "Contraseña rotada", by=world.coadmin, at=later(80))
    assert (incident.status, incident.rotation_version) == ("contenido", 2)
    incident.close("Cuenta recuperada", by=world.coadmin, at=later(90))
    assert (incident.status, incident.closed_at) == ("cerrado", later(90))
    with pytest.raises(InvalidTransitionError):
        incident.close("Otra vez", by=world.coadmin, at=later(91))


def test_a_rotation_of_another_account_does_not_contain(world: World) -> None:
    """Only the affected account's rotation counts."""
    incident = report(world)
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(61))
    world.district.start_rotation(
        "DD05-facebook", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(70)
    )
    world.district.confirm_rotation("DD05-facebook", version=2, by=world.coadmin, at=later(75))
    with pytest.raises(ContainmentWithoutRotationError):
        incident.contain(world.district, "Se rotó", by=world.coadmin, at=later(80))


# --- issue 19: incidents as they happen -----------------------------------------------------


def rotate_after_report(world: World, *, at: int = 70) -> None:
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(at)
    )
    world.district.confirm_rotation("DD05-x", version=2, by=world.coadmin, at=later(at + 5))


@pytest.mark.parametrize(
    "kind", ["suplantacion", "perdida-acceso", "filtracion", "otro", "operacion-no-autorizada"]
)
def test_the_types_of_issue_19_are_accepted(world: World, kind: str) -> None:
    """Impersonation, lost access, a leak or anything else is an incident too."""
    incident = Incident.report(
        world.district, "DD05-x", kind, "x", by=world.titular, policy=POLICY, at=later(60)
    )
    assert incident.incident_type == kind.replace("-", "_")


def test_the_detection_time_is_recorded_and_never_after_the_report(world: World) -> None:
    """The report says when it was noticed (default: when reported), never later; the
    notification deadline still runs from the report."""
    incident = Incident.report(
        world.district, "DD05-x", "intervencion", "x",
        by=world.ana, policy=POLICY, at=later(60), detected_at=later(15),
    )  # fmt: skip
    assert (incident.detected_at, incident.reported_at) == (later(15), later(60))
    assert incident.notify_by == later(60) + timedelta(hours=1)
    assert report(world).detected_at == later(60)
    with pytest.raises(DetectionTimeError) as raised:
        Incident.report(
            world.district, "DD05-x", "intervencion", "x",
            by=world.ana, policy=POLICY, at=later(60), detected_at=later(61),
        )  # fmt: skip
    assert raised.value.field == "detectado"


def test_containment_may_precede_notification_and_closure_needs_both(world: World) -> None:
    """Issue 19: rotate and contain at once; the notification follows (the incident stays
    contained, the timing is still measured); it cannot be closed before it."""
    incident = report(world)
    rotate_after_report(world)
    incident.contain(world.district, "Contraseña rotada", by=world.coadmin, at=later(80))
    assert (incident.status, incident.notified_at) == ("contenido", None)
    with pytest.raises(InvalidTransitionError) as raised:
        incident.close("Listo", by=world.coadmin, at=later(81))
    assert raised.value.state == "sin_notificar"
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(200))
    assert (incident.status, incident.notified_on_time) == ("contenido", False)
    incident.close("Listo", by=world.coadmin, at=later(210))
    assert incident.status == "cerrado"


def test_a_false_alarm_is_dismissed_with_its_reason(world: World) -> None:
    """Only UTCSyD dismisses; a dismissed incident takes no further step."""
    incident = report(world)
    with pytest.raises(NotCoadministratorError):
        incident.dismiss("No fue nada", by=world.titular, at=later(61))
    incident.dismiss("Publicación programada por la propia DD", by=world.coadmin, at=later(62))
    assert (incident.status, incident.dismissed_at) == ("descartado", later(62))
    assert incident.dismiss_reason == "Publicación programada por la propia DD"
    with pytest.raises(InvalidTransitionError):
        incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(63))
    with pytest.raises(InvalidTransitionError):
        incident.dismiss("otra vez", by=world.coadmin, at=later(63))
    with pytest.raises(InvalidTransitionError):
        incident.contain(world.district, "x", by=world.coadmin, at=later(63))


def test_only_the_secretaria_acknowledges_a_notified_incident_once(world: World) -> None:
    """8.C: the Secretaría Ejecutiva takes note (with its measures) after being notified."""
    incident = report(world)
    with pytest.raises(InvalidTransitionError):
        incident.acknowledge(None, by=world.secretaria, at=later(61))
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(62))
    for someone in (world.coadmin, world.titular, world.ana):
        with pytest.raises(NotExecutiveSecretariatError):
            incident.acknowledge("x", by=someone, at=later(63))
    incident.acknowledge("Informar al Consejo", by=world.secretaria, at=later(64))
    assert (incident.acknowledged_at, incident.measures) == (later(64), "Informar al Consejo")
    with pytest.raises(InvalidTransitionError):
        incident.acknowledge(None, by=world.secretaria, at=later(65))
