"""People: roles (5.XIII, 5.XIV, 5.XIX), devices (8.B), protected personal data (R7)."""

from __future__ import annotations

from datetime import datetime

import pytest

from events.domain import (
    DeviceAlreadyRegisteredError,
    DeviceNotRegisteredError,
    InvalidIdentifierError,
    NaiveDatetimeError,
    NotCoadministratorError,
    Person,
    PersonalDataErasedError,
    PersonStillActiveError,
    RoleAlreadyGrantedError,
    RoleConflictError,
    RoleNotGrantedError,
    SelfRevocationError,
    TimeOrderError,
    person_id,
)

from .domain_world import T0, in_memory_application, later, new_person, sealed


@pytest.fixture
def coadmin() -> Person:
    return Person.bootstrap("utcsyd", **sealed("utcsyd"), at=T0)


def test_bootstrap_creates_the_first_coadministrator(coadmin: Person) -> None:
    """`custodia init` creates a coadministrator registered by nobody."""
    assert coadmin.is_coadministrator
    assert coadmin.id == person_id("utcsyd")
    events = coadmin.collect_events()
    assert [e.by for e in events] == [None, None]  # type: ignore[attr-defined]


def test_only_a_coadministrator_registers_people(coadmin: Person) -> None:
    """Registration is UTCSyD's; the person's id comes from their user name."""
    titular = new_person("titular05", by=coadmin, role="titular", district="5")
    with pytest.raises(NotCoadministratorError) as raised:
        Person.register("x", **sealed("x"), by=titular, at=T0)
    assert raised.value.person_id == titular.id
    person = Person.register("JPerez", **sealed("jperez"), by=coadmin, at=T0)
    assert person.id == person_id("jperez")
    assert titular.roles == {"titular": "DD05"}


def test_personal_details_are_only_in_the_sealed_blob(coadmin: Person) -> None:
    """R7: a person's registration records the login name (normalized) and the sealed blob with
    its key reference — no field for a name, an e-mail or a phone."""
    person = Person.register(
        " JPerez ",
        personal_data="vault:v1:c2VjcmV0",
        personal_data_key="transit/pii/7",
        by=coadmin,
        at=T0,
    )
    app = in_memory_application()
    app.save(coadmin, person)
    registered = next(iter(app.events.get(person.id)))
    assert set(vars(registered)) == {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "username",
        "personal_data",
        "personal_data_key",
        "by",
    }
    reloaded: Person = app.repository.get(person.id)
    assert (reloaded.username, reloaded.personal_data) == ("jperez", "vault:v1:c2VjcmV0")


def _district_for(role: str) -> str | None:
    return "DD05" if role in ("titular", "administrador") else None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("titular", "administrador"),
        ("administrador", "titular"),
        ("secretaria", "coadministrador"),
        ("coadministrador", "secretaria"),
        ("titular", "coadministrador"),
    ],
)
def test_readers_and_never_readers_are_exclusive(coadmin: Person, first: str, second: str) -> None:
    """6.IX: titular and secretaria never read credentials, so they cannot also be an
    administrator or coadministrator."""
    person = new_person("p", by=coadmin, role=first, district=_district_for(first))
    with pytest.raises(RoleConflictError) as raised:
        person.grant_role(second, district=_district_for(second), by=coadmin, at=T0)
    assert (raised.value.role, raised.value.held) == (second, first)


def test_roles_are_granted_once_and_revoked_by_another_coadministrator(coadmin: Person) -> None:
    """Roster changes (coadministrators included) are events; nobody revokes their own
    coadministrator role."""
    second = new_person("utcsyd2", by=coadmin, role="coadministrador")
    with pytest.raises(RoleAlreadyGrantedError):
        second.grant_role("coadministrador", by=coadmin, at=T0)
    with pytest.raises(SelfRevocationError):
        coadmin.revoke_role("coadministrador", by=coadmin, at=T0)
    coadmin.revoke_role("coadministrador", by=second, at=later(1))
    assert not coadmin.is_coadministrator
    with pytest.raises(RoleNotGrantedError):
        coadmin.revoke_role("coadministrador", by=second, at=later(2))
    with pytest.raises(NotCoadministratorError):
        second.revoke_role("coadministrador", by=coadmin, at=later(2))


def test_designation_problems(coadmin: Person) -> None:
    """Only an administrator (of that district, or of none in particular) can hold credentials."""
    assert new_person("a", by=coadmin).designation_problem("DD05") == "not an administrator"
    free = new_person("b", by=coadmin, role="administrador")
    assert free.designation_problem("DD05") is None
    assert free.designation_problem("DD33") is None
    tied = new_person("c", by=coadmin, role="administrador", district="DD06")
    assert tied.designation_problem("DD05") == "administrator of DD06"


def test_devices_are_registered_by_coadministrators(coadmin: Person) -> None:
    """8.B: institutional devices are registered and retired by UTCSyD."""
    person = new_person("ana", by=coadmin, role="administrador")
    person.register_device("PC-DD05-01", by=coadmin, at=T0)
    assert person.has_device("PC-DD05-01")
    with pytest.raises(DeviceAlreadyRegisteredError):
        person.register_device("PC-DD05-01", by=coadmin, at=T0)
    with pytest.raises(NotCoadministratorError):
        person.register_device("mi-celular", by=person, at=T0)
    with pytest.raises(InvalidIdentifierError):
        person.register_device("mi celular", by=coadmin, at=T0)
    person.retire_device("PC-DD05-01", by=coadmin, at=T0)
    assert not person.has_device("PC-DD05-01")
    with pytest.raises(DeviceNotRegisteredError):
        person.retire_device("PC-DD05-01", by=coadmin, at=T0)


def test_erasure_needs_no_roles_and_is_final(coadmin: Person) -> None:
    """9.XX: erasing drops the sealed data; the person must hold no role, and is then frozen."""
    person = new_person("ana", by=coadmin, role="administrador")
    with pytest.raises(PersonStillActiveError) as raised:
        person.erase_personal_data(by=coadmin, at=T0)
    assert raised.value.roles == ("administrador",)
    person.revoke_role("administrador", by=coadmin, at=T0)
    person.erase_personal_data(by=coadmin, at=later(1))
    assert person.erased
    assert person.personal_data is None
    assert person.personal_data_key is None
    assert person.designation_problem("DD05") == "personal data erased"
    with pytest.raises(PersonalDataErasedError):
        person.grant_role("administrador", by=coadmin, at=later(2))
    with pytest.raises(PersonalDataErasedError):
        person.erase_personal_data(by=coadmin, at=later(2))


def test_personal_data_can_be_resealed(coadmin: Person) -> None:
    """A correction or re-encryption replaces the sealed blob."""
    person = new_person("ana", by=coadmin)
    person.replace_personal_data(
        personal_data="vault:v2:new", personal_data_key="transit/pii/2", by=coadmin, at=T0
    )
    assert (person.personal_data, person.personal_data_key) == ("vault:v2:new", "transit/pii/2")


def test_commands_refuse_naive_or_backdated_instants(coadmin: Person) -> None:
    """Time is aware and moves forward within an aggregate."""
    person = new_person("ana", by=coadmin, at=later(10))
    with pytest.raises(NaiveDatetimeError):
        person.grant_role("administrador", by=coadmin, at=datetime(2025, 3, 3, 11))
    with pytest.raises(TimeOrderError) as raised:
        person.grant_role("administrador", by=coadmin, at=later(5))
    assert raised.value.last == later(10)
    assert person.roles == {}
