"""The identity store's contract (:class:`custody.app.ports.IdentityStore`), run against the
in-memory fake (``tests/support/fakes.py``) and the real OpenBao (:class:`custody.app.access.
Access` with the service's token): logins, designation as group membership (6.IX, 6.X), role
groups written only with a coadministrator's token, and departures.

Every case runs twice (``[fake]``, ``[openbao]``); people are new in each case. District used:
DD18.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import pytest

from custody.app.access import Access
from custody.app.ports import IdentityStore
from custody.errors import LoginTakenError, UnknownPersonError, VaultPermissionDeniedError
from tests.integration.custody.helpers import MakeUser, User
from tests.support.fakes import FakeIdentityStore

DISTRICT = "DD18"


@dataclass
class World:
    store: IdentityStore
    coadmin: str = field(repr=False)
    outsider: str = field(repr=False)

    def person(self) -> str:
        """A new person with a login and an identity, no group."""
        name = f"ident-{uuid.uuid4().hex[:10]}"
        assert self.store.create_login(name, secrets.token_urlsafe(18))
        self.store.ensure_person(name)
        return name


@pytest.fixture(scope="module")
def _openbao_world(request: pytest.FixtureRequest) -> World:
    access: Access = request.getfixturevalue("access")
    coadmin: User = request.getfixturevalue("coadmin")
    make_user: MakeUser = request.getfixturevalue("make_user")
    store: IdentityStore = access  # Access satisfies the port (checked by mypy here)
    return World(store, coadmin.token, make_user("ident-otro").token)


@pytest.fixture(params=["fake", pytest.param("openbao", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return World(FakeIdentityStore({"t-coadmin"}), "t-coadmin", "t-otro")
    found: World = request.getfixturevalue("_openbao_world")
    return found


def test_a_login_is_created_once_and_never_changed(world: World) -> None:
    """A new login: created; the same password again (a retried registration): adopted; any
    other password: LoginTakenError, the login unchanged."""
    name = f"ident-{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(18)
    assert world.store.create_login(name, password) is True
    assert world.store.create_login(name, password) is False
    with pytest.raises(LoginTakenError):
        world.store.create_login(name, "otra-" + secrets.token_urlsafe(12))
    assert world.store.create_login(name, password) is False


def test_designation_is_membership_and_replaces_the_holder(world: World) -> None:
    """6.X: designating makes the person the district's only holder; the next designation
    replaces them; designating nobody leaves the district without a holder."""
    first, second = world.person(), world.person()
    world.store.designate(DISTRICT, first)
    assert world.store.district_holders(DISTRICT) == (first,)
    world.store.designate(DISTRICT, second, lambda: None)
    assert world.store.district_holders(DISTRICT) == (second,)
    world.store.designate(DISTRICT, None)
    assert world.store.district_holders(DISTRICT) == ()


def test_a_designation_the_ledger_refuses_restores_the_holder(world: World) -> None:
    """If the ledger write fails, the previous holder is back and the incoming one never got
    access; the ledger's error propagates. The record runs while nobody holds the district."""
    holder, incoming = world.person(), world.person()
    world.store.designate(DISTRICT, holder)
    during: list[tuple[str, ...]] = []

    def refuse() -> None:
        during.append(world.store.district_holders(DISTRICT))
        raise RuntimeError("bitácora no disponible")

    with pytest.raises(RuntimeError):
        world.store.designate(DISTRICT, incoming, refuse)
    assert during == [()]
    assert world.store.district_holders(DISTRICT) == (holder,)


def test_an_unknown_person_cannot_be_designated(world: World) -> None:
    """A name with no identity is refused before the current holder loses access."""
    holder = world.person()
    world.store.designate(DISTRICT, holder)
    with pytest.raises(UnknownPersonError):
        world.store.designate(DISTRICT, f"nadie-{uuid.uuid4().hex[:8]}")
    assert world.store.district_holders(DISTRICT) == (holder,)


def test_role_groups_need_a_coadministrators_token(world: World) -> None:
    """A coadministrator adds and removes a titular; anyone else's token is refused and the
    group is unchanged."""
    name = world.person()
    group = world.store.role_group("titular")
    world.store.add_role_member("titular", name, caller_token=world.coadmin)
    assert name in world.store.members(group, caller_token=world.coadmin)
    with pytest.raises(VaultPermissionDeniedError):
        world.store.remove_role_member("titular", name, caller_token=world.outsider)
    assert name in world.store.members(group, caller_token=world.coadmin)
    world.store.remove_role_member("titular", name, caller_token=world.coadmin)
    assert name not in world.store.members(group, caller_token=world.coadmin)


def test_a_departure_disables_the_identity(world: World) -> None:
    """6.X: a coadministrator disables a leaver's identity (its id is returned); someone with
    no identity gives None; another person's token is refused."""
    leaver = world.person()
    with pytest.raises(VaultPermissionDeniedError):
        world.store.disable_person(leaver, caller_token=world.outsider)
    assert world.store.is_disabled(leaver) is False
    assert world.store.disable_person(leaver, caller_token=world.coadmin)
    assert world.store.is_disabled(leaver) is True
    assert world.store.disable_person(f"nadie-{uuid.uuid4().hex[:8]}") is None
