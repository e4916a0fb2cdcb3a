"""A single-node Custodia of a test module's own, whose servers the module may kill: the
service (``custodia servicio``) on the embedded NATS and OpenBao, a few people, and helpers to
kill, seal and restart those servers and to read the ledger as the ``verificador``."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from custody import runner
from custody.app.custodia import CustodiaApplication
from custody.ledger import nats_io
from custody.service.client import CommandClient, ServiceUnavailableError
from custody.service.protocol import RemoteError
from custody.stack.embedded import EmbeddedStack
from custody.stack.record import pid_alive
from custody.vault.client import VaultClient
from events.domain import District
from events.jetstream import records
from tests.reads import delivered_reads

from .conftest import (
    LEDGER_STREAM,
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
)

T = TypeVar("T")


@dataclass
class FaultWorld:
    """A ServiceWorld of this module's own (its servers are killed here) and the bound of every
    wait, derived from the round trip of a command measured when it was set up."""

    world: ServiceWorld
    bound: float
    service_pid: int
    endpoints: Any  # resolved once: the ports stay the same across restarts
    root_token: str = field(repr=False)  # generated once, while the stack is up

    @property
    def home(self) -> Path:
        return self.world.home

    def root_vault(self) -> VaultClient:
        """OpenBao as root, without looking the servers up (NATS may be down)."""
        return VaultClient(self.endpoints.vault_addr, self.root_token)

    def client(self, user: str, *, timeout: float = 15.0) -> CommandClient:
        """A client that does not look the servers up (they may be down)."""
        return CommandClient(self.endpoints, self.world.token(user), timeout=timeout, username=user)


def fault_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultWorld]:
    """For the session fixture ``fault_world_session`` (tests/e2e/conftest.py), shared by the
    fault modules (each brings it back to health first, :func:`healed`): a home of its own
    with ana (coadministrator), luis titular of DD05, bety designated for DD05; DD05-x with a
    confirmed password."""
    home = tmp_path_factory.mktemp("custodia-fallas")
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home)
        try:
            world = ServiceWorld(home, service)
            world.login("ana")
            world.add_person("luis", "titular", "DD05")
            world.add_person("bety", "administrador", "DD05")
            world.call("ana", "titular", {"distrito": "DD05", "persona": "luis"})
            world.call(
                "ana",
                "cuentas.alta",
                {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"},
            )
            world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
            world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
            world.call(
                "luis", "designar", {"distrito": "DD05", "persona": "bety", "oficio": "DD05/1/26"}
            )
            # ``init`` revoked its root token: one is generated (unseal key + ana) for the module.
            root = world.root_vault()
            yield FaultWorld(
                world, measured_bound(world), service.pid, world.endpoints(), str(root.token)
            )
            with contextlib.suppress(Exception):  # a test may have left OpenBao sealed
                root.write("auth/token/revoke-self", operation="test")
        finally:
            stop_service(service)
    finally:
        run_custodia("detener", home=home)


# How long a second service instance built in the test process waits for NATS before a write
# fails (the product's ``NATS_TIMEOUT``, reconnection included, is 10 s). These tests kill NATS
# on purpose, so each of their failing writes used to wait all of it; a healthy write takes
# milliseconds, so this bound still leaves it a wide margin.
INSTANCE_NATS_TIMEOUT = "5"


def build_instance(fw: FaultWorld) -> runner.Services:
    """:func:`custody.runner.build` for ``fw`` (what ``custodia servicio`` builds), with
    :data:`INSTANCE_NATS_TIMEOUT` (read once, when its event store is made)."""
    saved = os.environ.get("NATS_TIMEOUT")
    os.environ["NATS_TIMEOUT"] = INSTANCE_NATS_TIMEOUT
    try:
        return runner.build(fw.world.settings)
    finally:
        if saved is None:
            del os.environ["NATS_TIMEOUT"]
        else:
            os.environ["NATS_TIMEOUT"] = saved


def healed(fw: FaultWorld) -> FaultWorld:
    """``fw`` with every embedded server running and OpenBao unsealed (whatever an earlier
    module's last test left), and the same service process answering: a fault module's
    starting point."""
    restart_stack(fw.home)
    serves(fw)
    return fw


def measured_bound(world: ServiceWorld) -> float:
    """A generous bound for a wait: 400 round trips of a read-only command (at least 60 s)."""
    client = world.client("ana")
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        client.call("sesion.quien")
        samples.append(time.perf_counter() - started)
    return max(60.0, 400 * statistics.median(samples))


def wait_until(condition: Callable[[], T], bound: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {bound:.0f} s: {what}"
        time.sleep(0.1)


# -- servers ---------------------------------------------------------------------------------


def stack_pids(home: Any) -> tuple[int, int]:
    info = EmbeddedStack(home).info()
    assert info is not None, "the embedded servers are not running"
    return info.nats.pid, info.vault.pid


def kill_nats(home: Any, bound: float) -> int:
    """SIGKILL the embedded nats-server (no clean shutdown); its port, once it is gone."""
    info = EmbeddedStack(home).info()
    assert info is not None
    os.kill(info.nats.pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(info.nats.pid), bound, "nats-server gone")
    return info.nats.port


def restart_stack(home: Any) -> Any:
    """What ``custodia`` does when its servers are down: the supervisor starts what is dead on
    its previous ports and storage, and unseals OpenBao with the key kept in the home."""
    return EmbeddedStack(home).start()


def seal_openbao(fw: FaultWorld) -> None:
    """Seal OpenBao as its root (``sys/seal``): it then refuses every request until unsealed."""
    fw.root_vault().write("sys/seal", operation="test")


# -- the ledger ------------------------------------------------------------------------------


def ledger_events(world: ServiceWorld) -> list[DomainEventProtocol[UUID]]:
    """Every event of the ledger, read as the read-only ``verificador``."""
    transcoder = JSONTranscoder()
    app: CustodiaApplication = object.__new__(CustodiaApplication)  # no infrastructure
    app.register_transcodings(transcoder)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    endpoints = world.endpoints("verificador")
    conn = nats_io.connect(endpoints.nats_url, endpoints.nats_user, endpoints.nats_password)
    try:
        stored: list[StoredEvent] = []
        for batch in nats_io.read_entries(conn, LEDGER_STREAM):
            for _, _, body in batch:
                record = records.decode(body)
                if isinstance(record, records.EventsRecord):
                    stored.extend(record.events)
    finally:
        conn.close()
    return [mapper.to_domain_event(s) for s in stored]


def reads_by_purpose(world: ServiceWorld) -> Counter[str]:
    return delivered_reads(ledger_events(world))


def recorded_reads(world: ServiceWorld, purpose: str) -> list[Any]:
    return [
        e
        for e in ledger_events(world)
        if isinstance(e, District.CredentialRead) and e.purpose == purpose
    ]


def verifies(world: ServiceWorld) -> None:
    result = world.run("ana", "bitacora", "verificar", "--json")
    assert result.returncode == 0, result.stdout + result.stderr


def serves(fw: FaultWorld) -> None:
    """The same service process answers commands again (it was not restarted)."""
    wait_until(lambda: answers(fw), fw.bound, "the service answers again")
    assert fw.world.alive()
    assert fw.world.service.pid == fw.service_pid


def answers(fw: FaultWorld) -> bool:
    try:
        fw.client("ana", timeout=5).call("sesion.quien")
    except (ServiceUnavailableError, RemoteError):
        return False
    return True


def reveal(fw: FaultWorld, user: str, purpose: str) -> dict[str, Any]:
    data: dict[str, Any] = fw.client(user).call("revelar", {"cuenta": "DD05-x", "motivo": purpose})
    return data
