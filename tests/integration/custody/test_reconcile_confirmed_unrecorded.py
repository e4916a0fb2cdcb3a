"""``reconciliar --reparar`` of a confirmed-unrecorded rotation, end to end on real servers.

The confirmation of a rotation writes OpenBao first (the staged credential becomes current: the
platform already uses it), then the ledger. Here the ledger write really fails — the JetStream
recorder raises at the save, as it does when NATS cannot be reached — after OpenBao's write
succeeded. Reconciliation finds the confirmation OpenBao has and the ledger lacks, ``--reparar``
records it, the account's rotation state in the ledger is right afterwards (read back from
JetStream by a fresh application, and the next rotation works), and a second reconciliation is
clean.

Reconciliation examines every district and role group of OpenBao, so this module has an OpenBao
dev server of its own (the session's is shared with modules that leave people and credentials
behind); the ledger is a namespace of its own on the session's NATS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from custody.app.custodia import Actor, Custodia, CustodiaApplication
from custody.errors import VaultPermissionDeniedError
from custody.stack.servers import start_bao_dev
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import AccountRef
from events.domain import District
from events.jetstream import EventStoreUnavailableError
from tests.integration.custody.helpers import ledger_world, service_application

pytestmark = pytest.mark.integration

ACCOUNT = "DD05-x"


@dataclass
class World:
    """Custodia as ``custodia servicio`` builds it (service token), ana a coadministrator."""

    nats_url: str
    namespace: str
    vault: VaultClient
    app: CustodiaApplication
    custodia: Custodia
    ana: Actor

    def fresh_app(self) -> CustodiaApplication:
        return service_application(self.nats_url, self.namespace)


@pytest.fixture(scope="module")
def world(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    bao = start_bao_dev(tmp_path_factory.mktemp("openbao-reconcile"))
    try:
        namespace = "rcu" + uuid.uuid4().hex[:8]
        with ledger_world(bao, nats_url, namespace, application=service_application) as made:
            yield World(nats_url, namespace, made.vault, made.app, made.custodia, made.ana)
    finally:
        bao.stop()


class FailingSaves:
    """The ledger's recorder, made to fail its next ``count`` writes (nothing is stored)."""

    def __init__(self, app: CustodiaApplication, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.failed = 0
        recorder: Any = app.recorder
        insert = recorder.insert_events

        def insert_events(stored: Sequence[StoredEvent], **kwargs: Any) -> Any:
            if self.count > 0:
                self.count -= 1
                self.failed += 1
                raise EventStoreUnavailableError("NATS unreachable (injected)")
            return insert(stored, **kwargs)

        monkeypatch.setattr(recorder, "insert_events", insert_events)


def _register(custodia: Custodia, ana: Actor, account: str) -> None:
    code = account[:4]
    custodia.register_account(
        ana,
        account,
        handle=f"{code}IECM",
        email=f"{code.lower()}.x@iecm.mx",
        phone=None,
        public=True,
        direct_messages=True,
        existing=False,
    )


def _account_state(app: CustodiaApplication) -> tuple[int | None, int | None]:
    """(current version, staged version) of the account, as the ledger says."""
    district: Any = app.repository.get(District.create_id(ACCOUNT[:4]))
    assert isinstance(district, District)
    account = district.accounts[ACCOUNT]
    return account.current_version, account.staged_version


def _confirmations(app: CustodiaApplication) -> list[int]:
    """The versions of the account's "rotation confirmed" events in the ledger, in order."""
    found = []
    for event in app.repository.event_store.get(District.create_id(ACCOUNT[:4])):
        if isinstance(event, District.RotationConfirmed) and event.account == ACCOUNT:
            found.append(event.version)
    return found


def _reads(w: World) -> tuple[str, int]:
    """The current credential in OpenBao, read as ana (coadministrator): password, version."""
    credentials = Credentials(w.vault)
    wrapped = credentials.read_current_wrapped(w.ana.token, ACCOUNT)
    credential = credentials.unwrap(wrapped.token, ACCOUNT)
    return credential.password, credential.version


def test_confirmed_unrecorded_rotation_is_found_recorded_and_rotation_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    custodia, ana = world.custodia, world.ana
    _register(custodia, ana, ACCOUNT)
    first = custodia.start_rotation(ana, ACCOUNT)
    assert custodia.confirm_rotation(ana, ACCOUNT)["version"] == 1
    assert custodia.reconcile(ana, repair=False)["diferencias"] == []

    # The second rotation: OpenBao's current version moves to 2, the ledger write fails.
    second = custodia.start_rotation(ana, ACCOUNT)
    assert second["version"] == 2
    failing = FailingSaves(world.app, monkeypatch)
    failing.count = 1
    with pytest.raises(EventStoreUnavailableError):
        custodia.confirm_rotation(ana, ACCOUNT)
    assert failing.failed == 1
    assert _reads(world) == (second["contrasena"], 2)  # the platform already uses it
    assert first["contrasena"] != second["contrasena"]
    fresh = world.fresh_app()
    try:
        assert _account_state(fresh) == (1, 2)  # the ledger: still rotating from version 1
        assert _confirmations(fresh) == [1]
    finally:
        fresh.close()

    found = custodia.reconcile(ana, repair=False)
    assert found["diferencias"] == [
        {
            "tipo": "confirmed_unrecorded",
            "objeto": ACCOUNT,
            "esperado": "version 1",
            "actual": "version 2",
        }
    ]
    assert found["reparadas"] == 0
    assert found["pendientes"] == 1
    assert custodia.reconcile(ana, repair=False)["diferencias"] == found["diferencias"]

    repaired = custodia.reconcile(ana, repair=True)
    assert [d["tipo"] for d in repaired["diferencias"]] == ["confirmed_unrecorded"]
    assert repaired["pendientes"] == 0
    assert repaired["reparadas"] >= 1
    # In the ledger, read back from JetStream: confirmed at version 2, nothing staged.
    fresh = world.fresh_app()
    try:
        assert _account_state(fresh) == (2, None)
        assert _confirmations(fresh) == [1, 2]
    finally:
        fresh.close()
    assert Credentials(world.vault).staged_metadata(ACCOUNT) is None  # the leftover went too
    assert custodia.reconcile(ana, repair=False)["diferencias"] == []

    # The next rotation works from the repaired state: version 3, in OpenBao and the ledger.
    third = custodia.start_rotation(ana, ACCOUNT)
    assert third["version"] == 3
    assert custodia.confirm_rotation(ana, ACCOUNT)["version"] == 3
    assert _reads(world) == (third["contrasena"], 3)
    fresh = world.fresh_app()
    try:
        assert _account_state(fresh) == (3, None)
        assert _confirmations(fresh) == [1, 2, 3]
    finally:
        fresh.close()
    again = custodia.reconcile(ana, repair=True)
    assert again["diferencias"] == []
    assert again["reparadas"] == 0
    assert custodia.reconcile(ana, repair=False)["diferencias"] == []


def test_a_rotation_with_nothing_staged_is_abandoned(world: World) -> None:
    """The ledger has a rotation open but OpenBao has nothing staged for it (reconciliation's
    ``staged_missing``: the staged credential was lost behind the ledger's back): ``rotar
    abandonar`` records the abandonment, and the ledger has no open rotation afterwards."""
    custodia, ana, account = world.custodia, world.ana, "DD06-x"
    _register(custodia, ana, account)
    started = custodia.start_rotation(ana, account)
    Credentials(world.vault)._delete_staged(world.vault, AccountRef.parse(account))
    assert custodia.abandon_rotation(ana, account) == {
        "cuenta": account,
        "version_descartada": started["version"],
    }
    assert Credentials(world.vault).staged_metadata(account) is None
    fresh = world.fresh_app()
    try:
        district: Any = fresh.repository.get(District.create_id("DD06"))
        assert district.accounts[account].staged_version is None
    finally:
        fresh.close()


def test_reconciliation_keeps_a_rotation_started_after_an_abandoned_one(world: World) -> None:
    """Issue 16, finding 9: start → abandon → start again; past the grace period, ``reconciliar
    --reparar`` must not delete the live staged password (it did: the second start tagged it
    with an id the ledger did not expect, so it looked like an orphan), and ``rotar confirmar``
    then makes it current. One rotation id: the start event's, OpenBao's tag, reconciliation's."""
    custodia, ana, account = world.custodia, world.ana, "DD07-x"
    _register(custodia, ana, account)
    custodia.start_rotation(ana, account)
    custodia.abandon_rotation(ana, account)
    live = custodia.start_rotation(ana, account)
    custodia.reconcile_grace = timedelta(0)  # every staged credential is past the grace period
    try:
        repaired = custodia.reconcile(ana, repair=True)
    finally:
        custodia.reconcile_grace = timedelta(seconds=60)
    assert repaired["diferencias"] == []
    assert repaired["reparadas"] == 0
    staged = Credentials(world.vault).staged_metadata(account)
    assert staged is not None
    district: Any = world.app.repository.get(District.create_id("DD07"))
    assert staged["ledger_event_id"] == district.accounts[account].staged_rotation_id
    confirmed = custodia.confirm_rotation(ana, account)
    assert confirmed["version"] == live["version"] == 1
    credentials = Credentials(world.vault)
    wrapped = credentials.read_current_wrapped(ana.token, account)
    assert credentials.unwrap(wrapped.token, account).password == live["contrasena"]
    assert custodia.reconcile(ana, repair=False)["diferencias"] == []


def test_writes_straight_into_openbao_are_found(world: World) -> None:
    """Issue 16, finding 11: a coadministrator's own token can no longer write a credential
    version nor re-import a 2FA seed in OpenBao (OpenBao's 403: prevention, finding 2); the
    service's token used outside the service (a compromised service host) still can, and
    reconciliation reports both for a person (``unrecorded_version``, ``seed_unrecorded``),
    never silently."""
    custodia, ana, account = world.custodia, world.ana, "DD08-x"
    _register(custodia, ana, account)
    custodia.start_rotation(ana, account)
    custodia.confirm_rotation(ana, account)
    seed = "JBSWY3DPEHPK3PXP"
    custodia.register_totp(ana, account, f"otpauth://totp/X:DD08IECM?secret={seed}")
    assert custodia.reconcile(ana, repair=False)["diferencias"] == []

    own = world.vault.with_token(ana.token)
    with pytest.raises(VaultPermissionDeniedError):
        own.write(
            "custodia/data/cuentas/DD08/x",
            {"data": {"password": "Fuera-de-bitacora-1"}, "options": {"cas": 1}},
            operation="attack",
        )
    with pytest.raises(VaultPermissionDeniedError):
        own.write("custodia-totp/keys/DD08-x", {"key": "GEZDGNBVGY3TQOJQ"}, operation="attack")
    world.vault.write(  # the service's token, outside the service (wrapped: its policy says so)
        "custodia/data/cuentas/DD08/x",
        {"data": {"password": "Fuera-de-bitacora-1"}, "options": {"cas": 1}},
        operation="attack",
        wrap_ttl=1,
    )
    world.vault.write("custodia-totp/keys/DD08-x", {"key": "GEZDGNBVGY3TQOJQ"}, operation="attack")
    found = custodia.reconcile(ana, repair=True)
    assert sorted((d["tipo"], d["objeto"]) for d in found["diferencias"]) == [
        ("seed_unrecorded", account),
        ("unrecorded_version", account),
    ]
    assert found["pendientes"] == 2
    assert found["reparadas"] == 0
