"""What a person's ``custodia sesion quien`` loads (issue 17, the thin client): its one record
is printed without rich, and no reply key is made for a reply that carries nothing sealed, so
neither rich nor cryptography is imported for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import ServiceWorld

pytestmark = pytest.mark.e2e

NOT_NEEDED = ("rich", "cryptography", "hvac", "eventsourcing", "custody.app", "events.domain")

PROBE = (
    "import json, sys\n"
    "from cli.main import run\n"
    "code = run(sys.argv[1:])\n"
    f"print('\\nCARGADOS ' + json.dumps([m for m in {NOT_NEEDED!r} if m in sys.modules]))\n"
    "sys.exit(code)\n"
)


def test_sesion_quien_prints_its_record_without_rich_or_cryptography(
    service_world: ServiceWorld,
) -> None:
    """``custodia sesion quien`` (for people, not ``--json``) answers from the service with
    ana's name and role on plain lines, and the process imported neither rich, cryptography,
    hvac, eventsourcing, the application nor the domain."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(service_world.home)
    env["CUSTODIA_SESION"] = str(service_world.session_file("ana"))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "sesion", "quien"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown, _, loaded = result.stdout.rpartition("\nCARGADOS ")
    assert "  usuario: ana" in shown.splitlines()
    assert "coadministrador" in shown
    assert json.loads(loaded) == []
