"""The single-node service (``custodia servicio`` on the embedded NATS and OpenBao) while its
servers fail under it: NATS killed and started again on the same port and storage, OpenBao
sealed (and unsealed with the key kept in the home) or stopped and started again.

Invariants, not timings: no command acknowledged to a client is missing from the ledger, none
refused or unanswered lands there later, no credential read is shown unless recorded (and none
recorded stays undelivered unless voided), the service serves again without being restarted,
reconciliation finds nothing inconsistent and the ledger verifies. Waits are bounded by a
multiple of the round trip measured on this machine, never asserted on.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from custody.errors import WrappingTokenInvalidError
from custody.service.client import CommandClient, ServiceUnavailableError
from custody.service.protocol import RemoteError
from custody.stack.record import pid_alive
from custody.stack.servers import terminate
from custody.vault.credentials import Credentials
from events.domain import Incident

from .conftest import ServiceWorld
from .faults import (
    FaultWorld,
    healed,
    kill_nats,
    ledger_events,
    reads_by_purpose,
    restart_stack,
    reveal,
    seal_openbao,
    serves,
    stack_pids,
    verifies,
    wait_until,
)

pytestmark = pytest.mark.e2e

# What the service answers while OpenBao cannot serve: an infrastructure refusal, never an
# internal error and never a partial success.
OPENBAO_DOWN = {"VaultSealedError", "VaultUnreachableError", "VaultUnavailableError"}


def openbao_refusal(call: Callable[[], object]) -> str:
    """Run ``call``; it must be refused because OpenBao is down: the refusal's type."""
    with pytest.raises(RemoteError) as refused:
        call()
    assert refused.value.remote_type in OPENBAO_DOWN, refused.value.remote_chain
    return refused.value.remote_type


@pytest.fixture(scope="module")
def faults(fault_world_session: FaultWorld) -> FaultWorld:
    """The fault modules' shared world, its servers running again: ana (coadministrator),
    luis titular of DD05, bety designated for DD05; DD05-x with a confirmed password."""
    return healed(fault_world_session)


# -- NATS restarts ---------------------------------------------------------------------------


@dataclass
class Writer:
    """Files one incident after another (each with a unique description) and keeps what each
    call was told: acknowledged, refused by the service, or unanswered (outcome unknown)."""

    world: ServiceWorld
    endpoints: Any
    token: str
    ok: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            text = f"falla-nats-{n}"
            client = CommandClient(self.endpoints, self.token, timeout=5)
            try:
                client.call(
                    "incidentes.reportar",
                    {"cuenta": "DD05-x", "tipo": "intervencion", "descripcion": text},
                )
                outcome: list[Any] = self.ok
                item: Any = text
            except RemoteError as exc:
                outcome, item = self.refused, (text, exc.remote_type)
            except ServiceUnavailableError:
                outcome, item = self.unanswered, text
            with self.changed:
                outcome.append(item)
                self.changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], bound: float, what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, bound), f"not within {bound:.0f} s: {what}"


def test_commands_across_a_nats_restart_are_neither_lost_nor_ghosts(faults: FaultWorld) -> None:
    """A titular files incidents without pause while the embedded nats-server is killed
    (SIGKILL) and started again on the same port and storage: during the outage commands fail
    (the CLI says so in Spanish, no traceback); afterwards the same service process serves
    again. Every incident acknowledged is in the ledger exactly once, every one the service
    refused is absent, an unanswered one at most once; the ledger verifies."""
    fw, world = faults, faults.world
    writer = Writer(world, fw.endpoints, world.token("luis"))
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        writer.wait_for(lambda: len(writer.ok) >= 3, fw.bound, "commands before the outage")
        port = kill_nats(world.home, fw.bound)
        acked_before = len(writer.ok)
        writer.wait_for(lambda: len(writer.unanswered) >= 3, fw.bound, "outage seen by clients")
        cli = world.run("luis", "cuentas", "lista")
        assert (cli.returncode, cli.stdout) == (6, "")
        assert cli.stderr.startswith("Error: Los servidores embebidos"), cli.stderr
        assert "Traceback" not in cli.stderr
        info = restart_stack(world.home)
        assert info.nats.port == port  # same port, same storage
        writer.wait_for(
            lambda: len(writer.ok) >= acked_before + 3, fw.bound, "commands after the restart"
        )
    finally:
        writer.stop.set()
        thread.join(fw.bound)
    assert not thread.is_alive()
    serves(fw)

    described = Counter(
        e.description for e in ledger_events(world) if isinstance(e, Incident.Reported)
    )
    lost = [t for t in writer.ok if described[t] != 1]
    ghosts = [(t, why) for t, why in writer.refused if described[t]]
    doubled = [t for t in writer.unanswered if described[t] > 1]
    assert not lost, f"acknowledged but not in the ledger exactly once: {lost}"
    assert not ghosts, f"refused but in the ledger: {ghosts}"
    assert not doubled, f"unanswered and in the ledger twice: {doubled}"
    print(  # figures, not assertions
        f"\n  acknowledged {len(writer.ok)}, refused {len(writer.refused)} "
        f"({Counter(why for _, why in writer.refused)}), unanswered {len(writer.unanswered)} "
        f"(of which in the ledger: {sum(1 for t in writer.unanswered if described[t])})"
    )
    verifies(world)


# -- OpenBao sealed or stopped ---------------------------------------------------------------


def test_reveal_and_rotation_fail_closed_while_openbao_is_sealed_then_recover(
    faults: FaultWorld,
) -> None:
    """OpenBao is sealed under the running service (``sys/seal`` as root): ``revelar`` shows
    nothing and fails with a Spanish message, the ledger gains no delivered read (a read
    recorded and then not delivered is voided), ``rotar iniciar`` fails and stages nothing.
    Unsealed with the key kept in the home, the same service process reveals again (the
    password unwraps once), reconciliation finds nothing to repair and the ledger verifies."""
    fw, world = faults, faults.world
    root = fw.root_vault()
    reveal(fw, "bety", "antes-del-sellado")  # the service knows the current version
    before = reads_by_purpose(world)
    seal_openbao(fw)
    try:
        for n in range(3):
            seen = openbao_refusal(partial(reveal, fw, "bety", f"sellado-{n}"))
            assert seen == "VaultSealedError"
        cli = world.run("bety", "revelar", "--cuenta", "DD05-x", "--motivo", "sellado-cli")
        assert (cli.returncode, cli.stdout) == (6, "")
        assert cli.stderr.startswith("Error: OpenBao está sellado"), cli.stderr
        openbao_refusal(lambda: fw.client("ana").call("rotar.iniciar", {"cuenta": "DD05-x"}))
    finally:
        restart_stack(world.home)  # unseals with the stored key
    serves(fw)
    after = reads_by_purpose(world)
    assert {p: n for p, n in after.items() if p.startswith("sellado")} == {}
    assert after == before
    _recovered(fw, root.addr)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_reveal_and_rotation_fail_closed_while_openbao_is_stopped_then_recover(
    faults: FaultWorld, kill: bool
) -> None:
    """OpenBao stops under the running service: reveals and rotations fail closed (nothing
    shown, no delivered read recorded, nothing staged); started again by the supervisor on the
    same port and storage (and unsealed with the stored key), the same service process serves
    again, reconciliation is clean and the ledger verifies."""
    fw, world = faults, faults.world
    vault_addr = fw.endpoints.vault_addr
    before = reads_by_purpose(world)
    _, vault_pid = stack_pids(world.home)
    if kill:
        os.kill(vault_pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(vault_pid), fw.bound, "OpenBao gone")
    else:
        terminate(vault_pid, timeout=fw.bound)
    try:
        for n in range(2):
            openbao_refusal(partial(reveal, fw, "bety", f"detenido-{n}"))
        openbao_refusal(lambda: fw.client("ana").call("rotar.iniciar", {"cuenta": "DD05-x"}))
        cli = world.run("bety", "revelar", "--cuenta", "DD05-x", "--motivo", "detenido-cli")
        assert (cli.returncode, cli.stdout) == (6, "")  # the CLI finds the stack down itself
        assert cli.stderr.startswith("Error: ")
        assert "Traceback" not in cli.stderr
    finally:
        info = restart_stack(world.home)
    assert info.vault_addr == vault_addr
    serves(fw)
    assert reads_by_purpose(world) == before
    _recovered(fw, vault_addr)


def _recovered(fw: FaultWorld, vault_addr: str) -> None:
    """After an OpenBao outage: a reveal is recorded and unwraps once; no rotation was left
    staged; reconciliation reports no difference; the ledger verifies."""
    world = fw.world
    root = fw.root_vault()
    data = wait_until(lambda: _try_reveal(fw, "despues"), fw.bound, "a reveal again")
    assert data is not None
    credentials = Credentials(root)
    assert credentials.unwrap(data["envoltorio"], "DD05-x").password
    with pytest.raises(WrappingTokenInvalidError):
        credentials.unwrap(data["envoltorio"], "DD05-x")
    assert credentials.staged_metadata("DD05-x") is None
    accounts = world.call("ana", "cuentas.lista", {"distrito": "DD05"})
    assert next(a for a in accounts if a["cuenta"] == "DD05-x")["version_preparada"] is None
    report = world.call("ana", "reconciliar", {})
    assert report["diferencias"] == [], report
    verifies(world)


def _try_reveal(fw: FaultWorld, purpose: str) -> dict[str, Any] | None:
    try:
        return reveal(fw, "bety", purpose)
    except (RemoteError, ServiceUnavailableError):
        return None
