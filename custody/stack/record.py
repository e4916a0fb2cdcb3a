"""What a command line reads of the embedded stack: ``run/stack.json`` and whether the servers
it records are alive and this home's (custody.stack.embedded starts and stops them).

Standard library only, and only what reading needs: a command such as ``custodia sesion quien``
finds the addresses of its home's NATS and OpenBao here without importing the supervisor (its
HTTP, TLS and subprocess machinery).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from events.errors import StackError

LOOPBACK = "127.0.0.1"


class StackNotRunningError(StackError):
    """The embedded servers of this home are not running."""

    def __init__(self, home: Path) -> None:
        super().__init__(f"no embedded servers running for {home}")
        self.home = home


@dataclass(frozen=True)
class ServerRecord:
    """What ``stack.json`` records of one server."""

    pid: int
    port: int
    aux_port: int  # NATS: monitoring port; OpenBao: cluster port

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class StackInfo:
    """Addresses of the running embedded servers."""

    home: Path
    nats: ServerRecord
    vault: ServerRecord

    @property
    def nats_url(self) -> str:
        return f"nats://{LOOPBACK}:{self.nats.port}"

    @property
    def vault_addr(self) -> str:
        return f"http://{LOOPBACK}:{self.vault.port}"


def stack_file(home: Path) -> Path:
    return home / "run" / "stack.json"


def read_stack(home: Path) -> dict[str, Any]:
    """``run/stack.json`` of ``home`` (empty when missing or unreadable)."""
    try:
        data = json.loads(stack_file(home).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def server_record(entry: dict[str, Any]) -> ServerRecord:
    return ServerRecord(int(entry["pid"]), int(entry["port"]), int(entry["aux_port"]))


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live (non-zombie) process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Field 3, after the parenthesised command name, is the state; Z is a zombie.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_cmdline(pid: int) -> list[str]:
    """The argument vector of a live process (empty if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(home: Path, pid: int, name: str) -> bool:
    """Whether ``pid`` is alive and is ``home``'s ``nats`` or ``vault`` server (by the
    configuration file on its command line), or its service (``custodia``)."""
    if not pid_alive(pid):
        return False
    argv = " ".join(pid_cmdline(pid))
    if name == "nats":
        return str(home / "nats" / "nats.conf") in argv
    if name == "vault":
        return str(home / "openbao" / "openbao.hcl") in argv
    return "custodia" in argv  # the service: pids are recorded only by the service itself


def running(home: Path) -> StackInfo | None:
    """The recorded servers if both are alive and ``home``'s (no health check), else ``None``."""
    record = read_stack(home)
    nats, vault = record.get("nats"), record.get("vault")
    if not nats or not vault:
        return None
    if not (is_ours(home, int(nats["pid"]), "nats") and is_ours(home, int(vault["pid"]), "vault")):
        return None
    return StackInfo(home, server_record(nats), server_record(vault))
