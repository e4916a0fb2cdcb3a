"""Fail-closed reveals and rotation compensations when the ledger write really fails (README,
"Lectura auditada y de un solo uso", "Orden de escrituras"): the read is recorded first, or
nothing is shown and the wrapping token is revoked; if the revocation fails too, it is logged,
the token only lives its short TTL, and a use of it is caught by the OpenBao audit follower as
an unrecorded read. A rotation staged in OpenBao whose ledger write fails is deleted again; if
that deletion fails too, or a confirmation's ledger write fails, reconciliation finds the
difference and repairs it.

The failure is real: NATS is killed (and, for the revocation, OpenBao sealed) at the moment
the application reaches its own hook before the ledger write (``Actor.proceed``, where the
service settles the request's idempotency claim). The application runs in this process as a
second service instance on the same embedded servers (several instances are supported), so the
hook can be reached; a spy on its OpenBao adapter only keeps the wrapping tokens it made, to
ask OpenBao afterwards whether they can still be unwrapped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from custody.app.custodia import Actor
from custody.app.reconcile import DriftKind, Reconciler
from custody.errors import (
    VaultPermissionDeniedError,
    VaultTokenInvalidError,
    WrappingTokenInvalidError,
)
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials, RevealPrefetch, WrappedSecret
from events.domain import District, Incident
from events.jetstream import EventStoreUnavailableError, OutcomeUnknownError

from .faults import (
    FaultWorld,
    build_instance,
    healed,
    kill_nats,
    ledger_events,
    recorded_reads,
    restart_stack,
    seal_openbao,
    serves,
    verifies,
    wait_until,
)

pytestmark = pytest.mark.e2e

# How a ledger write fails when NATS is gone: unreachable, or sent without an acknowledgement
# (it may or may not be stored: the command still fails closed).
LEDGER_DOWN = (EventStoreUnavailableError, OutcomeUnknownError)


@pytest.fixture(scope="module")
def faults(fault_world_session: FaultWorld) -> FaultWorld:
    """The fault modules' shared world, its servers running again: ana (coadministrator),
    luis titular of DD05, bety designated for DD05; DD05-x with a confirmed password."""
    return healed(fault_world_session)


class SpyCredentials(Credentials):
    """The real OpenBao adapter, keeping every wrapping token it made for a reveal."""

    def __init__(self, client: VaultClient) -> None:
        super().__init__(client)
        self.made: list[WrappedSecret] = []
        self.prefetched: list[RevealPrefetch] = []

    def prefetch_reveal(self, *args: Any, **kwargs: Any) -> RevealPrefetch:
        prefetch = super().prefetch_reveal(*args, **kwargs)
        self.prefetched.append(prefetch)
        return prefetch

    def read_current_wrapped(self, *args: Any, **kwargs: Any) -> WrappedSecret:
        wrapped = super().read_current_wrapped(*args, **kwargs)
        self.made.append(wrapped)
        return wrapped

    # Run just before the application's own ledger write of a rotation (its ``record``).
    before_record: Callable[[], None] | None = None

    def stage(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["record"] = self._hooked(kwargs.get("record"))
        return super().stage(*args, **kwargs)

    def confirm(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["record"] = self._hooked(kwargs.get("record"))
        return super().confirm(*args, **kwargs)

    def _hooked(self, record: Callable[[Any], object] | None) -> Callable[[Any], object] | None:
        hook = self.before_record
        if record is None or hook is None:
            return record

        def hooked(value: Any) -> object:
            hook()
            return record(value)

        return hooked

    def tokens(self) -> list[WrappedSecret]:
        """Every wrapping token made: by the wrapped reads and the reads sent ahead."""
        made = {w.token: w for w in self.made}
        for prefetch in self.prefetched:
            if prefetch.ahead is not None:
                with contextlib.suppress(Exception):  # a read that failed made no token
                    wrapped = prefetch.ahead.result()
                    made[wrapped.token] = wrapped
        return list(made.values())


class Instance:
    """A second service instance in this process, on the same home's servers."""

    def __init__(self, fw: FaultWorld) -> None:
        self.services = build_instance(fw)
        self.spy = SpyCredentials(self.services.vault)
        self.services.custodia.credentials = self.spy
        self.fw = fw

    def actor(self, user: str, proceed: Callable[[], None] = lambda: None) -> Actor:
        return Actor(user, self.fw.world.token(user), proceed=proceed)

    def reveal(self, purpose: str, proceed: Callable[[], None] = lambda: None) -> Any:
        actor = Actor("bety", self.fw.world.token("bety"), proceed=proceed)
        return self.services.custodia.reveal(actor, "DD05-x", purpose, None)


@pytest.fixture
def instance(faults: FaultWorld) -> Iterator[Instance]:
    """A fresh instance (it knows no account's version yet), closed after the test; the
    embedded servers are running again (and OpenBao unsealed) whatever the test did."""
    made = Instance(faults)
    try:
        yield made
    finally:
        made.services.close()
        restart_stack(faults.home)
        serves(faults)


def once(action: Callable[[], object]) -> Callable[[], None]:
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            action()

    return run


def openbao_refuses(vault_addr: str, token: str) -> bool:
    """Whether OpenBao refuses ``token``: its lookup says it is not a valid wrapping token,
    and unwrapping with it is refused (revoked, not merely unknown to this process)."""
    try:
        Credentials(VaultClient(vault_addr, None)).lookup_wrapping(token)
    except WrappingTokenInvalidError:
        pass
    else:
        return False
    with pytest.raises(
        (WrappingTokenInvalidError, VaultTokenInvalidError, VaultPermissionDeniedError)
    ):
        VaultClient(vault_addr, token).write("sys/wrapping/unwrap", operation="test")
    return True


def revoked_before_expiry(fw: FaultWorld, wrapped: WrappedSecret) -> None:
    """OpenBao refuses ``wrapped`` while its TTL still runs: revoked, not merely expired (a
    revocation done in the background is waited for, never past the token's expiry)."""
    assert wrapped.creation_time is not None
    expires = wrapped.creation_time + timedelta(seconds=wrapped.ttl)
    remaining = (expires - datetime.now(UTC)).total_seconds() - 2.0
    assert remaining > 0, "the token expired before it could be checked"
    vault_addr = fw.endpoints.vault_addr
    wait_until(
        lambda: openbao_refuses(vault_addr, wrapped.token),
        min(fw.bound, remaining),
        "the wrapping token revoked before its TTL ran out",
    )
    assert datetime.now(UTC) < expires


def test_a_reveal_whose_record_fails_as_nats_dies_revokes_its_wrapping_token(
    faults: FaultWorld, instance: Instance
) -> None:
    """NATS is killed between the caller's wrapped read and the ledger write: the reveal fails,
    the wrapping token it made is revoked (OpenBao refuses to unwrap it), and once NATS is back
    the ledger holds no record of that read; the running service serves and the ledger
    verifies."""
    killed: list[int] = []
    nats_dies = once(lambda: killed.append(kill_nats(faults.home, faults.bound)))
    with pytest.raises(LEDGER_DOWN):
        instance.reveal("compensacion-nats", proceed=nats_dies)
    assert killed, "the ledger write was not reached"
    assert len(instance.spy.made) == 1  # no version known: the wrapped read came first
    tokens = instance.spy.tokens()
    restart_stack(faults.home)
    for wrapped in tokens:
        revoked_before_expiry(faults, wrapped)
    serves(faults)
    assert recorded_reads(faults.world, "compensacion-nats") == []
    verifies(faults.world)


def test_a_read_recorded_ahead_whose_write_fails_revokes_the_token_made_ahead(
    faults: FaultWorld, instance: Instance
) -> None:
    """Once the instance knows the current version, a reveal records the read while the
    caller's wrapped read is still on its way. NATS dies at that write: the token made ahead is
    revoked as soon as it arrives (OpenBao refuses it), nothing is recorded, nothing voided."""
    first = instance.reveal("compensacion-aprende")  # learns the version; unwrapped (consumed)
    assert Credentials(instance.services.vault).unwrap(first["envoltorio"], "DD05-x").password
    nats_dies = once(lambda: kill_nats(faults.home, faults.bound))
    made_before = len(instance.spy.made)
    with pytest.raises(LEDGER_DOWN):
        instance.reveal("compensacion-adelantada", proceed=nats_dies)
    prefetch = instance.spy.prefetched[-1]
    assert prefetch.guess == first["version"]
    assert prefetch.ahead is not None
    assert len(instance.spy.made) == made_before  # the early path: no second wrapped read
    revoked_before_expiry(faults, prefetch.ahead.result())
    restart_stack(faults.home)
    serves(faults)
    assert recorded_reads(faults.world, "compensacion-adelantada") == []
    assert [e for e in ledger_events(faults.world) if type(e).__name__ == "ReadVoided"] == []
    verifies(faults.world)


def test_when_the_revocation_fails_too_it_is_logged_and_a_use_of_the_token_is_caught(
    faults: FaultWorld, instance: Instance
) -> None:
    """NATS dies and OpenBao is sealed between the wrapped read and the ledger write: the
    reveal fails, the failed revocation is logged (``custody.reveal.revoke_failed``, no token
    in the log) and nothing is recorded. The token outlives it only for its short TTL; if it
    is used anyway (as if it had leaked), the service's OpenBao audit follower records an
    incident of an unrecorded read by that person of that account and version."""
    world, home = faults.world, faults.home
    root = faults.root_vault()

    def both_die() -> None:
        kill_nats(home, faults.bound)
        root.write("sys/seal", operation="test")

    with capture_logs() as logs, pytest.raises(LEDGER_DOWN):
        instance.reveal("compensacion-sin-revocar", proceed=once(both_die))
    events = [entry["event"] for entry in logs]
    assert "custody.reveal.revoke_failed" in events, events
    assert "custody.reveal.not_recorded" in events, events
    [wrapped] = instance.spy.made
    assert wrapped.token not in repr(logs)

    restart_stack(home)  # NATS again, OpenBao unsealed with the stored key
    serves(faults)
    assert recorded_reads(world, "compensacion-sin-revocar") == []
    credentials = Credentials(VaultClient(faults.endpoints.vault_addr, None))
    assert 0 < credentials.lookup_wrapping(wrapped.token).ttl <= 60  # bounded exposure

    def unrecorded() -> list[Any]:
        return [
            e
            for e in ledger_events(world)
            if isinstance(e, Incident.UnrecordedReadDetected)
            and e.account == "DD05-x"
            and e.version == wrapped.version
        ]

    before = len(unrecorded())
    assert credentials.unwrap(wrapped.token, "DD05-x").password  # the leak
    wait_until(lambda: len(unrecorded()) > before, faults.bound, "the unrecorded read detected")
    verifies(world)


def test_seal_openbao_helper_is_the_servers_own_seal(faults: FaultWorld) -> None:
    """The seal the tests use is OpenBao's own: a sealed server answers every request with its
    sealed error until the supervisor unseals it with the stored key."""
    seal_openbao(faults)
    from custody.stack.embedded import EmbeddedStack
    from custody.stack.servers import http_get_json

    info = EmbeddedStack(faults.home).info()
    assert info is not None
    code, _ = http_get_json(info.vault.port, "/v1/sys/health")
    assert code == 503
    restart_stack(faults.home)
    code, _ = http_get_json(info.vault.port, "/v1/sys/health")
    assert code == 200


# -- rotations -------------------------------------------------------------------------------


def rotation_events(fw: FaultWorld, kind: str) -> list[Any]:
    return [
        e
        for e in ledger_events(fw.world)
        if type(e).__name__ == kind and getattr(e, "account", None) == "DD05-x"
    ]


def differences(fw: FaultWorld, repair: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = fw.world.call("ana", "reconciliar", {"reparar": repair})
    return report


def test_a_rotation_whose_record_fails_deletes_what_it_staged(
    faults: FaultWorld, instance: Instance
) -> None:
    """NATS dies once the application has passed its checks: the new password is staged in
    OpenBao, its "rotation started" cannot be written, so the staged password is deleted again
    (OpenBao holds nothing staged), the ledger has no such rotation and reconciliation is
    clean."""
    started = len(rotation_events(faults, "RotationStarted"))
    nats_dies = once(lambda: kill_nats(faults.home, faults.bound))
    with pytest.raises(LEDGER_DOWN):
        instance.services.custodia.start_rotation(instance.actor("ana", nats_dies), "DD05-x")
    root = Credentials(faults.root_vault())
    assert root.staged_metadata("DD05-x") is None  # compensated, before NATS is back
    restart_stack(faults.home)
    serves(faults)
    assert len(rotation_events(faults, "RotationStarted")) == started
    assert differences(faults)["diferencias"] == []
    verifies(faults.world)


def test_a_failed_compensation_leaves_an_orphan_that_reconciliation_deletes(
    faults: FaultWorld, instance: Instance
) -> None:
    """NATS dies before the "rotation started" write and OpenBao is sealed before the staged
    password can be deleted again: the failed compensation is logged, the staged password
    stays. Once both are back, reconciliation leaves it alone while it may still be a rotation
    in flight (its 60 s grace), then reports it as ``orphan_staged`` and deletes it; the next
    run is clean and the account can be rotated again."""
    nats_dies = once(lambda: kill_nats(faults.home, faults.bound))
    instance.spy.before_record = lambda: seal_openbao(faults)
    with capture_logs() as logs, pytest.raises(LEDGER_DOWN):
        instance.services.custodia.start_rotation(instance.actor("ana", nats_dies), "DD05-x")
    events = [entry["event"] for entry in logs]
    assert "custody.rotation.compensation_failed" in events, events
    restart_stack(faults.home)
    serves(faults)
    root = Credentials(faults.root_vault())
    assert root.staged_metadata("DD05-x") is not None  # the orphan
    # Younger than the reconciler's grace (60 s) it may be a rotation in flight: left alone.
    assert differences(faults)["diferencias"] == []
    # A minute later (the reconciler's own clock moved on, not the test's), it is an orphan.
    later = Reconciler(
        instance.services.vault,
        role_token=faults.world.token("ana"),  # role groups are read with a coadministrator's
        clock=lambda: datetime.now(UTC) + timedelta(seconds=61),
    )
    desired = instance.services.custodia.desired_state()
    found = later.reconcile(desired, repair=False).drifts
    assert [(d.kind, d.subject) for d in found] == [(DriftKind.ORPHAN_STAGED, "DD05-x")], found
    repaired = later.reconcile(desired, repair=True)
    assert [d.subject for d in repaired.repaired] == ["DD05-x"]
    assert root.staged_metadata("DD05-x") is None
    assert differences(faults)["diferencias"] == []
    # and the account can be rotated again at once
    faults.world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
    faults.world.call("ana", "rotar.abandonar", {"cuenta": "DD05-x"})
    verifies(faults.world)


@pytest.mark.parametrize(
    "account",
    [
        "DD05-facebook",
        "DD05-tiktok",
    ],
    ids=["first-rotation", "after-an-abandoned-rotation"],
)
def test_a_confirmation_whose_record_fails_is_recorded_by_reconciliation(
    faults: FaultWorld, instance: Instance, account: str
) -> None:
    """A staged rotation is confirmed in OpenBao (the new password is current: the platform
    may already use it) and NATS dies before the ledger's "rotation confirmed": the command
    fails, OpenBao keeps the new version; ``reconciliar`` reports ``confirmed_unrecorded``,
    ``--reparar`` records the confirmation and deletes the staged copy; then it is clean, the
    ledger's current version is OpenBao's and the ledger verifies. ``DD05-tiktok`` had a
    rotation started and abandoned before, so its next one is staged as the same version
    number: the rotation's own id, not its version, must tie OpenBao's tag to the ledger."""
    world = faults.world
    platform = account.split("-")[1]
    world.call(
        "ana",
        "cuentas.alta",
        {"cuenta": account, "usuario": "dd05iecm", "correo": f"dd05.{platform}@iecm.mx"},
    )
    if account == "DD05-tiktok":
        world.call("ana", "rotar.iniciar", {"cuenta": account})
        world.call("ana", "rotar.abandonar", {"cuenta": account})
    custodia = instance.services.custodia
    staged = custodia.start_rotation(instance.actor("ana"), account)
    instance.spy.before_record = once(lambda: kill_nats(faults.home, faults.bound))
    with pytest.raises(LEDGER_DOWN):
        custodia.confirm_rotation(instance.actor("ana"), account)
    restart_stack(faults.home)
    serves(faults)
    root = Credentials(faults.root_vault())
    assert root.current_version(account) == staged["version"]
    found = [(d["tipo"], d["objeto"]) for d in differences(faults)["diferencias"]]
    assert ("confirmed_unrecorded", account) in found, found
    differences(faults, repair=True)
    assert differences(faults)["diferencias"] == []
    assert root.staged_metadata(account) is None
    listed = world.call("ana", "cuentas.lista", {"distrito": "DD05"})
    row = next(a for a in listed if a["cuenta"] == account)
    assert row["version_preparada"] is None
    confirmed = [
        e.version
        for e in ledger_events(world)
        if isinstance(e, District.RotationConfirmed) and e.account == account
    ]
    assert confirmed == [staged["version"]]
    verifies(world)


def test_an_open_rotation_after_an_abandoned_one_is_not_an_orphan(
    faults: FaultWorld, instance: Instance
) -> None:
    """A rotation started after an abandoned one is open in the ledger and staged in OpenBao:
    a minute later (past the reconciler's grace) reconciliation finds nothing to repair —
    deleting it would throw away a password the coadministrator may be applying. (It was
    reported as ``orphan_staged`` while the rotation's id was derived from version numbers.)"""
    world, account = faults.world, "DD05-youtube"
    world.call(
        "ana",
        "cuentas.alta",
        {"cuenta": account, "usuario": "dd05iecm", "correo": "dd05.youtube@iecm.mx"},
    )
    world.call("ana", "rotar.iniciar", {"cuenta": account})
    world.call("ana", "rotar.abandonar", {"cuenta": account})
    world.call("ana", "rotar.iniciar", {"cuenta": account})
    try:
        later = Reconciler(
            instance.services.vault,
            role_token=world.token("ana"),
            clock=lambda: datetime.now(UTC) + timedelta(seconds=61),
        )
        found = later.reconcile(instance.services.custodia.desired_state(), repair=False).drifts
        assert [(d.kind, d.subject) for d in found if d.subject == account] == []
    finally:
        world.call("ana", "rotar.abandonar", {"cuenta": account})
