"""The README's first command, ``bash scripts/demo.sh`` (``custodia demo``), as run by a user."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from custody.servers import pid_alive, pid_cmdline

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _demo_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            argv = " ".join(pid_cmdline(int(entry.name)))
            if "custodia-demo-" in argv:
                found.append(argv)
    return found


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
    assert _demo_processes() == []
    assert not any(p.name.startswith("custodia-demo-") for p in tmp_path.iterdir())
