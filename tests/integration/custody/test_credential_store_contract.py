"""The credential store's contract (:class:`custody.app.ports.CredentialStore`), run against
the in-memory fake (``tests/support/fakes.py``) and against the real OpenBao
(:class:`custody.vault.credentials.Credentials` with the service's token), as the event store
runs the ``eventsourcing`` library's own recorder test cases.

Every case runs twice (``[fake]``, ``[openbao]``). Three callers: a coadministrator (rotates),
the person designated for the district (reads), and a registered person with no grant. On the
real server the grants are OpenBao's (policies and identity groups); the fake is given the same
ones. Each case uses fresh accounts. District used: DD19.

Run only the fake quickly: ``pytest tests/integration/custody/test_credential_store_contract.py
-k fake``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import pytest

from custody.app.access import Access
from custody.app.ports import CredentialStore
from custody.errors import (
    NoStagedRotationError,
    RotationMismatchError,
    VaultCasConflictError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    WrappingTokenInvalidError,
)
from custody.vault.credentials import Credentials, WrappedSecret
from tests.integration.custody.helpers import MakeUser, User
from tests.support.fakes import FakeCredentialStore

DISTRICT = "DD19"
COADMIN_OPS = frozenset(
    {"revelar", "codigo", "preparar", "confirmar", "abandonar", "semilla", "destruir"}
)
READER_OPS = frozenset({"revelar", "codigo"})


@dataclass
class World:
    """A store and three callers' tokens."""

    store: CredentialStore
    coadmin: str = field(repr=False)
    reader: str = field(repr=False)
    outsider: str = field(repr=False)

    def account(self) -> str:
        """An account nobody has used yet."""
        return f"{DISTRICT}-c{uuid.uuid4().hex[:10]}"


def _fake_world() -> World:
    tokens = {"coadmin": "t-coadmin", "reader": "t-reader", "outsider": "t-outsider"}

    def grants(token: str, account: str, operation: str) -> bool:
        if token == tokens["coadmin"]:
            return operation in COADMIN_OPS
        if token == tokens["reader"]:
            return account.startswith(f"{DISTRICT}-") and operation in READER_OPS
        return False

    return World(FakeCredentialStore(grants), **tokens)


@pytest.fixture(scope="module")
def _openbao_world(request: pytest.FixtureRequest) -> World:
    credentials: Credentials = request.getfixturevalue("credentials")
    access: Access = request.getfixturevalue("access")
    make_user: MakeUser = request.getfixturevalue("make_user")
    coadmin: User = request.getfixturevalue("coadmin")
    reader = make_user("contrato-adm")
    access.set_district_holder(DISTRICT, reader.username)
    outsider = make_user("contrato-otro")
    return World(credentials, coadmin.token, reader.token, outsider.token)


@pytest.fixture(params=["fake", pytest.param("openbao", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return _fake_world()
    world: World = request.getfixturevalue("_openbao_world")
    return world


def _rotate(world: World, account: str, password: str) -> int:
    """Stage and confirm ``password``; the new current version."""
    event = str(uuid.uuid4())
    base = world.store.current_version(account)
    world.store.stage(world.coadmin, account, password, event, base, staged_by="contrato")
    return world.store.confirm(world.coadmin, account, event, confirmed_by="contrato").version


def test_a_new_account_has_no_version_nothing_staged_nothing_to_reveal(world: World) -> None:
    """A fresh account: version 0, an empty staged slot, and a reveal by its reader is
    "not found" (nothing is recorded: the record callback is never called)."""
    account = world.account()
    assert world.store.current_version(account) == 0
    assert world.store.staged_metadata(account) is None
    recorded: list[WrappedSecret] = []
    with pytest.raises(VaultNotFoundError):
        world.store.reveal(world.reader, account, recorded.append)
    assert recorded == []


def test_stage_then_confirm_makes_the_next_version(world: World) -> None:
    """Staging tags the slot with the ledger's rotation id and the fingerprint; confirming
    makes version base + 1 with the same fingerprint and empties the slot; each callback
    sees the facts before the call returns; no password in any of them."""
    account = world.account()
    password = "Contrato-" + uuid.uuid4().hex
    event = str(uuid.uuid4())
    seen: list[object] = []
    staged = world.store.stage(
        world.coadmin, account, password, event, 0, staged_by="ana", record=seen.append
    )
    assert (staged.version, staged.base_version, staged.rotation_event_id) == (1, 0, event)
    assert re.fullmatch(r"[0-9a-f]{64}", staged.fingerprint)
    tags = world.store.staged_metadata(account)
    assert tags is not None
    assert (tags["ledger_event_id"], tags["staged_by"]) == (event, "ana")
    assert world.store.current_version(account) == 0  # staged is not current
    confirmed = world.store.confirm(world.coadmin, account, event, record=seen.append)
    assert (confirmed.version, confirmed.previous_version) == (1, 0)
    assert confirmed.fingerprint == staged.fingerprint
    assert world.store.current_version(account) == 1
    assert world.store.staged_metadata(account) is None
    assert seen == [staged, confirmed]
    assert password not in repr(seen) + repr(tags)


def test_one_open_rotation_per_account(world: World) -> None:
    """A second rotation while one is staged is a check-and-set conflict; the first one still
    confirms."""
    account = world.account()
    first = str(uuid.uuid4())
    world.store.stage(world.coadmin, account, "Primera-" + first, first, 0, staged_by="ana")
    with pytest.raises(VaultCasConflictError):
        world.store.stage(world.coadmin, account, "Segunda-x1", str(uuid.uuid4()), 0, staged_by="b")
    assert world.store.confirm(world.coadmin, account, first).version == 1


def test_a_stale_base_is_refused_and_leaves_nothing_staged(world: World) -> None:
    """Staging from a base version that is no longer current conflicts, and the slot stays
    empty (the staged copy is deleted again)."""
    account = world.account()
    _rotate(world, account, "Base-" + uuid.uuid4().hex)
    with pytest.raises(VaultCasConflictError):
        world.store.stage(
            world.coadmin, account, "Vieja-" + uuid.uuid4().hex, str(uuid.uuid4()), 0, staged_by="a"
        )
    assert world.store.staged_metadata(account) is None
    assert world.store.current_version(account) == 1


def test_confirm_and_abandon_need_the_open_rotation(world: World) -> None:
    """Nothing staged: NoStagedRotationError; another rotation's id: RotationMismatchError; the
    open one is untouched by both."""
    account = world.account()
    with pytest.raises(NoStagedRotationError):
        world.store.confirm(world.coadmin, account, str(uuid.uuid4()))
    event = str(uuid.uuid4())
    world.store.stage(world.coadmin, account, "Abierta-" + event, event, 0, staged_by="ana")
    with pytest.raises(RotationMismatchError):
        world.store.confirm(world.coadmin, account, str(uuid.uuid4()))
    with pytest.raises(RotationMismatchError):
        world.store.abandon(world.coadmin, account, str(uuid.uuid4()))
    assert (world.store.staged_metadata(account) or {}).get("ledger_event_id") == event


def test_abandon_empties_the_slot_and_keeps_the_current(world: World) -> None:
    """Abandoning discards the staged password (its fingerprint is reported) and leaves the
    current version as it was."""
    account = world.account()
    _rotate(world, account, "Vigente-" + uuid.uuid4().hex)
    event = str(uuid.uuid4())
    staged = world.store.stage(world.coadmin, account, "Descartada-x9", event, 1, staged_by="a")
    abandoned = world.store.abandon(world.coadmin, account, event)
    assert abandoned.fingerprint == staged.fingerprint
    assert world.store.staged_metadata(account) is None
    assert world.store.current_version(account) == 1


def test_a_stage_whose_record_fails_is_undone(world: World) -> None:
    """If the ledger's "rotation started" cannot be written, the staged password is deleted:
    nothing in the store that the ledger does not know of."""
    account = world.account()

    def fail(_: object) -> None:
        raise RuntimeError("bitácora no disponible")

    with pytest.raises(RuntimeError):
        world.store.stage(
            world.coadmin, account, "Huerfana-" + uuid.uuid4().hex, str(uuid.uuid4()), 0,
            staged_by="ana", record=fail,
        )  # fmt: skip
    assert world.store.staged_metadata(account) is None


def test_refused_callers_change_and_see_nothing(world: World) -> None:
    """6.IX: the district's reader may not rotate, nobody else may rotate or read: each gets
    VaultPermissionDeniedError, nothing is staged and no read is recorded."""
    account = world.account()
    _rotate(world, account, "Ajena-" + uuid.uuid4().hex)
    for caller in (world.reader, world.outsider):
        with pytest.raises(VaultPermissionDeniedError):
            world.store.stage(caller, account, "Intruso-x1", str(uuid.uuid4()), 1, staged_by="x")
    assert world.store.staged_metadata(account) is None
    recorded: list[WrappedSecret] = []
    with pytest.raises(VaultPermissionDeniedError):
        world.store.reveal(world.outsider, account, recorded.append)
    assert recorded == []


def test_a_reveal_is_recorded_first_and_opens_once(world: World) -> None:
    """The reader's reveal calls ``record`` with the wrapped read's facts (the version) before
    returning; the wrapping token opens the current password once, then never again."""
    account = world.account()
    password = "Revelada-" + uuid.uuid4().hex
    version = _rotate(world, account, password)
    recorded: list[WrappedSecret] = []
    wrapped = world.store.reveal(world.reader, account, recorded.append)
    assert recorded == [wrapped]
    assert (wrapped.account, wrapped.version, wrapped.kind) == (account, version, "password")
    assert password not in repr(wrapped)
    opened = world.store.unwrap(wrapped.token, account)
    assert (opened.version, opened.password) == (version, password)
    with pytest.raises(WrappingTokenInvalidError):
        world.store.unwrap(wrapped.token, account)


def test_a_reveal_whose_record_fails_hands_nothing_over(world: World) -> None:
    """If the read cannot be recorded, the wrapping token is revoked before the error
    propagates: the credential cannot be obtained with it."""
    account = world.account()
    _rotate(world, account, "Sinregistro-" + uuid.uuid4().hex)
    made: list[WrappedSecret] = []

    def fail(wrapped: WrappedSecret) -> None:
        made.append(wrapped)
        raise RuntimeError("bitácora no disponible")

    with pytest.raises(RuntimeError):
        world.store.reveal(world.reader, account, fail)
    assert len(made) == 1
    with pytest.raises(WrappingTokenInvalidError):
        world.store.unwrap(made[0].token, account)


def test_fingerprints_are_keyed_and_stable(world: World) -> None:
    """Equal secrets give equal fingerprints, different ones differ; neither is the secret's
    plain SHA-256."""
    import hashlib

    a = world.store.fingerprint("Secreto-1")
    assert a == world.store.fingerprint("Secreto-1")
    assert a != world.store.fingerprint("Secreto-2")
    assert a != hashlib.sha256(b"Secreto-1").hexdigest()


def test_destruction_is_the_coadministrators_and_leaves_nothing(world: World) -> None:
    """10: the district's reader and an outsider may not destroy (refused, the password stays);
    a coadministrator's destruction removes every version and the staged slot, a reveal then
    finds nothing, and destroying again is not an error (a retry finishes an interrupted one)."""
    account = world.account()
    _rotate(world, account, "Primera-" + uuid.uuid4().hex)
    _rotate(world, account, "Segunda-" + uuid.uuid4().hex)
    world.store.stage(
        world.coadmin,
        account,
        "Preparada-" + uuid.uuid4().hex,
        str(uuid.uuid4()),
        2,
        staged_by="contrato",
    )
    for caller in (world.reader, world.outsider):
        with pytest.raises(VaultPermissionDeniedError):
            world.store.destroy(caller, account)
    assert world.store.current_version(account) == 2
    world.store.authorize_destruction(world.coadmin, account)
    world.store.destroy(world.coadmin, account)
    assert world.store.current_version(account) == 0
    assert world.store.staged_metadata(account) is None
    recorded: list[WrappedSecret] = []
    with pytest.raises(VaultNotFoundError):
        world.store.reveal(world.reader, account, recorded.append)
    assert recorded == []
    world.store.destroy(world.coadmin, account)
