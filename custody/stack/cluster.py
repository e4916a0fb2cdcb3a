"""The cluster configuration renderers: ``deploy/``'s NATS and OpenBao member files.

``python -m custody.stack.cluster deploy deploy/`` writes ``deploy/nats/*.conf`` and
``deploy/openbao/openbao-N.hcl`` for the hosts ``nats-N.custodia.internal`` /
``bao-N.custodia.internal``; a unit test keeps the files in the repository identical to this
output. The loopback three-node clusters the tests run (``tests/support/cluster.py``) render
their members with the same functions (:func:`render_nats_node`, :func:`render_bao_node`), so
what the tests exercise is what ``deploy/`` describes.

NATS
    ``server_name`` ``nats-N``, cluster ``custodia`` with routes to every member (mutual TLS),
    client TLS, JetStream on file storage, and the accounts and permissions of
    :mod:`custody.service.permissions` (its users, each with a variable password).
OpenBao
    Integrated storage (raft) with ``retry_join`` blocks naming every member, a TLS listener, the
    file audit device declared in the configuration (the same path on every member, or a standby
    cannot become active), ``performance_multiplier = 1`` (fast elections), auto-unseal shown as
    an example (``deploy/openbao/CLUSTER.md``).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from custody.service import permissions as nats_auth

CLUSTER_NAME = "custodia"
REPLICAS = 3


@dataclass(frozen=True)
class TlsFiles:
    """A CA and one certificate (server and client use) with its key, as PEM files."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class NatsNodeSpec:
    """One member of the NATS cluster, as ``nats.conf`` describes it."""

    name: str
    listen: str  # host:port for clients
    cluster_listen: str  # host:port for routes
    http: str  # host:port of the monitoring endpoint (plain HTTP: keep it private)
    store_dir: str
    routes: tuple[str, ...]  # host:port of every member's cluster listener
    tls: TlsFiles | None
    accounts: str  # the accounts block, or an ``include`` of it
    sync_always: bool = False
    client_advertise: str | None = None
    max_payload: int = 1024 * 1024


def render_nats_node(spec: NatsNodeSpec) -> str:
    """``nats.conf`` for one cluster member (JetStream, routes, TLS, accounts)."""

    def tls_block(indent: str, verify: bool) -> str:
        if spec.tls is None:
            return ""
        lines = [
            "tls {",
            f"  cert_file: {json.dumps(str(spec.tls.cert))}",
            f"  key_file: {json.dumps(str(spec.tls.key))}",
            f"  ca_file: {json.dumps(str(spec.tls.ca))}",
            f"  verify: {'true' if verify else 'false'}",
            "  timeout: 2",
            "}",
        ]
        return "".join(f"{indent}{line}\n" for line in lines)

    routes = "\n".join(f"    nats-route://{route}" for route in spec.routes)
    sync = "\n  sync_interval: always" if spec.sync_always else ""
    advertise = (
        f"client_advertise: {json.dumps(spec.client_advertise)}\n" if spec.client_advertise else ""
    )
    return (
        f"# Custodia NATS cluster member {spec.name} (custody.stack.cluster.render_nats_node)\n"
        f"server_name: {json.dumps(spec.name)}\n"
        f"listen: {json.dumps(spec.listen)}\n"
        f"{advertise}"
        f"http: {json.dumps(spec.http)}\n"
        f"max_payload: {spec.max_payload}\n"
        "# Clients: server-authenticated TLS plus a user and password\n"
        "# (custody/service/permissions.py).\n"
        f"{tls_block('', verify=False)}"
        "jetstream {\n"
        f"  store_dir: {json.dumps(spec.store_dir)}{sync}\n"
        "}\n"
        "cluster {\n"
        f"  name: {CLUSTER_NAME}\n"
        f"  listen: {json.dumps(spec.cluster_listen)}\n"
        "  # Every member, this one included (a route to itself is ignored).\n"
        "  routes: [\n"
        f"{routes}\n"
        "  ]\n"
        "  # Routes authenticate each other with certificates from the cluster's CA.\n"
        f"{tls_block('  ', verify=True)}"
        "}\n"
        f"{spec.accounts}"
    )


@dataclass(frozen=True)
class BaoNodeSpec:
    """One member of the OpenBao raft cluster, as its HCL configuration describes it."""

    node_id: str
    listen: str  # host:port of the API listener
    cluster_listen: str  # host:port of the cluster listener (raft, request forwarding)
    api_addr: str  # URL clients and other members use for this node
    cluster_addr: str  # URL of the cluster port (request forwarding, raft)
    data_dir: str
    # The same on every member: the audit configuration is replicated, and a member whose
    # declared device differs from it cannot become active ("modifications to audit devices are
    # not allowed"). Only the active member writes it.
    audit_log: str
    peers: tuple[str, ...]  # api_addr of every member (retry_join)
    tls: TlsFiles | None
    performance_multiplier: int = 1
    seal: str = ""  # an optional ``seal`` block (auto-unseal), verbatim


def render_bao_node(spec: BaoNodeSpec) -> str:
    """HCL for one raft member: ``retry_join`` to every member, TLS listener, audit device."""
    joins = []
    for peer in spec.peers:
        ca = f"\n    leader_ca_cert_file = {json.dumps(str(spec.tls.ca))}" if spec.tls else ""
        joins.append(f"  retry_join {{\n    leader_api_addr = {json.dumps(peer)}{ca}\n  }}")
    if spec.tls is None:
        tls = "  tls_disable = true"
    else:
        tls = (
            f"  tls_cert_file   = {json.dumps(str(spec.tls.cert))}\n"
            f"  tls_key_file    = {json.dumps(str(spec.tls.key))}\n"
            '  tls_min_version = "tls12"'
        )
    joined = "\n".join(joins)
    return f"""# Custodia OpenBao raft member {spec.node_id} (custody.stack.cluster.render_bao_node)
storage "raft" {{
  path    = {json.dumps(spec.data_dir)}
  node_id = {json.dumps(spec.node_id)}
  # 1 = the fastest leader elections (the default, 5, is meant for slow or shared networks).
  performance_multiplier = {spec.performance_multiplier}
{joined}
}}

listener "tcp" {{
  address         = {json.dumps(spec.listen)}
  cluster_address = {json.dumps(spec.cluster_listen)}
{tls}
}}

api_addr      = {json.dumps(spec.api_addr)}
cluster_addr  = {json.dumps(spec.cluster_addr)}
# Every request is served by the active member (standbys forward): read-after-write holds. By
# default OpenBao >= 2.5 lets standbys answer reads from their own, possibly stale, replica.
disable_standby_reads = true
ui            = false
log_level     = "warn"

# Audit devices cannot be enabled through the API since OpenBao 2.3.2: declared here.
audit "file" "custodia-audit" {{
  description = "Custodia audit log"
  options {{
    file_path = {json.dumps(spec.audit_log)}
    mode      = "0600"
  }}
}}
{spec.seal}"""


# The auth callout's issuer: its public account key (``A…``), from the environment.
CALLOUT_ISSUER_VARIABLE = "$CUSTODIA_NATS_CALLOUT_ISSUER"


def deploy_accounts() -> str:
    """The accounts block for ``deploy/nats/accounts.conf``: passwords come from the environment.

    Same users and permissions as the embedded server
    (:func:`custody.service.permissions.render_accounts`);
    each password is the variable ``$CUSTODIA_NATS_<USER>_PASSWORD`` (a bcrypt hash is accepted).
    """
    users = {
        name: nats_auth.NatsUser(name, f"$CUSTODIA_NATS_{name.upper()}_PASSWORD")
        for name in nats_auth.USERS
    }
    text = nats_auth.render_accounts(
        users, nats_auth.LEDGER_STREAMS, nats_auth.EVENT_SUBJECTS, CALLOUT_ISSUER_VARIABLE
    )
    # NATS expands a variable only when it is not quoted.
    return re.sub(r'"(\$CUSTODIA_NATS_[A-Z_]+)"', r"\1", text).lstrip("\n")


def deploy_files() -> dict[str, str]:
    """The cluster configuration files under ``deploy/`` (relative path → text)."""
    hosts = [f"{{}}-{i}.custodia.internal".format for i in (1, 2, 3)]
    tls_nats = TlsFiles(
        Path("/etc/nats/tls/ca.pem"),
        Path("/etc/nats/tls/server.pem"),
        Path("/etc/nats/tls/server-key.pem"),
    )
    tls_bao = TlsFiles(
        Path("/etc/openbao/tls/ca.pem"),
        Path("/etc/openbao/tls/server.pem"),
        Path("/etc/openbao/tls/server-key.pem"),
    )
    files = {"nats/accounts.conf": deploy_accounts()}
    for i, host in enumerate(hosts, 1):
        files[f"nats/nats-{i}.conf"] = render_nats_node(
            NatsNodeSpec(
                name=f"nats-{i}",
                listen="0.0.0.0:4222",
                cluster_listen="0.0.0.0:6222",
                http="127.0.0.1:8222",
                store_dir="/var/lib/nats/jetstream",
                routes=tuple(f"{h('nats')}:6222" for h in hosts),
                tls=tls_nats,
                accounts='include "accounts.conf"\n',
            )
        )
        files[f"openbao/openbao-{i}.hcl"] = render_bao_node(
            BaoNodeSpec(
                node_id=f"bao-{i}",
                listen="0.0.0.0:8200",
                cluster_listen="0.0.0.0:8201",
                api_addr=f"https://{host('bao')}:8200",
                cluster_addr=f"https://{host('bao')}:8201",
                data_dir="/var/lib/openbao/raft",
                audit_log="/var/log/openbao/audit.log",
                peers=tuple(f"https://{h('bao')}:8200" for h in hosts),
                tls=tls_bao,
                seal=_TRANSIT_SEAL_EXAMPLE,
            )
        )
    return files


_TRANSIT_SEAL_EXAMPLE = """
# Auto-unseal (recommended in production; see deploy/TOPOLOGY.md): a transit engine on a separate
# OpenBao (or a cloud KMS / PKCS#11 HSM seal) unseals every member at start, without people.
# seal "transit" {
#   address         = "https://bao-unseal.custodia.internal:8200"
#   key_name        = "custodia-autounseal"
#   mount_path      = "transit/"
#   tls_ca_cert     = "/etc/openbao/tls/unseal-ca.pem"
#   # token: the BAO_TOKEN environment variable of the unit (a periodic token, policy limited
#   # to encrypt/decrypt on that key), never in this file.
# }
"""


def _main(argv: list[str]) -> int:
    usage = "usage: python -m custody.stack.cluster deploy DIR   write the deploy/ cluster configs"
    if len(argv) != 2 or argv[0] != "deploy":
        print(usage, file=sys.stderr)
        return 2
    target = Path(argv[1])
    for relative, text in deploy_files().items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))


__all__ = [
    "CLUSTER_NAME",
    "REPLICAS",
    "BaoNodeSpec",
    "NatsNodeSpec",
    "TlsFiles",
    "deploy_accounts",
    "deploy_files",
    "render_bao_node",
    "render_nats_node",
]
