"""District: designations and absences (6.VII, 6.X), obligations (R2), accounts (10.), rotations,
reads and entitlement (6.IX, 8.A, 8.B)."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta

import pytest

from events.domain import (
    AbsenceAlreadyReportedError,
    AccountAlreadyRegisteredError,
    AccountClosedError,
    AccountNotFoundError,
    AccountPolicyViolationError,
    AccountStateError,
    AlreadyAdministratorError,
    CredentialVersionError,
    District,
    DistrictMismatchError,
    InvalidChoiceError,
    InvalidPeriodError,
    NaiveDatetimeError,
    NoAbsenceError,
    NoAdministratorError,
    NoCurrentCredentialError,
    NoRotationInProgressError,
    NotCoadministratorError,
    NotDesignatableError,
    NotDistrictAuthorityError,
    NotEntitledToReadError,
    Person,
    Policy,
    RotationInProgressError,
    RotationVersionError,
    TimeOrderError,
    TotpNotRegisteredError,
    ValidationError,
)

from .domain_world import (
    FINGERPRINT,
    OFICIO,
    POLICY,
    T0,
    World,
    event_names,
    later,
    make_world,
    new_person,
)


@pytest.fixture
def world() -> World:
    return make_world()


def read(world: World, reader: Person, at: datetime, *, version: int = 1) -> str:
    return world.district.record_read(
        "DD05-x",
        reader=reader,
        version=version,
        purpose="publicar la parrilla",
        device_id=None,
        policy=POLICY,
        at=at,
    )


def rotate(world: World, account: str, version: int, at: datetime) -> list[object]:
    world.district.start_rotation(
        account, version=version, fingerprint=FINGERPRINT, by=world.coadmin, at=at
    )
    return list(world.district.confirm_rotation(account, version=version, by=world.coadmin, at=at))


# --- registration and titular ----------------------------------------------------------------


def test_districts_are_registered_by_coadministrators_with_stable_ids() -> None:
    """`custodia init` registers DD01..DD33; the id is derived from the code."""
    world = make_world(designate=False, rotate=False)
    district = District.register("7", by=world.coadmin, at=T0)
    assert district.code == "DD07"
    assert district.id == District.create_id("DD07")
    with pytest.raises(NotCoadministratorError):
        District.register("DD08", by=world.titular, at=T0)


def test_only_the_districts_titular_can_be_appointed() -> None:
    """The titular appointed must hold the titular role for this district."""
    world = make_world(designate=False, rotate=False)
    titular06 = new_person("titular06", by=world.coadmin, role="titular", district="DD06")
    with pytest.raises(NotDesignatableError):
        world.district.appoint_titular(titular06, by=world.coadmin, at=T0)
    assert world.district.titular_id == world.titular.id


# --- designation -----------------------------------------------------------------------------


def test_designation_makes_the_holder_and_opens_one_obligation_per_open_account() -> None:
    """6.X (R2): designating opens one rotation obligation per open account, due by the end of
    the next business day in Mexico City."""
    world = make_world(designate=False, rotate=False)
    world.district.designate(world.ana, by=world.titular, channel=OFICIO, policy=POLICY, at=T0)
    events = world.district.collect_events()
    assert event_names(events) == [
        "AdministratorDesignated",
        "CredentialHolderChanged",
        "RotationObligationOpened",
        "RotationObligationOpened",
    ]
    assert world.district.holder_id == world.ana.id
    assert world.district.administrator is not None
    assert world.district.administrator.channel == OFICIO
    obligations = world.district.open_obligations()
    assert sorted(o.account_id for o in obligations) == ["DD05-facebook", "DD05-x"]
    assert {o.deadline for o in obligations} == {POLICY.rotation_deadline(T0)}
    assert {o.cause for o in obligations} == {"designacion"}


def test_a_new_designation_revokes_the_previous_holder_at_once(world: World) -> None:
    """The outgoing administrator loses access immediately; the event says which live versions
    they had seen."""
    read(world, world.ana, later(10))
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(20)
    )
    changed = [
        e
        for e in world.district.collect_events()
        if isinstance(e, District.CredentialHolderChanged)
    ]
    assert len(changed) == 1
    assert changed[0].previous_holder_id == world.ana.id
    assert changed[0].holder_id == world.beto.id
    assert changed[0].versions_seen == {"DD05-x": [1]}
    with pytest.raises(NotEntitledToReadError):
        read(world, world.ana, later(21))
    assert read(world, world.beto, later(22)) == "administrador"


def test_versions_seen_lists_only_live_versions(world: World) -> None:
    """A version superseded by a later rotation no longer matters to a departure."""
    read(world, world.ana, later(10))
    rotate(world, "DD05-x", 2, later(11))
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(20)
    )
    changed = [
        e
        for e in world.district.collect_events()
        if isinstance(e, District.CredentialHolderChanged)
    ]
    assert changed[0].versions_seen == {}


@pytest.mark.parametrize("actor", ["ana", "secretaria", "other", "carla", "coadmin"])
def test_only_the_titular_designates_utcsyd_only_as_a_recorded_exception(
    world: World, actor: str
) -> None:
    """6.VII, 6.X, R9: the district's titular designates; UTCSyD only as an exception with a
    reason (recorded as such), never silently."""
    with pytest.raises(NotDistrictAuthorityError) as raised:
        world.district.designate(
            world.beto, by=getattr(world, actor), channel=OFICIO, policy=POLICY, at=later(5)
        )
    assert raised.value.district == "DD05"
    world.district.collect_events()
    world.district.designate(
        world.beto,
        by=world.coadmin,
        channel=OFICIO,
        policy=POLICY,
        at=later(5),
        exception="Titular sin acceso al sistema",
    )
    assert world.district.holder_id == world.beto.id
    recorded = world.district.collect_events()
    assert isinstance(recorded[0], District.AuthorityExceptionRecorded)
    assert recorded[0].reason == "Titular sin acceso al sistema"
    assert recorded[0].channel == OFICIO.to_event()


def test_the_titular_of_another_district_cannot_designate(world: World) -> None:
    """A titular's authority is over their own district only."""
    titular06 = new_person("titular06", by=world.coadmin, role="titular", district="DD06")
    with pytest.raises(NotDistrictAuthorityError):
        world.district.designate(
            world.beto, by=titular06, channel=OFICIO, policy=POLICY, at=later(5)
        )


@pytest.mark.parametrize("designee", ["titular", "secretaria", "other"])
def test_only_administrators_of_the_district_can_be_designated(world: World, designee: str) -> None:
    """6.IX: the titular and the secretaria never hold credentials; an administrator tied to
    another district cannot hold this one's."""
    with pytest.raises(NotDesignatableError):
        world.district.designate(
            getattr(world, designee), by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
        )
    assert world.district.holder_id == world.ana.id


def test_designating_the_current_administrator_again_is_refused(world: World) -> None:
    """Nothing changes, so nothing is recorded."""
    with pytest.raises(AlreadyAdministratorError):
        world.district.designate(
            world.ana, by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
        )


def test_ending_a_designation_leaves_nobody_holding(world: World) -> None:
    """6.X: a promotion or *baja* with no successor revokes access and owes rotations."""
    with pytest.raises(InvalidChoiceError):
        world.district.end_designation(
            "vacaciones", by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
        )
    world.district.end_designation(
        "baja", by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
    )
    assert world.district.holder_id is None
    assert world.district.administrator is None
    assert {o.cause for o in world.district.open_obligations()} == {"fin_designacion"}
    with pytest.raises(NotEntitledToReadError):
        read(world, world.ana, later(6))
    with pytest.raises(NoAdministratorError):
        world.district.end_designation(
            "baja", by=world.titular, channel=OFICIO, policy=POLICY, at=later(7)
        )


# --- absences and substitutions ----------------------------------------------------------------


def test_an_absence_starting_today_hands_the_credentials_to_the_substitute(world: World) -> None:
    """6.X: vacation with a substitute — the substitute holds at once and rotations are owed."""
    world.district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 3, 3),
        ends_on=date(2025, 3, 10),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    assert event_names(world.district.collect_events())[:3] == [
        "AbsenceReported",
        "AbsenceStarted",
        "CredentialHolderChanged",
    ]
    assert world.district.holder_id == world.beto.id
    assert {o.cause for o in world.district.open_obligations()} == {"sustitucion"}
    with pytest.raises(NotEntitledToReadError):
        read(world, world.ana, later(31))
    assert read(world, world.beto, later(32)) == "sustituto"


def test_a_scheduled_absence_starts_and_ends_on_its_dates(world: World) -> None:
    """The substitution takes effect at 00:00 local of `starts_on` and ends at 00:00 of
    `ends_on` (the return day); each change is recorded when the district is next touched."""
    world.district.report_absence(
        "salud",
        substitute=world.beto,
        starts_on=date(2025, 3, 5),
        ends_on=date(2025, 3, 7),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    assert event_names(world.district.collect_events()) == ["AbsenceReported"]
    start = POLICY.start_of_day(date(2025, 3, 5))
    assert world.district.holder_at(start - timedelta(seconds=1)) == world.ana.id
    assert world.district.holder_at(start) == world.beto.id
    world.district.advance(policy=POLICY, at=start - timedelta(seconds=1))
    assert world.district.pending_events == []
    # A read by the substitute (at 00:00 sharp) brings the district up to date first, in the
    # same command.
    assert read(world, world.beto, start) == "sustituto"
    assert event_names(world.district.collect_events()) == [
        "AbsenceStarted",
        "CredentialHolderChanged",
        "RotationObligationOpened",
        "RotationObligationOpened",
        "CredentialRead",
    ]
    back = POLICY.start_of_day(date(2025, 3, 7))
    world.district.advance(policy=POLICY, at=back - timedelta(seconds=1))
    assert world.district.pending_events == []
    world.district.advance(policy=POLICY, at=back)
    events = world.district.collect_events()
    assert event_names(events)[:2] == ["AbsenceEnded", "CredentialHolderChanged"]
    assert events[0].kind == "regreso_programado"  # type: ignore[attr-defined]
    assert events[1].versions_seen == {"DD05-x": [1]}  # type: ignore[attr-defined]
    assert world.district.holder_id == world.ana.id
    assert world.district.absence is None
    returns = [o for o in world.district.open_obligations() if o.cause == "regreso"]
    assert len(returns) == 2


def test_an_absence_ended_early_is_a_return(world: World) -> None:
    """The titular ends an absence early: the administrator is back, rotations are owed."""
    world.district.report_absence(
        "otro",
        substitute=world.beto,
        starts_on=date(2025, 3, 3),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.end_absence(by=world.titular, policy=POLICY, at=later(60))
    assert world.district.holder_id == world.ana.id
    kinds = [
        e.kind for e in world.district.collect_events() if isinstance(e, District.AbsenceEnded)
    ]
    assert kinds == ["regreso_anticipado"]
    with pytest.raises(NoAbsenceError):
        world.district.end_absence(by=world.titular, policy=POLICY, at=later(61))


def test_a_cancelled_future_absence_changes_nobody(world: World) -> None:
    """Cancelling before the start date is not a change of holder: no obligations."""
    world.district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 4, 1),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.end_absence(by=world.titular, policy=POLICY, at=later(60))
    assert event_names(world.district.collect_events()) == ["AbsenceReported", "AbsenceEnded"]
    assert world.district.open_obligations() == []


def test_an_absence_that_passed_unrecorded_hands_nothing_over(world: World) -> None:
    """If the whole period passes before the district is touched, the substitute never held
    the credentials: the absence ends as `no_iniciada`, with no change of holder."""
    world.district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 3, 5),
        ends_on=date(2025, 3, 6),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.collect_events()
    world.district.advance(policy=POLICY, at=later(days=5))
    events = world.district.collect_events()
    assert event_names(events) == ["AbsenceEnded"]
    assert events[0].kind == "no_iniciada"  # type: ignore[attr-defined]
    assert world.district.holder_id == world.ana.id


def test_designating_during_an_absence_replaces_both(world: World) -> None:
    """A new designation during an absence ends it; if the substitute is the one designated,
    the holder does not change and no rotation is owed."""
    world.district.report_absence(
        "comision",
        substitute=world.beto,
        starts_on=date(2025, 3, 3),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.collect_events()
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(40)
    )
    assert event_names(world.district.collect_events()) == [
        "AbsenceEnded",
        "AdministratorDesignated",
    ]
    assert world.district.absence is None
    assert world.district.holder_id == world.beto.id


def test_ending_the_designation_of_an_absent_administrator_ends_the_substitution(
    world: World,
) -> None:
    """Nobody holds the credentials after the absent administrator's *baja*."""
    world.district.report_absence(
        "salud",
        substitute=world.beto,
        starts_on=date(2025, 3, 3),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.end_designation(
        "baja", by=world.titular, channel=OFICIO, policy=POLICY, at=later(40)
    )
    assert world.district.absence is None
    assert world.district.holder_id is None


def test_absence_preconditions(world: World) -> None:
    """An absence needs an administrator, a valid substitute, a sane period, and only one at a
    time."""

    def report(substitute: Person, starts: date, ends: date | None, at: datetime) -> None:
        world.district.report_absence(
            "vacaciones",
            substitute=substitute,
            starts_on=starts,
            ends_on=ends,
            by=world.titular,
            channel=OFICIO,
            policy=POLICY,
            at=at,
        )

    with pytest.raises(NotDesignatableError):
        report(world.ana, date(2025, 3, 4), None, later(1))
    with pytest.raises(NotDesignatableError):
        report(world.secretaria, date(2025, 3, 4), None, later(1))
    with pytest.raises(InvalidPeriodError):
        report(world.beto, date(2025, 3, 4), date(2025, 3, 4), later(1))
    with pytest.raises(InvalidPeriodError):
        report(world.beto, date(2025, 2, 20), date(2025, 3, 1), later(1))
    with pytest.raises(ValidationError):
        report(world.beto, datetime(2025, 3, 4, 9), None, later(1))  # a datetime is a date too
    report(world.beto, date(2025, 3, 10), None, later(1))
    with pytest.raises(AbsenceAlreadyReportedError):
        report(world.carla, date(2025, 3, 20), None, later(2))
    undesignated = make_world(designate=False, rotate=False)
    with pytest.raises(NoAdministratorError):
        undesignated.district.report_absence(
            "vacaciones",
            substitute=undesignated.beto,
            starts_on=date(2025, 3, 4),
            by=undesignated.titular,
            channel=OFICIO,
            policy=POLICY,
            at=later(1),
        )


# --- accounts --------------------------------------------------------------------------------


def test_only_coadministrators_register_accounts(world: World) -> None:
    """10.I–II: districts cannot open accounts; UTCSyD does."""
    for actor in (world.titular, world.ana):
        with pytest.raises(NotCoadministratorError):
            world.district.register_account(
                "DD05-tiktok", handle="iecmdd05", email="dd05.tt@iecm.mx", by=actor, at=later(1)
            )


@pytest.mark.parametrize(
    ("account", "handle", "email", "public", "dms", "violation"),
    [
        ("DD05-tiktok", "iecmdd05", "dd05@gmail.com", True, True, "correo_no_institucional"),
        ("DD05-tiktok", "iecmdd05", "dd05@iecm.mx.evil.com", True, True, "correo_no_institucional"),
        ("DD05-x", "DD05iecm", "dd05@iecm.mx", True, True, "usuario_x_sin_sufijo_iecm"),
        ("DD05-tiktok", "iecmdd05", "dd05@iecm.mx", False, True, "cuenta_privada"),
        ("DD05-tiktok", "iecmdd05", "dd05@iecm.mx", True, False, "mensajes_privados_desactivados"),
    ],
)
def test_policy_violations_are_refused_unless_recording_an_existing_account(
    account: str, handle: str, email: str, public: bool, dms: bool, violation: str
) -> None:
    """R4 (10.V, 10.VI, 10.VIII): a violating account is refused; an existing one may be
    recorded as it is, and its violations are then visible."""
    world = make_world(designate=False, rotate=False)
    if account == "DD05-x":
        world.district.close_account("DD05-x", by=world.coadmin, channel=OFICIO, at=T0)

    def register(*, existing: bool) -> list[str]:
        return list(
            world.district.register_account(
                account,
                handle=handle,
                email=email,
                public=public,
                direct_messages=dms,
                existing=existing,
                by=world.coadmin,
                at=later(1),
            )
        )

    with pytest.raises(AccountPolicyViolationError) as raised:
        register(existing=False)
    assert raised.value.violations == (violation,)
    assert register(existing=True) == [violation]
    assert world.district.account(account).violations == [violation]
    assert world.district.account(account).existing


def test_account_registration_checks(world: World) -> None:
    """Accounts belong to this district, are registered once while open, and their e-mail and
    phone must be well formed."""
    with pytest.raises(DistrictMismatchError):
        world.district.register_account(
            "DD06-tiktok", handle="iecm06", email="dd06@iecm.mx", by=world.coadmin, at=later(1)
        )
    with pytest.raises(AccountAlreadyRegisteredError):
        world.district.register_account(
            "dd5-X", handle="DD05IECM", email="dd05.x@iecm.mx", by=world.coadmin, at=later(1)
        )
    with pytest.raises(ValidationError):
        world.district.register_account(
            "DD05-tiktok", handle="iecm05", email="dd05", by=world.coadmin, at=later(1)
        )
    with pytest.raises(ValidationError):
        world.district.register_account(
            "DD05-tiktok",
            handle="iecm05",
            email="dd05@iecm.mx",
            phone="no tengo",
            by=world.coadmin,
            at=later(1),
        )
    with pytest.raises(AccountNotFoundError):
        world.district.account("DD05-tiktok")


def test_account_status_updates_violations(world: World) -> None:
    """10.V, 10.VI, 11.1.a: a coadministrator records visibility and DMs as found; violations
    follow (an account with no phone at all lacks its institutional phone)."""
    violations = world.district.record_account_status(
        "DD05-facebook", public=False, direct_messages=True, by=world.coadmin, at=later(1)
    )
    assert violations == ["cuenta_privada", "telefono_faltante"]
    assert world.district.account("DD05-facebook").violations == violations


def test_account_status_judges_the_phone_against_the_policy_numbering(world: World) -> None:
    """11.1.a: a phone outside the institution's prefixes is a violation; the first phone seen
    becomes the account's; a later, different one is a change of an original setting (11.1)."""
    prefixes = ("+52 55 5483",)
    first = world.district.record_account_status(
        "DD05-facebook",
        public=True,
        direct_messages=True,
        phone="55 5483 3800 ext 12",
        phone_prefixes=prefixes,
        by=world.coadmin,
        at=later(1),
    )
    assert first == []
    assert world.district.account("DD05-facebook").phone == "5554833800 ext 12"
    other = world.district.record_account_status(
        "DD05-facebook",
        public=True,
        direct_messages=True,
        phone="+52 33 1111 2222",
        phone_prefixes=prefixes,
        by=world.coadmin,
        at=later(2),
    )
    assert other == ["telefono_no_institucional", "telefono_distinto_al_registrado"]
    assert world.district.account("DD05-facebook").phone == "5554833800 ext 12"


def test_secrets_destruction_is_recorded_once_after_the_closure(world: World) -> None:
    """10: the destruction is pending from the closure until it is recorded, once; an open
    account cannot have its secrets recorded as destroyed."""
    with pytest.raises(AccountStateError):
        world.district.record_secrets_destroyed("DD05-facebook", by=world.coadmin, at=later(1))
    world.district.close_account("DD05-facebook", by=world.coadmin, channel=OFICIO, at=later(2))
    assert world.district.destruction_pending("DD05-facebook")
    world.district.record_secrets_destroyed("DD05-facebook", by=world.coadmin, at=later(3))
    world.district.record_secrets_destroyed("DD05-facebook", by=world.coadmin, at=later(4))
    assert not world.district.destruction_pending("DD05-facebook")
    destroyed = [
        e for e in world.district.collect_events() if type(e).__name__ == "AccountSecretsDestroyed"
    ]
    assert len(destroyed) == 1


def test_closing_an_account_withdraws_its_obligations(world: World) -> None:
    """A closed account owes no rotation and can no longer be read; a staged rotation is
    abandoned."""
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
    )
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(6)
    )
    world.district.collect_events()
    world.district.close_account("DD05-x", by=world.coadmin, channel=OFICIO, at=later(7))
    assert event_names(world.district.collect_events()) == [
        "RotationAbandoned",
        "RotationObligationWithdrawn",
        "AccountClosed",
    ]
    assert [o.account_id for o in world.district.open_obligations()] == ["DD05-facebook"]
    assert world.district.account("DD05-x").staged_version is None
    with pytest.raises(AccountClosedError):
        read(world, world.beto, later(8))


def test_a_closed_account_may_be_registered_again_without_reusing_versions(world: World) -> None:
    """Re-registration keeps the version counter so a version number is never reused."""
    world.district.close_account("DD05-x", by=world.coadmin, channel=OFICIO, at=later(5))
    world.district.register_account(
        "DD05-x", handle="DD05IECM", email="dd05.x@iecm.mx", by=world.coadmin, at=later(6)
    )
    with pytest.raises(RotationVersionError):
        world.district.start_rotation(
            "DD05-x", version=1, fingerprint=FINGERPRINT, by=world.coadmin, at=later(7)
        )


# --- rotations -------------------------------------------------------------------------------


def test_rotation_lifecycle(world: World) -> None:
    """Start stages a version (only growing); confirm makes it current; abandon discards it."""
    district = world.district
    with pytest.raises(NotCoadministratorError):
        district.start_rotation(
            "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.ana, at=later(5)
        )
    for version in (1, 0, True):
        with pytest.raises((RotationVersionError, ValidationError)):
            district.start_rotation(
                "DD05-x",
                version=version,
                fingerprint=FINGERPRINT,
                by=world.coadmin,
                at=later(5),
            )
    with pytest.raises(NoRotationInProgressError):
        district.confirm_rotation("DD05-x", version=2, by=world.coadmin, at=later(5))
    district.start_rotation(
        "DD05-x", version=2, fingerprint="cd" * 16, by=world.coadmin, at=later(5)
    )
    with pytest.raises(RotationInProgressError):
        district.start_rotation(
            "DD05-x", version=3, fingerprint=FINGERPRINT, by=world.coadmin, at=later(6)
        )
    with pytest.raises(RotationVersionError):
        district.confirm_rotation("DD05-x", version=3, by=world.coadmin, at=later(6))
    district.abandon_rotation(
        "DD05-x", version=2, by=world.coadmin, reason="no se aplicó", at=later(7)
    )
    assert district.account("DD05-x").staged_version is None
    assert district.account("DD05-x").current_version == 1
    district.start_rotation(
        "DD05-x", version=3, fingerprint="ef" * 16, by=world.coadmin, at=later(8)
    )
    district.confirm_rotation("DD05-x", version=3, by=world.coadmin, at=later(9))
    account = district.account("DD05-x")
    assert (account.current_version, account.current_fingerprint) == (3, "ef" * 16)
    assert account.last_confirmed_at == later(9)


def test_a_confirmed_rotation_fulfils_the_accounts_open_obligations(world: World) -> None:
    """R2: after a change of holder, a confirmed rotation closes that account's obligations
    (and only that account's)."""
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
    )
    opened = {o.account_id: o.obligation_id for o in world.district.open_obligations()}
    fulfilled = rotate(world, "DD05-x", 2, later(50))
    assert fulfilled == [opened["DD05-x"]]
    closed = world.district.obligations[str(opened["DD05-x"])]
    assert (closed.closed_at, closed.closed_by, closed.closed_by_version) == (
        later(50),
        world.coadmin.id,
        2,
    )
    assert [o.account_id for o in world.district.open_obligations()] == ["DD05-facebook"]


def test_a_version_the_outgoing_holder_saw_does_not_fulfil_their_obligation() -> None:
    """An obligation is fulfilled only by a version its outgoing holder has not seen: a holder
    who also is a coadministrator and read the staged password keeps it open."""
    world = make_world(designate=False)
    dual = new_person("dual", by=world.coadmin, role="administrador", district="DD05")
    dual.grant_role("coadministrador", by=world.coadmin, at=T0)
    district = world.district
    district.designate(dual, by=world.titular, channel=OFICIO, policy=POLICY, at=later(5))
    for account in ("DD05-x", "DD05-facebook"):
        rotate(world, account, 2, later(6))
    district.start_rotation("DD05-x", version=3, fingerprint=FINGERPRINT, by=dual, at=later(7))
    district.designate(world.ana, by=world.titular, channel=OFICIO, policy=POLICY, at=later(8))
    assert district.confirm_rotation("DD05-x", version=3, by=world.coadmin, at=later(9)) == []
    assert len(district.open_obligations("DD05-x")) == 1
    assert len(rotate(world, "DD05-x", 4, later(10))) == 1
    assert district.open_obligations("DD05-x") == []


# --- reads -----------------------------------------------------------------------------------


def test_the_holder_reads_and_the_read_records_hours_and_device(world: World) -> None:
    """6.IX, 8.A, 8.B: a read records who, what, why, the device and whether it was registered,
    and whether it fell outside working hours."""
    saturday_night = datetime(2025, 3, 8, 23, 0, tzinfo=POLICY.zone)
    world.district.record_read(
        "DD05-x",
        reader=world.ana,
        version=1,
        purpose="responder mensajes",
        device_id="pc-dd05-01",
        policy=POLICY,
        at=later(10),
    )
    world.district.record_read(
        "DD05-x",
        reader=world.ana,
        version=1,
        purpose="responder mensajes",
        device_id="celular-personal",
        policy=POLICY,
        at=saturday_night,
    )
    first, second = world.district.collect_events()
    assert isinstance(first, District.CredentialRead)
    assert isinstance(second, District.CredentialRead)
    assert (first.kind, first.version, first.reader_role, first.by) == (
        "contrasena",
        1,
        "administrador",
        world.ana.id,
    )
    assert (first.registered_device, first.outside_working_hours) == (True, False)
    assert (second.registered_device, second.outside_working_hours) == (False, True)
    assert world.district.exposure("DD05-x", 1) == {world.ana.id, world.coadmin.id}


def test_a_read_that_never_arrived_is_voided_and_exposure_stays(world: World) -> None:
    """A read recorded while the credential was still on its way, then refused or failed by the
    secrets server, is voided: the reason is recorded and the reader stays counted as exposed
    (conservative); an account the district never had is refused."""
    read(world, world.ana, later(10))
    world.district.void_read(
        "DD05-x", reader=world.ana, version=1, reason="VaultUnavailableError", at=later(11)
    )
    recorded, voided = world.district.collect_events()
    assert isinstance(recorded, District.CredentialRead)
    assert isinstance(voided, District.ReadVoided)
    assert (voided.account, voided.kind, voided.version, voided.by, voided.reason) == (
        "DD05-x",
        "contrasena",
        1,
        world.ana.id,
        "VaultUnavailableError",
    )
    assert world.ana.id in world.district.exposure("DD05-x", 1)
    with pytest.raises(AccountNotFoundError):
        world.district.void_read("DD05-nada", reader=world.ana, version=1, reason="x", at=later(12))
    assert world.district.pending_events == []


@pytest.mark.parametrize("reader", ["titular", "secretaria", "beto", "carla", "other"])
def test_nobody_else_can_read(world: World, reader: str) -> None:
    """R1: the titular, the secretaria and administrators not holding this district are
    refused, and nothing is recorded."""
    before = copy.deepcopy(world.district)
    with pytest.raises(NotEntitledToReadError) as raised:
        read(world, getattr(world, reader), later(10))
    assert raised.value.person_id == getattr(world, reader).id
    assert world.district == before


def test_coadministrators_read_everything_including_staged_versions(world: World) -> None:
    """6.VI, 6.IX: UTCSyD reads current and staged versions; the holder only the current."""
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(5)
    )
    assert read(world, world.coadmin, later(6), version=2) == "coadministrador"
    with pytest.raises(NotEntitledToReadError) as raised:
        read(world, world.ana, later(7), version=2)
    assert raised.value.staged
    with pytest.raises(CredentialVersionError):
        read(world, world.ana, later(7), version=5)


def test_a_holder_who_lost_the_administrator_role_cannot_read(world: World) -> None:
    """Entitlement needs both the designation and the role."""
    world.ana.revoke_role("administrador", by=world.coadmin, at=later(5))
    with pytest.raises(NotEntitledToReadError):
        read(world, world.ana, later(6))


def test_no_read_before_a_first_credential() -> None:
    """An account with no confirmed version has nothing to read."""
    world = make_world(rotate=False)
    with pytest.raises(NoCurrentCredentialError):
        read(world, world.ana, later(5))


def test_totp_codes_need_a_registered_seed_and_do_not_expose_the_password(world: World) -> None:
    """A TOTP code read is recorded as such; it says nothing about password exposure."""
    with pytest.raises(TotpNotRegisteredError):
        world.district.record_code_read(
            "DD05-x", reader=world.ana, purpose="entrar", device_id=None, policy=POLICY, at=later(2)
        )
    world.district.register_totp("DD05-x", by=world.coadmin, at=later(5))
    world.district.record_code_read(
        "DD05-x", reader=world.ana, purpose="entrar", device_id=None, policy=POLICY, at=later(6)
    )
    event = world.district.collect_events()[-1]
    assert isinstance(event, District.CredentialRead)
    assert (event.kind, event.version) == ("codigo_totp", None)
    assert world.ana.id not in world.district.exposure("DD05-x", 1)


# --- time and atomicity ------------------------------------------------------------------------


def test_a_refused_command_leaves_the_district_untouched(world: World) -> None:
    """A command that first records a due substitution and then refuses leaves no events
    behind (all or nothing)."""
    world.district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=date(2025, 3, 5),
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(30),
    )
    world.district.collect_events()
    before = copy.deepcopy(world.district)
    with pytest.raises(NotEntitledToReadError):
        read(world, world.ana, later(days=3))  # the substitution is due: ana no longer holds
    assert world.district == before
    assert world.district.pending_events == []


def test_commands_refuse_naive_and_backdated_instants(world: World) -> None:
    """Instants are aware; a command cannot be dated before the district's last event."""
    with pytest.raises(NaiveDatetimeError):
        read(world, world.ana, datetime(2025, 3, 4, 10))
    with pytest.raises(TimeOrderError):
        read(world, world.ana, T0 - timedelta(minutes=1))


def test_the_policy_in_force_sets_the_deadline(world: World) -> None:
    """Deadlines are computed from the policy passed in and recorded in the event."""
    strict = Policy(rotation_business_days=0)
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=strict, at=later(5)
    )
    assert {o.deadline for o in world.district.open_obligations()} == {
        strict.rotation_deadline(later(5))
    }
