"""``kill -9`` of the active OpenBao member while a loop writes and reads KV secrets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from custody.vault.layout import ensure_layout
from tests.cluster.helpers import FailoverVault, KvLoop, vault_client
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_active_member_killed_during_kv_traffic_loses_nothing(
    cluster: Cluster, figures: dict[str, Any]
) -> None:
    """A writer stores new credentials-like secrets with check-and-set 0 on Custodia's KV mount
    (reading each back) and a reader re-reads acknowledged ones, both through the active member
    first and the others on failure. The active member gets SIGKILL: a standby becomes active
    within seconds, traffic resumes, and every acknowledged write holds the value written, read
    through every member once the dead one is back; no write was ever answered with another
    caller's value."""
    bao = cluster.bao
    active = bao.active()
    assert active is not None
    order = [active, *(i for i in range(len(bao.nodes)) if i != active)]

    def failover_client() -> FailoverVault:
        return FailoverVault(
            [vault_client(bao.addrs[i], bao.root_token, bao.ca_file) for i in order]
        )

    admin = vault_client(bao.addrs[active], bao.root_token, bao.ca_file)
    layout_started = time.monotonic()
    ensure_layout(admin)  # Custodia's mounts (KV v2 with cas_required), keys, policies, groups
    layout_s = time.monotonic() - layout_started
    loop = KvLoop(failover_client(), failover_client(), mount=admin.mounts.kv)
    loop.start()
    try:
        time.sleep(1.5)
        killed_at = time.monotonic()
        bao.kill(active)
        new_active = bao.wait_active(other_than=active)
        elected_at = time.monotonic()
        deadline = elected_at + 90  # a hang guard only
        while sum(1 for _, t in loop.acknowledged.values() if t > elected_at) < 10:
            assert time.monotonic() < deadline, "KV writes did not resume"
            assert not loop.errors, loop.errors
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        loop.stop()
    stopped_at = time.monotonic()
    assert not loop.errors, loop.errors
    bao.restart(active)
    bao.wait_unsealed_standbys()
    for index in order:  # the restarted member too (it forwards to the active)
        reader = FailoverVault([vault_client(bao.addrs[index], bao.root_token, bao.ca_file)])
        for key, (value, _) in loop.acknowledged.items():
            assert loop.value_of(key, reader) == value
    # Writes acknowledged between the kill and the (polled) takeover are a figure: the polled
    # time only bounds the real takeover from above, and a loaded machine delays late acks.
    gap = loop.longest_gap()[1]
    started = min(t for _, t in loop.acknowledged.values())
    figures.update(
        layout_s=layout_s,
        takeover_s=elected_at - killed_at,
        write_pause_s=gap,
        writes_per_s_before_kill=sum(1 for _, t in loop.acknowledged.values() if t < killed_at)
        / (killed_at - started),
        reads_per_s_whole_run=len(loop.reads) / (stopped_at - started),
        acknowledged_writes=len(loop.acknowledged),
        acks_between_kill_and_polled_takeover=sum(
            1 for _, t in loop.acknowledged.values() if killed_at < t < elected_at
        ),
        retried_after_landing=loop.ambiguous,
        client_failovers=len(loop.vault.failures) + len(loop.reader_vault.failures),
        new_active=bao.nodes[new_active].node_id,
    )
