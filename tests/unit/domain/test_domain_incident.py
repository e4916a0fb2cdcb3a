"""Incidents (8.C, 9.XVIII; R5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.domain import (
    ContainmentWithoutRotationError,
    Incident,
    InvalidChoiceError,
    InvalidTransitionError,
    NotAllowedToReportError,
    NotCoadministratorError,
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


def test_incident_types_are_the_two_of_the_guidelines(world: World) -> None:
    """Intervened by outsiders, or operated by unauthorized staff."""
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
    """Reported → notified → contained → closed; no skipping, no going back."""
    incident = report(world)
    with pytest.raises(NotCoadministratorError):
        incident.notify(channel=TO_SECRETARIAT, by=world.titular, at=later(61))
    with pytest.raises(InvalidTransitionError):
        incident.contain(world.district, "Contraseña cambiada", by=world.coadmin, at=later(61))
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
