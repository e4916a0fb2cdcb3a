"""History that cannot be rewritten quietly (issue 16, findings 3 and 8).

The signed tree head is anchored in OpenBao KV (check-and-set) and every checkpoint is kept
there as a witness the signer can create but never rewrite. An operator with every NATS right
(the test servers' unauthenticated connection can delete and re-create any stream) rewrites
the ledger; the follower refuses to sign it, and verification against OpenBao fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from cli.bitacora_messages import problem_items
from custody.app.custodia import ledger_incident_id
from custody.errors import VaultPermissionDeniedError
from custody.ledger.alerts import AlertWatcher
from custody.ledger.anchor import FollowerAlert
from custody.ledger.errors import LedgerDivergedError
from custody.ledger.transit_signer import TransitSigner
from custody.vault.client import VaultClient
from events.checkpoint import SignedCheckpoint
from events.domain import Incident, Policy
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stored_sizes(world: LedgerWorld) -> list[int]:
    return [SignedCheckpoint.from_bytes(m.data).size for m in world.notes()]


def kinds(world: LedgerWorld) -> set[tuple[str, int | None, str]]:
    verdict = world.verify(anchored=world.anchored())
    assert not verdict.ok
    return {(i["tipo"], i["evento"], i["fuente"]) for i in problem_items(verdict)}


def test_rewritten_history_is_not_resigned_and_fails_against_openbao(world: LedgerWorld) -> None:
    """The attack of finding 3: entry 23 rewritten by deleting and re-creating the events
    stream, the checkpoints stream dropped, the follower restarted. It refuses to sign
    (``ledger.follower.diverged``), publishes nothing, leaves an alert in OpenBao, and
    verification against the head and witnesses there fails, blaming entries 21..30 (witness
    of size 30 vs. size 20)."""
    world.build()  # 50 entries, checkpoints 10..50, each anchored and witnessed
    assert world.anchored().largest == 50
    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    insider.delete_stream(world.url, world.names.checkpoints_stream)

    follower = world.follower()
    with capture_logs() as logs, pytest.raises(LedgerDivergedError):
        follower.checkpoint_now()
    assert any(e["event"] == "ledger.follower.diverged" for e in logs)
    assert follower.status().diverged
    assert stored_sizes(world) == []  # nothing re-signed
    assert world.verify().ok  # NATS alone has nothing left to contradict the forgery...
    verdict = world.verify(anchored=world.anchored())  # ...OpenBao does
    assert not verdict.ok
    items = problem_items(verdict)
    assert {i["fuente"] for i in items} == {"openbao"}
    assert items[0]["tipo"] == "raiz_distinta"
    assert (items[0]["desde"], items[0]["hasta"]) == (21, 30)
    [alert] = verdict.alerts
    assert "anchored in OpenBao" in alert.reason
    # What the follower found, for the incident: a rewrite, against the head of size 50.
    assert (alert.kind, alert.anchored_size, alert.observed_size) == ("reescrita", 50, 50)
    assert alert.anchored_root is not None
    assert alert.observed_root not in (None, alert.anchored_root)


def test_each_alert_becomes_one_incident_read_by_the_service(
    world: LedgerWorld, vault_service: VaultClient, tmp_path: Path
) -> None:
    """Issue 16: the follower refuses to sign a rewritten history, twice (a restart); OpenBao
    keeps one alert (its key derives from what was contradicted, create-only). The service's
    own token reads it (and OpenBao refuses it writing an alert or reading the anchored head);
    its watcher opens one ``bitacora_alterada`` incident, of no district, and reading the
    alerts again — another pass, a new watcher (a restart) — opens no second one."""
    world.build(30)
    entries = world.entries()
    entries[4].data = insider.flip_state_byte(entries[4].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    insider.delete_stream(world.url, world.names.checkpoints_stream)
    for _ in range(2):  # the service restarted on the forged history: still one alert
        with pytest.raises(LedgerDivergedError):
            world.follower().checkpoint_now()
    [alert] = world.anchored().alerts

    kv = vault_service.mounts.kv
    forged = {"options": {"cas": 0}, "data": {"motivo": "nada"}}
    with pytest.raises(VaultPermissionDeniedError):
        vault_service.write(f"{kv}/data/{world.names.alerts_folder}/x", forged, operation="t")
    with pytest.raises(VaultPermissionDeniedError):
        vault_service.read(f"{kv}/data/{world.names.anchor_key}", operation="t")

    ledger: dict[UUID, Incident] = {}

    def record(found: FollowerAlert) -> tuple[UUID, bool]:
        incident = Incident.ledger_tampering(
            incident_id=ledger_incident_id(found.id),
            divergence=found.kind,
            entry=found.entry,
            anchored_size=found.anchored_size,
            anchored_root=found.anchored_root,
            observed_size=found.observed_size,
            observed_root=found.observed_root,
            alert_id=found.id,
            diverged_at=datetime.fromisoformat(found.when),
            policy=Policy(),
            at=datetime.now(UTC),
        )
        new = incident.id not in ledger
        ledger.setdefault(incident.id, incident)
        return incident.id, new

    status_file = tmp_path / "bitacora.json"
    watcher = AlertWatcher(vault_service, world.names, record, status_file)
    assert watcher.poll() == 1
    assert watcher.poll() == 0
    restarted = AlertWatcher(vault_service, world.names, record, status_file)
    assert restarted.poll() == 0
    [incident] = ledger.values()
    assert (incident.district, incident.account, incident.divergence) == (None, None, "reescrita")
    assert incident.ledger_alert == alert.id
    status = json.loads(status_file.read_text())
    assert (status["integra"], status["alertas"]) == (False, 1)
    assert status["ultima_alerta"]["tipo"] == "reescrita"


def test_a_cut_tail_is_detected(world: LedgerWorld) -> None:
    """Finding 8: the tail is signed about a second after the last write, so removing entries
    4..5 (re-creating the stream without them, checkpoints dropped) is caught: the anchored
    witness names entry 4 as missing, and a restarted follower refuses to sign."""
    follower = world.follower(every=1000, quiet_seconds=0.2, poll_seconds=0.02)
    follower.start()
    try:
        world.write(5)
        wait_for(lambda: follower.status().anchored == 5)
    finally:
        follower.stop()
    insider.rewrite(world.url, world.names.events_stream, world.entries()[:3])
    insider.delete_stream(world.url, world.names.checkpoints_stream)

    assert ("truncada", 4, "openbao") in kinds(world)
    with pytest.raises(LedgerDivergedError) as caught:
        world.follower().checkpoint_now()
    assert "anchored" in caught.value.reason


def test_stop_signs_the_tail(world: LedgerWorld) -> None:
    """With no count or timer due, stopping the follower (service stop, SIGTERM) signs what it
    has not signed yet: the stream, the anchored head and a witness all reach the last entry."""
    world.build(20)
    follower = world.follower(every=1000, every_seconds=3600, quiet_seconds=3600)
    follower.start()
    world.write(7)
    wait_for(lambda: follower.status().size == 27)
    assert stored_sizes(world) == [10, 20]
    follower.stop()
    assert stored_sizes(world)[-1] == 27
    anchored = world.anchored()
    assert anchored.largest == 27
    assert SignedCheckpoint.from_bytes(anchored.witnesses[-1]).size == 27
    assert world.verify(anchored=anchored).ok


def test_the_signer_cannot_rewrite_a_witness_and_the_service_cannot_sign(
    world: LedgerWorld, vault_service: VaultClient, vault_reader: VaultClient
) -> None:
    """OpenBao itself refuses: the follower's token may create a witness but not update,
    delete or destroy it; the Secretaría Ejecutiva reads but cannot write; the service's token
    can no longer sign with the ledger key."""
    world.build(10)
    signer = world.anchor_client
    assert signer is not None
    kv = signer.mounts.kv
    key = world.names.witness_key(10)
    forged = {"options": {"cas": 1}, "data": {"punto_de_control": "falso"}}
    attempts: list[Callable[[], object]] = [
        lambda: signer.write(f"{kv}/data/{key}", forged, operation="test"),
        lambda: signer.request("DELETE", f"{kv}/data/{key}", operation="test"),
        lambda: signer.request("DELETE", f"{kv}/metadata/{key}", operation="test"),
        lambda: signer.write(f"{kv}/destroy/{key}", {"versions": [1]}, operation="test"),
        lambda: vault_reader.write(f"{kv}/data/{world.names.anchor_key}", forged, operation="test"),
    ]
    for attempt in attempts:
        with pytest.raises(VaultPermissionDeniedError):
            attempt()
    assert SignedCheckpoint.from_bytes(world.anchored().witnesses[0]).size == 10
    with pytest.raises(VaultPermissionDeniedError):
        TransitSigner(vault_service).sign(b"una historia falsa")
