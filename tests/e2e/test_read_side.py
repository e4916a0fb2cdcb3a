"""The service's read side (report projections, ledger follower) runs in a child process
(``custodia servicio-lectura``): it keeps the view up to date, is restarted when it dies, and
goes away by itself when its service is killed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from custody.app.custodia import CustodiaApplication
from custody.runner import REPORTS_DATABASE
from custody.stack.readside import CHILD_COMMAND, NICENESS, ReportPosition

from .conftest import (
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def _read_sides(parent: int) -> list[int]:
    """The read-side children of process ``parent``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and CHILD_COMMAND.encode() in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _eventually(probe: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_read_side_runs_apart_is_restarted_and_follows_its_service(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert init_home(home, "ana", SERVICE_PASSWORD.format("ana")).returncode == 0
    service = start_service(home)
    ledger = None
    try:
        world = ServiceWorld(home, service)
        world.login("ana")
        first = _eventually(lambda: _read_sides(service.pid), 30, "a read side")[0]
        # background work: below the service's priority (commands first on a busy machine)
        _eventually(
            lambda: (
                os.getpriority(os.PRIO_PROCESS, first)
                == os.getpriority(os.PRIO_PROCESS, service.pid) + NICENESS
                or None
            ),
            10,
            "the read side's lower priority",
        )
        ledger = CustodiaApplication(env=world.endpoints("escritor").nats_env())
        view = ReportPosition(
            world.endpoints("escritor").nats_env(), home / REPORTS_DATABASE, ledger.recorder
        )
        account = {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"}
        world.call("ana", "cuentas.alta", account)
        view.wait(view.ledger_position(), timeout=20)  # the child projects what was written

        os.kill(first, signal.SIGKILL)  # the read side dies: the service starts another
        second = _eventually(
            lambda: [p for p in _read_sides(service.pid) if p != first], 20, "a new read side"
        )[0]
        world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})  # commands never stopped
        world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
        view.wait(view.ledger_position(), timeout=30)  # and the new one caught up
        assert view.position() == view.ledger_position()
        assert "lectura_terminada" in world.log_text()
        view.close()

        service.kill()  # the service is killed: its read side goes away by itself
        service.wait(10)
        _eventually(lambda: not _alive(second), 10, "the read side to stop")
    finally:
        if ledger is not None:
            ledger.close()
        if service.poll() is None:
            stop_service(service)
        run_custodia("detener", home=home)
