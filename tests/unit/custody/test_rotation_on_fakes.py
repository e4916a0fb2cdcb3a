"""The rotation use cases (6.X) of :class:`custody.app.custodia.Custodia`, on an in-memory
ledger (the ``eventsourcing`` library's POPO persistence) and the credential store's fake,
which passes the same contract as OpenBao (tests/integration/custody/
test_credential_store_contract.py). No server: these run in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from custody.app.custodia import Actor, Custodia, CustodiaApplication, bootstrap_ledger
from custody.errors import VaultCasConflictError, VaultPermissionDeniedError
from events.domain import District, Policy
from events.errors import CustodiaError
from tests.support.fakes import FakeCredentialStore

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
ACCOUNT = "DD05-x"
ANA = Actor("ana", "t-ana")  # the first coadministrator
INTRUDER = Actor("ana", "t-robado")  # her name, a token OpenBao does not grant


class World:
    def __init__(self) -> None:
        self.app = CustodiaApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        assert bootstrap_ledger(self.app, "ana", "vault:v1:c2VsbGFkbw==", "pii-x", T0)
        self.store = FakeCredentialStore(lambda token, account, op: token == ANA.token)
        unused = cast(Any, None)  # rotations touch neither identities nor personal data
        self.custodia = Custodia(self.app, unused, self.store, unused, Policy(), clock=lambda: T0)
        self.custodia.register_account(
            ANA, ACCOUNT, handle="DD05IECM", email="dd05.x@iecm.mx", phone=None,
            public=True, direct_messages=True, existing=False,
        )  # fmt: skip

    def account(self) -> Any:
        district: District = self.app.repository.get(District.create_id("DD05"))
        return district.open_account(ACCOUNT)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.app.close()


def test_start_records_what_the_store_staged(world: World) -> None:
    """``rotar iniciar``: the ledger's rotation carries the version and fingerprint the store
    staged, and its id is the store's tag; the password goes back to the caller only."""
    answer = world.custodia.start_rotation(ANA, ACCOUNT)
    tags = world.store.staged_metadata(ACCOUNT)
    assert tags is not None
    acc = world.account()
    assert acc.staged_version == answer["version"] == 1
    assert (
        acc.staged_fingerprint
        == tags["fingerprint"]
        == world.store.fingerprint(answer["contrasena"])
    )
    assert acc.staged_rotation_id == tags["ledger_event_id"]


def test_confirm_makes_ledger_and_store_agree(world: World) -> None:
    """``rotar confirmar``: the store's current version and the ledger's are the same, and
    nothing is left staged on either side."""
    world.custodia.start_rotation(ANA, ACCOUNT)
    answer = world.custodia.confirm_rotation(ANA, ACCOUNT)
    acc = world.account()
    assert answer["version"] == acc.current_version == world.store.current_version(ACCOUNT) == 1
    assert acc.staged_version is None
    assert world.store.staged_metadata(ACCOUNT) is None


def test_abandon_clears_both_sides(world: World) -> None:
    """``rotar abandonar``: the ledger records it and the store's slot is empty."""
    world.custodia.start_rotation(ANA, ACCOUNT)
    world.custodia.abandon_rotation(ANA, ACCOUNT)
    assert world.account().staged_version is None
    assert world.store.staged_metadata(ACCOUNT) is None
    assert world.store.current_version(ACCOUNT) == 0


def test_a_refused_token_leaves_no_trace(world: World) -> None:
    """A token the store does not grant: refused, nothing staged, nothing in the ledger."""
    position = world.app.recorder.max_notification_id()
    with pytest.raises(VaultPermissionDeniedError):
        world.custodia.start_rotation(INTRUDER, ACCOUNT)
    assert world.store.writes == 0
    assert world.app.recorder.max_notification_id() == position


def test_a_second_start_is_refused_and_the_first_survives(world: World) -> None:
    """One open rotation per account: a second ``rotar iniciar`` is refused by the store (or
    the domain) and the first rotation is still the one both sides know."""
    world.custodia.start_rotation(ANA, ACCOUNT)
    first = world.account().staged_rotation_id
    with pytest.raises((VaultCasConflictError, CustodiaError)):
        world.custodia.start_rotation(ANA, ACCOUNT)
    assert world.account().staged_rotation_id == first
    assert (world.store.staged_metadata(ACCOUNT) or {}).get("ledger_event_id") == first


def test_a_ledger_failure_after_staging_unstages(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the ledger cannot record the start (its store fails), the staged password is deleted
    again: OpenBao holds nothing the ledger does not know of."""

    def broken(*_: object, **__: object) -> None:
        raise OSError("disco lleno")

    monkeypatch.setattr(world.app, "save", broken)
    with pytest.raises(OSError, match="disco lleno"):
        world.custodia.start_rotation(ANA, ACCOUNT)
    assert world.store.staged_metadata(ACCOUNT) is None
