"""Fail-closed reveals when the ledger write really fails (README, "Lectura auditada y de un
solo uso"): the read is recorded first, or nothing is shown and the wrapping token is revoked;
if the revocation fails too, it is logged, the token only lives its short TTL, and a use of it
is caught by the OpenBao audit follower as an unrecorded read.

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
from typing import Any

import pytest
from structlog.testing import capture_logs

from custody import runner
from custody.app import Actor
from custody.credentials import Credentials, RevealPrefetch, WrappedSecret
from custody.errors import (
    VaultPermissionDeniedError,
    VaultTokenInvalidError,
    WrappingTokenInvalidError,
)
from custody.vault import VaultClient
from events.domain import Incident
from events.jetstream import EventStoreUnavailableError

from .faults import (
    FaultWorld,
    fault_world,
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


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultWorld]:
    """ana (coadministrator), luis titular of DD05, bety designated for DD05; DD05-x with a
    confirmed password."""
    yield from fault_world(tmp_path_factory)


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

    def tokens(self) -> list[str]:
        """Every wrapping token made: by the wrapped reads and the reads sent ahead."""
        tokens = {w.token for w in self.made}
        for prefetch in self.prefetched:
            if prefetch.ahead is not None:
                with contextlib.suppress(Exception):  # a read that failed made no token
                    tokens.add(prefetch.ahead.result().token)
        return sorted(tokens)


class Instance:
    """A second service instance in this process, on the same home's servers."""

    def __init__(self, fw: FaultWorld) -> None:
        self.services = runner.build(fw.world.settings)
        self.spy = SpyCredentials(self.services.vault)
        self.services.custodia.credentials = self.spy
        self.fw = fw

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


def test_a_reveal_whose_record_fails_as_nats_dies_revokes_its_wrapping_token(
    faults: FaultWorld, instance: Instance
) -> None:
    """NATS is killed between the caller's wrapped read and the ledger write: the reveal fails,
    the wrapping token it made is revoked (OpenBao refuses to unwrap it), and once NATS is back
    the ledger holds no record of that read; the running service serves and the ledger
    verifies."""
    killed: list[int] = []
    nats_dies = once(lambda: killed.append(kill_nats(faults.home, faults.bound)))
    with pytest.raises(EventStoreUnavailableError):
        instance.reveal("compensacion-nats", proceed=nats_dies)
    assert killed, "the ledger write was not reached"
    assert len(instance.spy.made) == 1  # no version known: the wrapped read came first
    tokens = instance.spy.tokens()
    restart_stack(faults.home)
    for token in tokens:
        assert openbao_refuses(faults.endpoints.vault_addr, token)
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
    with pytest.raises(EventStoreUnavailableError):
        instance.reveal("compensacion-adelantada", proceed=nats_dies)
    prefetch = instance.spy.prefetched[-1]
    assert prefetch.guess == first["version"]
    assert prefetch.ahead is not None
    assert len(instance.spy.made) == made_before  # the early path: no second wrapped read
    token = prefetch.ahead.result().token
    vault_addr = faults.endpoints.vault_addr
    wait_until(lambda: openbao_refuses(vault_addr, token), faults.bound, "token revoked")
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
    root_token = world.root_vault().token  # read while the stack is up

    def both_die() -> None:
        kill_nats(home, faults.bound)
        VaultClient(faults.endpoints.vault_addr, root_token).write("sys/seal", operation="test")

    with capture_logs() as logs, pytest.raises(EventStoreUnavailableError):
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
    seal_openbao(faults.world)
    from custody.embedded import EmbeddedStack
    from custody.servers import http_get_json

    info = EmbeddedStack(faults.home).info()
    assert info is not None
    code, _ = http_get_json(info.vault.port, "/v1/sys/health")
    assert code == 503
    restart_stack(faults.home)
    code, _ = http_get_json(info.vault.port, "/v1/sys/health")
    assert code == 200
