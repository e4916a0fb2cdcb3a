"""Departures, role endings and designation authority (issue 18; R2, R9), case by case."""

from __future__ import annotations

from datetime import date

import pytest

from events.domain import (
    DepartureIsNotAbsenceError,
    District,
    NotCoadministratorError,
    NotDistrictAuthorityError,
    PersonDepartedError,
    SelfRevocationError,
    TitularAlreadyAppointedError,
)

from .domain_world import OFICIO, POLICY, later, make_world, new_person

ALL_ROLES = frozenset({"titular", "administrador", "coadministrador", "secretaria"})


@pytest.mark.parametrize("reason", ["baja", "Promocion", "cambio-adscripcion"])
def test_a_departure_is_never_an_absence(reason: str) -> None:
    """``ausencia --motivo baja`` is refused for what it is (a departure: personas baja), even
    before the caller's authority is looked at."""
    world = make_world()
    for by in (world.titular, world.beto):
        with pytest.raises(DepartureIsNotAbsenceError) as raised:
            world.district.report_absence(
                reason,
                substitute=world.beto,
                starts_on=date(2025, 3, 4),
                by=by,
                channel=OFICIO,
                policy=POLICY,
                at=later(5),
            )
        assert raised.value.reason == reason.lower().replace("-", "_")


def test_the_departure_of_the_absent_administrator_ends_the_substitution_too() -> None:
    """ana (absent) leaves while beto substitutes: the absence and the designation end, beto
    stops holding, the district has no administrator, and each open account owes one rotation
    (from the change of holder)."""
    world = make_world()
    district = world.district
    district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 3, 3),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(5),
    )
    district.collect_events()
    world.ana.depart("promocion", by=world.coadmin, channel=OFICIO, at=later(10))
    owed = district.release_person(
        world.ana,
        roles=ALL_ROLES,
        reason="promocion",
        cause="salida",
        by=world.coadmin,
        channel=OFICIO,
        policy=POLICY,
        at=later(10),
    )
    events = district.collect_events()
    names = [type(e).__name__ for e in events]
    assert names[:3] == ["AbsenceEnded", "DesignationEnded", "CredentialHolderChanged"]
    assert district.administrator is None
    assert district.absence is None
    assert district.holder_at(later(11)) is None
    assert sorted(owed) == ["DD05-facebook", "DD05-x"]
    assert names.count("RotationObligationOpened") == 2
    assert world.ana.roles == {}


def test_a_departing_coadministrator_owes_only_the_accounts_whose_live_version_they_saw() -> None:
    """A coadministrator who generated DD05-x's current version leaves: DD05-x owes a rotation
    (outgoing: them); DD05-facebook, whose live version they never saw, owes nothing; a retried
    release opens nothing more."""
    world = make_world()
    district = world.district
    second = new_person("utcsyd2", by=world.coadmin, role="coadministrador")
    district.start_rotation("DD05-x", version=2, fingerprint="cd" * 16, by=second, at=later(5))
    district.confirm_rotation("DD05-x", version=2, by=second, at=later(6))
    district.collect_events()
    second.depart("cambio_adscripcion", by=world.coadmin, channel=OFICIO, at=later(7))

    def release() -> list[str]:
        return district.release_person(
            second,
            roles=ALL_ROLES,
            reason="cambio_adscripcion",
            cause="salida",
            by=world.coadmin,
            channel=OFICIO,
            policy=POLICY,
            at=later(7),
        )

    assert release() == ["DD05-x"]
    opened = [
        e for e in district.collect_events() if isinstance(e, District.RotationObligationOpened)
    ]
    assert [(o.account, o.outgoing_holder_id, o.cause) for o in opened] == [
        ("DD05-x", second.id, "salida")
    ]
    assert release() == []
    assert district.holder_id == world.ana.id  # the district's holder is untouched


def test_who_leaves_and_who_records_it() -> None:
    """Only a coadministrator records a departure, never their own; someone who left cannot
    leave again nor be given a role."""
    world = make_world()
    with pytest.raises(NotCoadministratorError):
        world.beto.depart("baja", by=world.titular, channel=OFICIO, at=later(1))
    with pytest.raises(SelfRevocationError):
        world.coadmin.depart("baja", by=world.coadmin, channel=OFICIO, at=later(1))
    world.beto.depart("baja", by=world.coadmin, channel=OFICIO, at=later(1))
    with pytest.raises(PersonDepartedError):
        world.beto.depart("otro", by=world.coadmin, channel=OFICIO, at=later(2))
    with pytest.raises(PersonDepartedError):
        world.beto.grant_role("administrador", district="DD05", by=world.coadmin, at=later(2))


def test_a_titular_is_named_by_registration_only_when_the_district_has_none() -> None:
    """``vacant_only`` (personas alta --rol titular): refused once the district has a titular,
    naming it; after the titular leaves, the next one is named."""
    world = make_world()
    newcomer = new_person("titular05b", by=world.coadmin, role="titular", district="DD05")
    with pytest.raises(TitularAlreadyAppointedError) as raised:
        world.district.appoint_titular(newcomer, by=world.coadmin, at=later(1), vacant_only=True)
    assert raised.value.titular_id == world.titular.id
    world.titular.depart("baja", by=world.coadmin, channel=OFICIO, at=later(2))
    world.district.release_person(
        world.titular,
        roles=ALL_ROLES,
        reason="baja",
        cause="salida",
        by=world.coadmin,
        channel=OFICIO,
        policy=POLICY,
        at=later(2),
    )
    assert world.district.titular_id is None
    with pytest.raises(NotDistrictAuthorityError):  # the one who left designates nothing
        world.district.designate(
            world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(3)
        )
    world.district.appoint_titular(newcomer, by=world.coadmin, at=later(3), vacant_only=True)
    world.district.designate(world.beto, by=newcomer, channel=OFICIO, policy=POLICY, at=later(4))
    assert world.district.holder_id == world.beto.id


def test_an_acting_titular_designates_only_within_the_encargo() -> None:
    """R9: from the encargo's first day until its end date, the acting titular designates;
    before and after, they are refused."""
    world = make_world()
    rosa = new_person("rosa", by=world.coadmin, role="secretaria")
    world.district.appoint_acting_titular(
        rosa,
        starts_on=date(2025, 3, 5),
        ends_on=date(2025, 3, 7),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(1),
    )
    with pytest.raises(NotDistrictAuthorityError):
        world.district.designate(
            world.beto, by=rosa, channel=OFICIO, policy=POLICY, at=later(days=1)
        )
    world.district.designate(world.beto, by=rosa, channel=OFICIO, policy=POLICY, at=later(days=2))
    with pytest.raises(NotDistrictAuthorityError):
        world.district.designate(
            world.ana, by=rosa, channel=OFICIO, policy=POLICY, at=later(days=4)
        )
