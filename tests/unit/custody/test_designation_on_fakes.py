"""People and designation use cases (6.VII, 6.IX, 6.X) of :class:`custody.app.custodia.Custodia`
on an in-memory ledger and the fakes of the identity and personal-data stores, which pass the
same contracts as OpenBao (tests/integration/custody/test_*_store_contract.py). No server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from custody.app.custodia import (
    Actor,
    Custodia,
    CustodiaApplication,
    PersonNotRegisteredError,
    bootstrap_ledger,
)
from custody.errors import LoginTakenError
from events.domain import District, OfficialChannel, Policy
from tests.support.fakes import FakeCredentialStore, FakeIdentityStore, FakePersonalDataStore

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
ANA = Actor("ana", "t-ana")  # the first coadministrator
LUIS = Actor("luis", "t-luis")  # DD05's titular
OFICIO = OfficialChannel.oficio("IECM/DD05/045/2026", None)


class World:
    def __init__(self) -> None:
        self.app = CustodiaApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        assert bootstrap_ledger(self.app, "ana", "vault:v1:c2VsbGFkbw==", "pii-x", T0)
        self.identity = FakeIdentityStore({ANA.token})
        self.identity.ensure_person("ana")
        credentials = FakeCredentialStore(lambda *_: False)
        # Access is typed as the adapter (reconciliation reaches its client); the fake passes
        # the same contract as the port it implements.
        self.custodia = Custodia(
            self.app, cast(Any, self.identity), credentials, FakePersonalDataStore(),
            Policy(), clock=lambda: T0,
        )  # fmt: skip

    def register(self, username: str, role: str, district: str | None) -> None:
        self.custodia.register_person(
            ANA, username, name=username.title(), email=f"{username}@iecm.mx", phone=None,
            role=role, district=district, password=f"{username}-clave-larga-1",
        )  # fmt: skip

    def holder(self) -> str | None:
        district: District = self.app.repository.get(District.create_id("DD05"))
        return self.custodia.username_of(district.holder_at(T0))


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    w.register("luis", "titular", "DD05")
    w.register("bety", "administrador", "DD05")
    yield w
    w.app.close()


def test_registration_gives_the_titular_role_group(world: World) -> None:
    """``personas alta --rol titular``: the login exists and the titular is in the titulares
    group (written with the coadministrator's token); an administrator is in no group yet."""
    group = world.identity.role_group("titular")
    assert world.identity.members(group, caller_token=ANA.token) == ("luis",)
    assert world.identity.district_holders("DD05") == ()


def test_a_designation_is_access(world: World) -> None:
    """``designar``: the ledger names bety the holder and OpenBao's district group holds
    exactly her."""
    world.custodia.designate(LUIS, "DD05", "bety", OFICIO)
    assert world.holder() == "bety"
    assert world.identity.district_holders("DD05") == ("bety",)


def test_a_designation_the_ledger_refuses_grants_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the ledger cannot record a new designation, the district group is as before (the
    outgoing holder back, the incoming one never added): access is what the ledger shows."""
    world.register("carlos", "administrador", "DD05")
    world.custodia.designate(LUIS, "DD05", "bety", OFICIO)

    def broken(*_: object, **__: object) -> None:
        raise OSError("disco lleno")

    monkeypatch.setattr(world.app, "save", broken)
    with pytest.raises(OSError, match="disco lleno"):
        world.custodia.designate(LUIS, "DD05", "carlos", OFICIO)
    assert world.identity.district_holders("DD05") == ("bety",)


def test_a_taken_login_registers_nobody(world: World) -> None:
    """A user name whose login exists with another password: refused before the ledger is
    written, so no person without a login (issue 17)."""
    world.identity.create_login("carla", "otra-clave-muy-larga")
    with pytest.raises(LoginTakenError):
        world.register("carla", "administrador", "DD05")
    with pytest.raises(PersonNotRegisteredError):
        world.custodia.person("carla")
