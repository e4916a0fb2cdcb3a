"""The clusters come up as deploy/ describes them: routes, replicas, TLS, accounts, raft, audit."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.utils import Environment

from custody.stack.servers import LOOPBACK
from custody.vault.layout import await_kv_ready
from events.jetstream import Factory
from tests.cluster.helpers import APP, STREAM, closing_app, new_entry, vault_client
from tests.support.cluster import BAO_ACTIVE, BAO_STANDBY, Cluster

pytestmark = pytest.mark.cluster


def test_nats_cluster_replicates_the_event_stream_three_times(cluster: Cluster) -> None:
    """Every member routes to the other two; the event store creates custodia-events with three
    replicas (a leader and two current followers); the log verifies on each member."""
    nats = cluster.nats
    for node in nats.nodes:
        status, routez = node.monitor("/routez")
        assert status == 200
        remotes = {route.get("remote_name") for route in routez["routes"]}
        assert remotes == {n.name for n in nats.nodes if n is not node}
        _, varz = node.monitor("/varz")
        assert varz["tls_required"] is True
        assert varz["cluster"]["name"] == "custodia"
    with closing_app(nats.env()) as app:
        app.save(new_entry(0, 1))
    leader = nats.wait_stream_leader(STREAM)
    _, jsz = nats.nodes[leader].monitor("/jsz?acc=CUSTODIA&streams=true&config=true")
    (detail,) = [
        s for a in jsz["account_details"] for s in a["stream_detail"] if s["name"] == STREAM
    ]
    assert detail["config"]["num_replicas"] == 3
    assert detail["config"]["storage"] == "file"
    state = nats.wait_replicas_current(STREAM)
    assert state["messages"] >= 1


def test_nats_refuses_untrusted_and_unprivileged_clients(cluster: Cluster) -> None:
    """A client that does not trust the cluster's CA cannot connect at all; the service's
    responder (``servicio``, which answers commands) connects but cannot touch the event stream
    (the accounts of custody/service/permissions.py; people have no password:
    custody/service/callout.py)."""
    env = {**cluster.nats.env(), "NATS_CONNECT_TIMEOUT": "2", "NATS_TIMEOUT": "2"}
    untrusting = Factory(Environment(APP, {k: v for k, v in env.items() if k != "NATS_TLS_CA"}))
    with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.application_recorder()
    untrusting.close()
    password = cluster.nats.users["servicio"].password
    client = Factory(Environment(APP, {**env, "NATS_USER": "servicio", "NATS_PASSWORD": password}))
    try:
        with pytest.raises(OperationalError):
            client.application_recorder()  # the stream's API is not the client's to call
    finally:
        client.close()


def test_openbao_raft_cluster_has_three_voters_and_one_active(cluster: Cluster) -> None:
    """Three raft voters, one active member and two standbys; a write sent to a standby is
    forwarded and readable through every member; the declared audit device records it; the
    listener speaks only TLS."""
    bao = cluster.bao
    servers = bao.raft_servers()
    assert sorted(s["node_id"] for s in servers) == ["bao-1", "bao-2", "bao-3"]
    assert all(s["voter"] for s in servers)
    health = sorted(bao.health(i) for i in range(3))
    assert health == [BAO_ACTIVE, BAO_STANDBY, BAO_STANDBY]
    active = bao.active()
    standby = next(i for i in range(3) if i != active)
    client = vault_client(bao.addrs[standby], bao.root_token, bao.ca_file)
    client.write("sys/mounts/topology", {"type": "kv", "options": {"version": "2"}}, operation="t")
    await_kv_ready(client, "topology")  # a new KV v2 mount refuses requests while it sets up
    marker = uuid.uuid4().hex
    client.write("topology/data/probe", {"data": {"marker": marker}}, operation="t")
    for addr in bao.addrs:
        reader = vault_client(addr, bao.root_token, bao.ca_file)
        body = reader.read("topology/data/probe", operation="t")
        assert body["data"]["data"]["marker"] == marker
    audit = [json.loads(line) for line in bao.audit_log.read_text().splitlines()]
    paths = {entry.get("request", {}).get("path") for entry in audit}
    assert "topology/data/probe" in paths
    assert marker not in bao.audit_log.read_text()  # values are HMAC'd in the audit log
    plain = http.client.HTTPConnection(LOOPBACK, bao.nodes[standby].port, timeout=2)
    try:
        plain.request("GET", "/v1/sys/health")
        assert plain.getresponse().status == 400  # "client sent an HTTP request to HTTPS"
    finally:
        plain.close()
