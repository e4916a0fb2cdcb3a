"""Three-node NATS JetStream and OpenBao raft clusters on loopback: a harness for tests and dev
(``python -m tests.support.cluster up DIR`` runs both until Ctrl-C).

What runs here is what ``deploy/`` describes: both use the renderers below
(:func:`render_nats_node`, :func:`render_bao_node`), the deploy files being these renderers'
output for the hosts ``nats-N.custodia.internal`` / ``bao-N.custodia.internal``
(``python -m custody.stack.cluster deploy deploy/``; a unit test keeps them identical).

NATS
    ``server_name`` ``nats-N``, cluster ``custodia`` with routes to every member (mutual TLS),
    client TLS, JetStream on file storage, and the accounts and permissions of
    :mod:`custody.service.permissions` (its users, each with a variable password). Streams are
    created by
    the event store with ``NATS_REPLICAS=3`` (:meth:`NatsCluster.env`, as ``administrador``).
OpenBao
    Integrated storage (raft) with ``retry_join`` blocks naming every member, a TLS listener, the
    file audit device declared in the configuration (the same path on every member, or a standby
    cannot become active), ``performance_multiplier = 1`` (fast elections). Node 1 is
    initialised (one Shamir key share here; auto-unseal in production, see
    ``deploy/openbao/CLUSTER.md``); unsealing the others makes them join. With
    ``disable_standby_reads`` standbys forward every request, reads included, to the active
    node: a client may talk to any unsealed member and still read its own writes.

Faults: :meth:`NatsCluster.kill` / :meth:`BaoCluster.kill` send SIGKILL to one node;
``restart`` starts it again on the same ports and data (and unseals it). ``stop`` ends everything
it started and never raises, so it belongs in a ``finally`` (the classes are context managers).

Nodes are child processes that receive SIGKILL if the thread that started them ends
(``PR_SET_PDEATHSIG``): even a killed test run leaves nothing behind. Start and restart nodes from
a long-lived thread (the test's own), never from a short-lived worker thread.

Readiness is checked over HTTP(S) on loopback (the NATS monitoring port, ``/v1/sys/health``),
without nats-py or hvac, as in :mod:`custody.stack.servers`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from custody.service import permissions as nats_auth
from custody.service.callout import issuer_public_key
from custody.stack.cluster import (
    REPLICAS,
    BaoNodeSpec,
    NatsNodeSpec,
    TlsFiles,
    render_bao_node,
    render_nats_node,
)
from custody.stack.servers import (
    LOOPBACK,
    NatsProcess,
    PortInUseError,
    bao_binary,
    free_port,
    http_json,
    nats_server_binary,
    port_is_free,
)
from events.errors import StackError

# Health codes of /v1/sys/health: active, standby, uninitialised, sealed.
BAO_ACTIVE, BAO_STANDBY, BAO_UNINITIALIZED, BAO_SEALED = 200, 429, 501, 503
_BAO_ANSWERS = frozenset({200, 429, 472, 473, 501, 503})


class ClusterError(StackError):
    """A cluster did not reach the state asked for in time (``log`` names a relevant log)."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


# -- TLS for tests ------------------------------------------------------------------------------


def make_test_pki(
    directory: Path, dns_names: Sequence[str] = ("localhost",), ips: Sequence[str] = (LOOPBACK,)
) -> TlsFiles:
    """A throw-away CA and a certificate valid for ``dns_names`` and ``ips`` (one day, P-256).

    The certificate carries both ``serverAuth`` and ``clientAuth``: nodes present it to clients
    and to each other (NATS routes verify it both ways). Keys are written with mode 0600.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Custodia test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "node.pem", directory / "node-key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


# -- processes ------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(argv: list[str], log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL and reap: no shutdown, no flushing."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def _terminate(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; never raises."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill(process)


def _log_tail(log: Path, lines: int = 8) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_for(
    check: Callable[[], bool],
    wait: float,
    what: str,
    log: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + wait
    while True:
        if process is not None and process.poll() is not None:
            tail = _log_tail(log) if log else ""
            raise ClusterError(f"{what}: the process exited ({process.returncode}): {tail}", log)
        if check():
            return
        if time.monotonic() >= deadline:
            raise ClusterError(f"{what}: not within {wait:g} s", log)
        time.sleep(interval)


def _free_ports(count: int, taken: set[int]) -> list[int]:
    ports = []
    for _ in range(count):
        port = free_port(exclude=taken)
        taken.add(port)
        ports.append(port)
    return ports


# -- NATS ---------------------------------------------------------------------------------------


@dataclass
class NatsNode:
    """One member: its ports and files, and its process while it runs."""

    index: int
    name: str
    port: int
    cluster_port: int
    http_port: int
    workdir: Path
    tls: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{LOOPBACK}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "nats.conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "nats.log"

    @property
    def store_dir(self) -> Path:
        return self.workdir / "jetstream"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        """GET on the monitoring port (``/healthz``, ``/jsz``, ``/routez`` ...)."""
        return http_json(LOOPBACK, self.http_port, path, timeout=timeout)

    def as_process(self) -> NatsProcess:
        """The :class:`custody.stack.servers.NatsProcess` view of this node (while it runs)."""
        assert self.process is not None
        return NatsProcess(
            self.process.pid,
            self.port,
            self.http_port,
            self.store_dir,
            self.config_file,
            self.log_file,
        )


class NatsCluster:
    """A NATS JetStream cluster of ``size`` members on loopback, with Custodia's accounts."""

    def __init__(
        self,
        workdir: Path,
        size: int = REPLICAS,
        *,
        tls: TlsFiles | None = None,
        users: dict[str, nats_auth.NatsUser] | None = None,
        sync_always: bool = False,
    ) -> None:
        self.workdir = workdir
        self.tls = tls
        self.users = users if users is not None else nats_auth.generate_users()
        from custody.service.callout import new_issuer_seed

        self.callout_seed = new_issuer_seed()
        self.sync_always = sync_always
        taken: set[int] = set()
        self.nodes = []
        for i in range(size):
            port, cluster_port, http_port = _free_ports(3, taken)
            self.nodes.append(
                NatsNode(
                    i,
                    f"nats-{i + 1}",
                    port,
                    cluster_port,
                    http_port,
                    workdir / f"nats-{i + 1}",
                    tls=tls is not None,
                )
            )

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------------

    def spec(self, node: NatsNode) -> NatsNodeSpec:
        return NatsNodeSpec(
            name=node.name,
            listen=f"{LOOPBACK}:{node.port}",
            cluster_listen=f"{LOOPBACK}:{node.cluster_port}",
            http=f"{LOOPBACK}:{node.http_port}",
            store_dir=str(node.store_dir),
            routes=tuple(f"{LOOPBACK}:{n.cluster_port}" for n in self.nodes),
            tls=self.tls,
            accounts=nats_auth.render_accounts(
                self.users,
                nats_auth.LEDGER_STREAMS,
                nats_auth.EVENT_SUBJECTS,
                issuer_public_key(self.callout_seed),
            ),
            sync_always=self.sync_always,
        )

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every member, comma-separated: the value of ``NATS_URL``."""
        return ",".join(self.urls)

    def save_identities(
        self,
        home: Path,
        names: tuple[str, ...] = ("servicio", "escritor", "administrador", "autenticador"),
    ) -> None:
        """Write the service machine's NATS identities into ``home/secrets`` (one 0600 file
        each, and the auth callout's issuer seed), where ``custodia init``/``servicio`` look
        for them with external servers."""
        from custody.bootstrap import CALLOUT_SEED_FILE
        from custody.stack.secret_files import write_secret

        (home / "secrets").mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in names:
            nats_auth.save_user(nats_auth.user_file(home / "secrets", name), self.users[name])
        if "autenticador" in names:
            write_secret(home / "secrets" / CALLOUT_SEED_FILE, self.callout_seed)

    def env(self, user: str = "administrador") -> dict[str, str]:
        """Environment for :mod:`events.jetstream` as ``user``: all servers, 3 replicas, TLS.
        The default identity may create streams (the harness's own event-store tests)."""
        env = {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": self.url,
            "NATS_REPLICAS": str(len(self.nodes)),
            "NATS_USER": self.users[user].user,
            "NATS_PASSWORD": self.users[user].password,
        }
        if self.tls is not None:
            env["NATS_TLS_CA"] = str(self.tls.ca)
        return env

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, wait: float = 30.0) -> None:
        """Start every member, then wait until JetStream has a meta leader and all are current."""
        for node in self.nodes:
            self._launch(node)
        self.wait_meta_leader(wait)
        for node in self.nodes:
            self._wait_healthy(node, wait)

    def _launch(self, node: NatsNode) -> None:
        if node.running:
            return
        for port in (node.port, node.cluster_port, node.http_port):
            if not port_is_free(port):
                raise PortInUseError(port, node.name)
        node.workdir.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(render_nats_node(self.spec(node)))
        os.chmod(node.config_file, 0o600)  # it holds the users' passwords
        argv = [str(nats_server_binary()), "-c", str(node.config_file)]
        node.process = _spawn(argv, node.log_file, node.workdir, dict(os.environ))

    def _wait_healthy(self, node: NatsNode, wait: float) -> None:
        # The full health check: routes up, JetStream current with the meta leader and every
        # stream and consumer this member replicates (``js-enabled-only`` answers too early: a
        # JetStream request made then can go unanswered).
        def healthy() -> bool:
            try:
                status, _ = node.monitor("/healthz", 1.0)
            except OSError:
                return False
            return status == 200

        _wait_for(healthy, wait, f"{node.name} healthy", node.log_file, node.process)

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` (no shutdown, no flushing) and reap it."""
        _kill(self.nodes[index].process)

    def kill_all(self) -> None:
        """SIGKILL every member at once (then :meth:`start` brings them back)."""
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                if node.process is not None and node.process.poll() is None:
                    node.process.send_signal(signal.SIGKILL)
        for node in self.nodes:
            _kill(node.process)

    def restart(self, index: int, wait: float = 30.0) -> None:
        """Start member ``index`` again on its ports and store (after :meth:`kill`)."""
        node = self.nodes[index]
        _kill(node.process)
        self._launch(node)
        self._wait_healthy(node, wait)

    def stop(self) -> None:
        """End every member that runs (SIGTERM, then SIGKILL). Never raises."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                _terminate(node.process)

    # -- observing --------------------------------------------------------------------------------

    def running(self) -> list[int]:
        return [node.index for node in self.nodes if node.running]

    def _node_named(self, name: str | None) -> int | None:
        for node in self.nodes:
            if node.name == name:
                return node.index
        return None

    def meta_leader(self) -> int | None:
        """The member leading the JetStream meta group, as a running member reports it."""
        for index in self.running():
            with contextlib.suppress(OSError):
                status, jsz = self.nodes[index].monitor("/jsz")
                if status == 200 and isinstance(jsz, dict):
                    leader = self._node_named((jsz.get("meta_cluster") or {}).get("leader"))
                    if leader is not None and self.nodes[leader].running:
                        return leader
        return None

    def wait_meta_leader(self, wait: float = 30.0) -> int:
        found: list[int] = []

        def check() -> bool:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    tail = _log_tail(node.log_file)
                    raise ClusterError(f"{node.name} exited: {tail}", node.log_file)
            leader = self.meta_leader()
            if leader is None:
                return False
            found.append(leader)
            return True

        _wait_for(check, wait, "a JetStream meta leader", self.nodes[0].log_file, interval=0.1)
        return found[-1]

    def stream_info(self, index: int, stream: str) -> dict[str, Any] | None:
        """What member ``index`` knows of ``stream`` in the Custodia account (``/jsz``)."""
        status, jsz = self.nodes[index].monitor(f"/jsz?acc={nats_auth.ACCOUNT}&streams=true")
        if status != 200 or not isinstance(jsz, dict):
            return None
        for account in jsz.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    return dict(detail)
        return None

    def stream_leader(self, stream: str) -> int | None:
        """The running member that leads ``stream``'s raft group, if one does now."""
        for index in self.running():
            with contextlib.suppress(OSError):
                info = self.stream_info(index, stream)
                if info is None:
                    continue
                leader = self._node_named((info.get("cluster") or {}).get("leader"))
                if leader is not None and self.nodes[leader].running:
                    return leader
        return None

    def wait_stream_leader(self, stream: str, wait: float = 30.0, other_than: int = -1) -> int:
        """Wait until ``stream`` has a running leader (not ``other_than``); return it."""
        found: list[int] = []

        def check() -> bool:
            leader = self.stream_leader(stream)
            if leader is None or leader == other_than:
                return False
            found.append(leader)
            return True

        _wait_for(check, wait, f"a leader for {stream}", interval=0.05)
        return found[-1]

    def wait_replicas_current(self, stream: str, wait: float = 30.0) -> dict[str, Any]:
        """Wait until every member holds ``stream`` up to the same last sequence and the leader
        sees no replica lagging; return the stream state (messages, first/last sequence)."""
        states: list[dict[str, Any]] = []

        def check() -> bool:
            if len(self.running()) != len(self.nodes):
                return False
            try:
                infos = [self.stream_info(node.index, stream) for node in self.nodes]
            except OSError:
                return False
            if any(info is None for info in infos):
                return False
            leader = self.stream_leader(stream)
            if leader is None:
                return False
            info = infos[leader]
            assert info is not None
            # Only the leader knows how far the others are; followers report each other as not
            # current.
            replicas = (info.get("cluster") or {}).get("replicas") or []
            if len(replicas) != len(self.nodes) - 1:
                return False
            if any(not r.get("current") or r.get("lag") for r in replicas):
                return False
            state = dict(info.get("state") or {})
            if any(
                (i or {}).get("state", {}).get("last_seq") != state.get("last_seq") for i in infos
            ):
                return False
            states.append(state)
            return True

        _wait_for(check, wait, f"all replicas of {stream} current", interval=0.1)
        return states[-1]


# -- OpenBao ------------------------------------------------------------------------------------


@dataclass
class BaoNode:
    """One raft member: ports and files, and its process while it runs."""

    index: int
    node_id: str
    port: int
    cluster_port: int
    workdir: Path
    scheme: str = "https"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "openbao.hcl"

    @property
    def log_file(self) -> Path:
        return self.workdir / "openbao.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "raft"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class BaoKeys:
    """The unseal key shares and the initial root token of a test cluster."""

    unseal_keys: tuple[str, ...]
    root_token: str

    def __repr__(self) -> str:  # never print the secrets
        return "BaoKeys(<redactado>)"


class BaoCluster:
    """An OpenBao raft cluster of ``size`` members on loopback (TLS when ``tls`` is given)."""

    def __init__(
        self,
        workdir: Path,
        size: int = REPLICAS,
        *,
        tls: TlsFiles | None = None,
        key_shares: int = 1,
        key_threshold: int = 1,
    ) -> None:
        self.workdir = workdir
        self.tls = tls
        self.key_shares = key_shares
        self.key_threshold = key_threshold
        self.keys: BaoKeys | None = None
        self._context = ssl.create_default_context(cafile=str(tls.ca)) if tls else None
        taken: set[int] = set()
        self.nodes = []
        for i in range(size):
            port, cluster_port = _free_ports(2, taken)
            self.nodes.append(
                BaoNode(
                    i,
                    f"bao-{i + 1}",
                    port,
                    cluster_port,
                    workdir / f"bao-{i + 1}",
                    "https" if tls else "http",
                )
            )

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def addrs(self) -> list[str]:
        return [node.addr for node in self.nodes]

    @property
    def audit_log(self) -> Path:
        """The file audit device's log, shared by the members (only the active one writes)."""
        return self.workdir / "audit.log"

    @property
    def root_token(self) -> str:
        if self.keys is None:
            raise ClusterError("the OpenBao cluster is not initialised")
        return self.keys.root_token

    @property
    def ca_file(self) -> str | None:
        """The CA bundle to verify the members with (hvac's ``verify``), if TLS is on."""
        return str(self.tls.ca) if self.tls else None

    def spec(self, node: BaoNode) -> BaoNodeSpec:
        return BaoNodeSpec(
            node_id=node.node_id,
            listen=f"{LOOPBACK}:{node.port}",
            cluster_listen=f"{LOOPBACK}:{node.cluster_port}",
            api_addr=node.addr,
            cluster_addr=f"https://{LOOPBACK}:{node.cluster_port}",
            data_dir=str(node.data_dir),
            audit_log=str(self.audit_log),
            peers=tuple(n.addr for n in self.nodes),
            tls=self.tls,
        )

    # -- HTTP ------------------------------------------------------------------------------------

    def call(
        self,
        index: int,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        timeout: float = 5.0,
    ) -> tuple[int, Any]:
        """One API request to member ``index`` (raises ``OSError`` if it does not answer)."""
        node = self.nodes[index]
        return http_json(
            LOOPBACK,
            node.port,
            path,
            method=method,
            payload=payload,
            token=token,
            context=self._context,
            timeout=timeout,
        )

    def health(self, index: int) -> int:
        """``/v1/sys/health`` status (200 active, 429 standby, 501, 503), 0 if no answer."""
        if not self.nodes[index].running:
            return 0
        try:
            status, _ = self.call(index, "GET", "/v1/sys/health", timeout=1.0)
        except (OSError, ssl.SSLError):
            return 0
        return status

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, wait: float = 60.0) -> None:
        """Start every member that is not running and unseal all; wait for an active member.

        The first start initialises member 1, unseals it, then unseals the others, which join
        through ``retry_join``, and waits for them to become raft voters. Later starts (after
        :meth:`kill_all`, say) unseal every member at once: none can be active before a quorum
        is unsealed.
        """
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            self._wait_answering(node, wait)
        first = self.nodes[0]
        status, seal = self.call(0, "GET", "/v1/sys/seal-status")
        if status != 200 or not isinstance(seal, dict):
            raise ClusterError(f"seal-status answered {status}", first.log_file)
        if seal.get("initialized"):
            self.unseal(*range(len(self.nodes)), wait=wait)
            self.wait_active(wait)
            self.wait_unsealed_standbys(wait)
            return
        status, body = self.call(
            0,
            "PUT",
            "/v1/sys/init",
            {"secret_shares": self.key_shares, "secret_threshold": self.key_threshold},
            timeout=60,
        )
        if status != 200 or not isinstance(body, dict):
            raise ClusterError(f"init answered {status}", first.log_file)
        self.keys = BaoKeys(tuple(body["keys_base64"]), body["root_token"])
        self.unseal(0, wait=wait)
        self.wait_active(wait)
        # Autopilot promotes a new member to voter once it has been healthy this long (10 s by
        # default); a loopback test cluster need not wait that long.
        self.call(
            0,
            "POST",
            "/v1/sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s"},
            token=self.root_token,
        )
        self.unseal(*range(1, len(self.nodes)), wait=wait)
        self.wait_voters(len(self.nodes), wait)

    def _launch(self, node: BaoNode) -> None:
        if node.running:
            return
        for port in (node.port, node.cluster_port):
            if not port_is_free(port):
                raise PortInUseError(port, node.node_id)
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(render_bao_node(self.spec(node)))
        env = {**os.environ, "HOME": str(node.workdir)}
        for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
            env.pop(name, None)
        argv = [str(bao_binary()), "server", f"-config={node.config_file}"]
        node.process = _spawn(argv, node.log_file, node.workdir, env)

    def _wait_answering(self, node: BaoNode, wait: float) -> None:
        _wait_for(
            lambda: self.health(node.index) in _BAO_ANSWERS,
            wait,
            f"{node.node_id} answering",
            node.log_file,
            node.process,
        )

    def unseal(self, *indexes: int, wait: float = 60.0) -> None:
        """Give members the key shares until they are unsealed (a new member joins then)."""
        keys = self.keys
        if keys is None:
            raise ClusterError("the OpenBao cluster is not initialised")
        if not indexes:
            return
        pending = set(indexes)

        def is_unsealed(index: int) -> bool:
            try:
                status, seal = self.call(index, "GET", "/v1/sys/seal-status")
            except (OSError, ssl.SSLError):
                return False
            if status != 200 or not isinstance(seal, dict):
                return False
            if not seal.get("sealed", True):
                return True
            # A member that has not joined yet reports itself uninitialised: its retry_join
            # loop fetches a challenge from the leader, which the unseal keys answer.
            for key in keys.unseal_keys[: self.key_threshold]:
                with contextlib.suppress(OSError, ssl.SSLError):
                    self.call(index, "PUT", "/v1/sys/unseal", {"key": key}, timeout=30)
            return False

        def all_unsealed() -> bool:
            for index in sorted(pending):
                node = self.nodes[index]
                if node.process is None or node.process.poll() is not None:
                    raise ClusterError(f"{node.node_id} exited: {_log_tail(node.log_file)}")
                if is_unsealed(index):
                    pending.discard(index)
            return not pending

        names = ", ".join(self.nodes[i].node_id for i in indexes)
        _wait_for(
            all_unsealed, wait, f"{names} unsealed", self.nodes[indexes[0]].log_file, None, 0.2
        )

    def active(self) -> int | None:
        """The member that answers as active now, if any."""
        for node in self.nodes:
            if self.health(node.index) == BAO_ACTIVE:
                return node.index
        return None

    def wait_active(self, wait: float = 60.0, other_than: int = -1) -> int:
        """Wait until a member (not ``other_than``) is active; return it."""
        found: list[int] = []

        def check() -> bool:
            index = self.active()
            if index is None or index == other_than:
                return False
            found.append(index)
            return True

        _wait_for(check, wait, "an active OpenBao member", interval=0.05)
        return found[-1]

    def raft_servers(self) -> list[dict[str, Any]]:
        """The raft configuration (``sys/storage/raft/configuration``) as the active sees it."""
        index = self.active()
        if index is None:
            return []
        status, body = self.call(
            index, "GET", "/v1/sys/storage/raft/configuration", token=self.root_token
        )
        if status != 200 or not isinstance(body, dict):
            return []
        servers = ((body.get("data") or {}).get("config") or {}).get("servers") or []
        return [dict(s) for s in servers]

    def wait_voters(self, count: int, wait: float = 60.0) -> None:
        """Wait until the raft configuration has ``count`` voters."""

        def check() -> bool:
            try:
                servers = self.raft_servers()
            except (OSError, ssl.SSLError):
                return False
            return sum(1 for s in servers if s.get("voter")) >= count

        _wait_for(check, wait, f"{count} raft voters", self.nodes[0].log_file, interval=0.2)

    def wait_unsealed_standbys(self, wait: float = 60.0) -> None:
        """Wait until every member answers as active or unsealed standby."""
        _wait_for(
            lambda: all(self.health(n.index) in (BAO_ACTIVE, BAO_STANDBY) for n in self.nodes),
            wait,
            "every OpenBao member unsealed",
            interval=0.1,
        )

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` and reap it."""
        _kill(self.nodes[index].process)

    def kill_all(self) -> None:
        """SIGKILL every member at once (then :meth:`start` brings them back)."""
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                if node.process is not None and node.process.poll() is None:
                    node.process.send_signal(signal.SIGKILL)
        for node in self.nodes:
            _kill(node.process)

    def restart(self, index: int, wait: float = 60.0) -> None:
        """Start member ``index`` again on its ports and data, and unseal it."""
        node = self.nodes[index]
        _kill(node.process)
        self._launch(node)
        self._wait_answering(node, wait)
        self.unseal(index, wait=wait)

    def stop(self) -> None:
        """End every member that runs (SIGTERM, then SIGKILL). Never raises."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                _terminate(node.process)


class Cluster:
    """Both clusters, sharing one test PKI: ``with Cluster(workdir) as c: ...``."""

    def __init__(self, workdir: Path, size: int = REPLICAS, *, tls: bool = True) -> None:
        self.workdir = workdir
        self.pki = make_test_pki(workdir / "pki") if tls else None
        self.nats = NatsCluster(workdir / "nats", size, tls=self.pki)
        self.bao = BaoCluster(workdir / "openbao", size, tls=self.pki)

    def start(self) -> None:
        self.nats.start()
        self.bao.start()

    def stop(self) -> None:
        """Stop both clusters; never raises."""
        self.bao.stop()
        self.nats.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_cluster(workdir: Path, *, tls: bool = True) -> Iterator[Cluster]:
    """Start both clusters under ``workdir``; stop them on exit, even on failure."""
    cluster = Cluster(workdir, tls=tls)
    with cluster:
        yield cluster


def _main(argv: list[str]) -> int:
    usage = "usage: python -m tests.support.cluster up DIR       run both clusters until Ctrl-C"
    if len(argv) != 2 or argv[0] != "up":
        print(usage, file=sys.stderr)
        return 2
    with running_cluster(Path(argv[1])) as cluster:
        print(f"NATS_URL={cluster.nats.url}")
        for key, value in cluster.nats.env().items():
            if key != "NATS_URL":
                print(f"{key}={value}")
        print(f"BAO_ADDR={','.join(cluster.bao.addrs)}")
        print(f"BAO_CACERT={cluster.bao.ca_file}")
        print(f"BAO_TOKEN={cluster.bao.root_token}")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))


__all__ = [
    "BAO_ACTIVE",
    "BAO_SEALED",
    "BAO_STANDBY",
    "BAO_UNINITIALIZED",
    "BaoCluster",
    "BaoKeys",
    "BaoNode",
    "Cluster",
    "ClusterError",
    "NatsCluster",
    "NatsNode",
    "TlsFiles",
    "make_test_pki",
    "running_cluster",
]
