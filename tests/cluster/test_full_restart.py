"""Every node of both clusters killed at once under traffic, then started again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from custody.vault.layout import ensure_layout
from tests.cluster.helpers import (
    STREAM,
    EventWriters,
    FailoverVault,
    KvLoop,
    check_log,
    closing_app,
    new_entry,
    recorder_for,
    vault_client,
)
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_everything_killed_and_restarted_keeps_every_acknowledged_write(
    cluster: Cluster, figures: dict[str, Any]
) -> None:
    """Events and KV secrets are being written when all three NATS servers and all three
    OpenBao members get SIGKILL together. Started again on the same data (OpenBao unsealed),
    both clusters serve within seconds; the same application and KV clients carry on without
    being recreated; every acknowledged event and secret is intact, the event log verifies, and
    Custodia's OpenBao layout is unchanged."""
    nats, bao = cluster.nats, cluster.bao
    env = {**nats.env(), "NATS_TIMEOUT": "30"}

    def failover_client() -> FailoverVault:
        clients = [vault_client(addr, bao.root_token, bao.ca_file) for addr in bao.addrs]
        return FailoverVault(clients, deadline_s=60)

    admin = vault_client(bao.addrs[bao.active() or 0], bao.root_token, bao.ca_file)
    ensure_layout(admin)
    with closing_app(env) as app:
        app.save(new_entry(0, 0))
        writers = EventWriters(app, threads=2)
        kv = KvLoop(failover_client(), failover_client(), mount=admin.mounts.kv)
        writers.start()
        kv.start()
        try:
            time.sleep(1.0)
            killed_at = time.monotonic()
            bao.kill_all()
            nats.kill_all()
            time.sleep(0.5)
            restarted_at = time.monotonic()
            nats.start()
            nats.wait_stream_leader(STREAM)
            nats_ready_at = time.monotonic()
            bao.start()  # unseals all three: a quorum is needed before any becomes active
            bao_ready_at = time.monotonic()
            deadline = time.monotonic() + 120  # a hang guard only
            while (  # both kinds of traffic resumed
                writers.acks_between(bao_ready_at, float("inf")) < 10
                or sum(1 for _, t in kv.acknowledged.values() if t > bao_ready_at) < 5
            ):
                assert time.monotonic() < deadline, "traffic did not resume"
                assert not writers.other_errors, writers.other_errors
                assert not kv.errors, kv.errors
                time.sleep(0.05)
        finally:
            writers.stop()
            kv.stop()
        after = app.save(new_entry(0, 1))  # the application made before the crash still works
    assert not kv.errors, kv.errors
    assert not writers.unknown
    assert not writers.refused
    nats.wait_replicas_current(STREAM)
    factory, recorder = recorder_for(env)
    try:
        found = check_log(recorder, writers)
    finally:
        factory.close()
    assert after[-1].notification.id == found.notifications  # the last save is the last event
    for key, (value, _) in kv.acknowledged.items():
        assert kv.value_of(key) == value
    report = ensure_layout(admin)
    assert not report.created
    assert not report.updated
    first_ack_after = min(s.ended for s in writers.acknowledged if s.ended > restarted_at)
    figures.update(
        nats_ready_s=nats_ready_at - restarted_at,
        bao_active_s=bao_ready_at - nats_ready_at,
        first_save_after_restart_s=first_ack_after - restarted_at,
        event_pause_s=writers.longest_gap()[1],
        kv_pause_s=kv.longest_gap()[1],
        killed_to_restart_s=restarted_at - killed_at,
        events_acknowledged=len(writers.acknowledged),
        kv_acknowledged=len(kv.acknowledged),
    )
