"""The README's first command, ``bash scripts/demo.sh`` (``custodia demo``), as run by a user."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.stack.record import pid_alive, pid_cmdline

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _demo_processes(under: Path) -> list[str]:
    """Live processes of a demo whose home is under ``under`` (other demos may run beside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            argv = " ".join(pid_cmdline(int(entry.name)))
            if "custodia-demo-" in argv and str(under) in argv:
                found.append(argv)
    return found


@dataclass
class WebDemo:
    """``scripts/demo.sh --web``, started when the module starts and running beside the other
    demo (the two stories take most of a minute each; they share nothing but the machine)."""

    process: subprocess.Popen[str]
    tmp: Path


@pytest.fixture(scope="module", autouse=True)
def web_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDemo]:
    tmp = tmp_path_factory.mktemp("demo-web")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["TMPDIR"] = str(tmp)
    demo = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield WebDemo(demo, tmp)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)


def test_demo_walks_the_story_verifies_the_ledger_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    """``scripts/demo.sh --json`` exits 0; the story's key outcomes are in its summary (the
    former administrator's refusal is OpenBao's 403 to her own token); the ledger verified; no
    process it started is alive and its temporary home is gone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["bitacora_verificada"] is True
    steps = {step["paso"]: step for step in summary["pasos"]}
    assert all(step["ok"] for step in summary["pasos"])
    names = " | ".join(steps)
    for fragment in (
        "designa a bety",
        "Vacaciones",
        "rechazada por OpenBao",
        "rota y confirma",
        "código 2FA",
        "aprobada y aplicada",
        "notificación a la Secretaría Ejecutiva",
        "Verificar la bitácora",
        "incumple",
    ):
        assert fragment in names, fragment
    # The refusal shown is OpenBao's own answer to bety's token, not Custodia's domain check.
    refused = next(s for s in summary["pasos"] if "rechazada por OpenBao" in s["paso"])
    assert refused["detalle"].startswith("OpenBao respondió 403 (permiso denegado)")
    assert "/data/cuentas/DD05/x" in refused["detalle"]
    verified = next(s for s in summary["pasos"] if "Verificar la bitácora" in s["paso"])
    assert "puntos de control" in verified["detalle"]
    assert _demo_processes(tmp_path) == []
    assert not any(p.name.startswith("custodia-demo-") for p in tmp_path.iterdir())


def test_demo_web_keeps_the_web_view_up_until_ctrl_c(web_demo: WebDemo) -> None:
    """``scripts/demo.sh --web``: after the story, the web view's address and the demo's logins
    are printed; the Secretaría Ejecutiva logs in there and sees the summary; Ctrl-C ends it all
    (exit 0, nothing left running, the temporary home gone)."""
    import re

    import httpx

    demo, tmp_path = web_demo.process, web_demo.tmp
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        for line in demo.stdout:
            lines.append(line)
            if "contraseñas de esta demostración" in line:
                break
        text = "".join(lines)
        address = re.search(r"Vista web: (http://127\.0\.0\.1:\d+)/ingresar", text)
        login = re.search(r"Secretaría Ejecutiva: sofia / (\S+)", text)
        assert address, text[-2000:]
        assert login, text[-2000:]
        with httpx.Client(base_url=address.group(1), timeout=60) as client:
            form = client.get("/ingresar")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            answer = client.post(
                "/ingresar",
                data={"usuario": "sofia", "contrasena": login.group(1), "csrf": csrf.group(1)},
                follow_redirects=True,
            )
            assert answer.status_code == 200
            assert "Incidentes abiertos" in answer.text
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(120)
        assert demo.returncode == 0, demo.stdout.read()[-2000:]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)
    assert _demo_processes(tmp_path) == []
    assert not any(p.name.startswith("custodia-demo-") for p in tmp_path.iterdir())
