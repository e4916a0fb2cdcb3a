"""The embedded stack as a user drives it: start, reuse, stop, recover, refuse bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from custody.stack.record import pid_alive, pid_cmdline

from .conftest import CUSTODIA, Run, run_custodia

pytestmark = pytest.mark.e2e


def _stack(home: Path) -> dict[str, dict[str, int]]:
    data: dict[str, dict[str, int]] = json.loads((home / "run" / "stack.json").read_text())
    return data


def _servers_of(home: Path) -> list[int]:
    """Pids of every live process whose command line names a config file under ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            argv = " ".join(pid_cmdline(int(entry.name)))
            if str(home) in argv and ("nats-server" in argv or "bao" in argv):
                found.append(int(entry.name))
    return found


def test_start_is_idempotent_stop_is_clean_and_stale_pids_recover(
    tmp_path: Path, custodia: Run
) -> None:
    """Starting twice reuses the same pair of servers; SIGKILLed servers are restarted on the
    same ports; ``detener`` leaves nothing running; OpenBao's keys are kept 0600."""
    home = tmp_path / "home"
    first = custodia("arrancar", "--json", home=home)
    assert first.returncode == 0, first.stderr
    stack = _stack(home)
    assert len(_servers_of(home)) == 2
    assert (home / "secrets" / "openbao-init.json").stat().st_mode & 0o777 == 0o600
    assert (home / "secrets").stat().st_mode & 0o777 == 0o700

    again = custodia("arrancar", "--json", home=home)
    assert again.returncode == 0, again.stderr
    assert _stack(home) == stack
    assert len(_servers_of(home)) == 2

    status = custodia("estado", "--json", home=home)
    data = json.loads(status.stdout)
    assert data["nats"]["salud"] == "ok"
    assert data["vault"]["salud"] == "ok"
    assert data["nats"]["embebido"] is True
    assert data["servicio"]["activo"] is False

    # A crash: both servers die without cleaning up; the pid file is now stale.
    for name in ("nats", "vault"):
        os.kill(stack[name]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    recovered = custodia("arrancar", "--json", home=home)
    assert recovered.returncode == 0, recovered.stderr
    new = _stack(home)
    assert new["nats"]["pid"] != stack["nats"]["pid"]
    assert new["nats"]["port"] == stack["nats"]["port"]
    assert new["vault"]["port"] == stack["vault"]["port"]
    assert json.loads(custodia("estado", "--json", home=home).stdout)["vault"]["salud"] == "ok"

    stopped = custodia("detener", home=home)
    assert stopped.returncode == 0
    assert "detenidos" in stopped.stdout
    assert _servers_of(home) == []
    assert json.loads(custodia("estado", "--json", home=home).stdout)["nats"]["salud"] == "detenido"


def test_supervisor_killed_mid_start_recovers(tmp_path: Path) -> None:
    """A supervisor SIGKILLed while starting leaves no lock behind: the next start succeeds
    and there is exactly one pair of servers."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(home)
    proc = subprocess.Popen(
        [CUSTODIA, "arrancar"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Kill it while it is starting OpenBao (after NATS is up).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (home / "openbao" / "openbao.hcl").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        result = run_custodia("arrancar", "--json", home=home)
        assert result.returncode == 0, result.stderr
        assert len(_servers_of(home)) == 2
        assert (
            json.loads(run_custodia("estado", "--json", home=home).stdout)["vault"]["salud"] == "ok"
        )
    finally:
        run_custodia("detener", home=home)
        for pid in _servers_of(home):  # orphans from the killed start, if any
            os.kill(pid, signal.SIGKILL)
    assert _servers_of(home) == []


def test_unwritable_home_is_refused_in_spanish(tmp_path: Path, custodia: Run) -> None:
    """A CUSTODIA_HOME that cannot be created gives a Spanish error and exit code 7."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = custodia("arrancar", home=blocker / "home")
    assert result.returncode == 7
    assert "No se puede escribir en el directorio de datos" in result.stderr
    assert "Traceback" not in result.stderr


def test_taken_port_is_refused_and_nothing_is_left_running(tmp_path: Path, custodia: Run) -> None:
    """A configured port already in use gives a Spanish error; no half-started server stays."""
    home = tmp_path / "home"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = custodia("arrancar", home=home, env={"CUSTODIA_VAULT_PORT": str(port)})
    assert result.returncode == 7
    assert f"El puerto {port} para OpenBao ya está ocupado" in result.stderr
    assert "Traceback" not in result.stderr
    assert _servers_of(home) == []


def test_corrupt_unseal_key_is_refused_and_nothing_is_left_running(
    tmp_path: Path, custodia: Run
) -> None:
    """A damaged unseal-key file gives a Spanish error; both servers are stopped again."""
    home = tmp_path / "home"
    assert custodia("arrancar", home=home).returncode == 0
    assert custodia("detener", home=home).returncode == 0
    key_file = home / "secrets" / "openbao-init.json"
    key_file.write_text("{not json")
    result = custodia("arrancar", home=home)
    assert result.returncode == 7
    assert "llave de apertura de OpenBao" in result.stderr
    assert "Traceback" not in result.stderr
    assert _servers_of(home) == []
    key_file.chmod(0o644)
    loose = custodia("arrancar", home=home)
    assert loose.returncode == 7
    assert "permisos" in loose.stderr
    assert _servers_of(home) == []


def test_init_twice_is_idempotent_and_detener_stops_everything(tmp_path: Path) -> None:
    """``custodia init`` into an empty home starts both servers and sets everything up; a second
    ``init`` changes nothing (same servers, ledger not recreated); ``detener`` stops them."""
    home = tmp_path / "home"
    first = run_custodia(
        "init",
        "--usuario",
        "ana",
        "--password-stdin",
        "--json",
        home=home,
        stdin="ana-clave-segura-1\n",
        timeout=180,
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["bitacora_creada"] is True
    pids = sorted(_servers_of(home))
    assert len(pids) == 2
    token_file = home / "secrets" / "servicio-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    second = run_custodia(
        "init",
        "--usuario",
        "ana",
        "--password-stdin",
        "--json",
        home=home,
        stdin="ana-clave-segura-1\n",
        timeout=180,
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["bitacora_creada"] is False
    assert sorted(_servers_of(home)) == pids
    assert run_custodia("detener", home=home).returncode == 0
    assert _servers_of(home) == []
