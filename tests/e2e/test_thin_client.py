"""A data command is a thin client (issue 17): a real round trip to ``custodia servicio``
imports neither the OpenBao client (hvac, requests) nor the event-sourcing library."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import ServiceWorld

pytestmark = pytest.mark.e2e

# structlog and pydantic for their cost (tests/unit/cli/test_thin_client.py). typer coerces
# through pydantic every option value that is not a bool, an absent ``--distrito`` (None)
# included: a command without such an option keeps it out (cli.spanish), the others do not.
HEAVY = ("hvac", "requests", "eventsourcing", "structlog", "pydantic")

# The CLI entry run in a fresh interpreter; the heavy modules it loaded, on a last line.
PROBE = (
    "import json, sys\n"
    "from cli.main import run\n"
    "code = run(sys.argv[1:])\n"
    f"print('\\nCARGADOS ' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    "sys.exit(code)\n"
)


def _run(world: ServiceWorld, user: str, *args: str) -> tuple[object, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(world.home)
    env["CUSTODIA_SESION"] = str(world.session_file(user))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reply, _, loaded = result.stdout.rpartition("\nCARGADOS ")
    heavy: list[str] = json.loads(loaded)
    return json.loads(reply), heavy


def test_sesion_quien_round_trip_imports_no_adapter(service_world: ServiceWorld) -> None:
    """``custodia sesion quien --json`` answers from the service (ana, coadministradora) and
    the process never imported hvac, requests, eventsourcing, structlog or pydantic."""
    reply, heavy = _run(service_world, "ana", "sesion", "quien", "--json")
    assert isinstance(reply, dict)
    assert reply["usuario"] == "ana"
    assert "coadministrador" in reply["roles"]
    assert heavy == []


def test_cuentas_lista_round_trip_imports_no_adapter(service_world: ServiceWorld) -> None:
    """``custodia cuentas lista --json`` lists DD05-x from the service, and the process never
    imported hvac, requests, eventsourcing or structlog (pydantic: typer's, for the absent
    ``--distrito``)."""
    reply, heavy = _run(service_world, "ana", "cuentas", "lista", "--json")
    assert isinstance(reply, list)
    assert "DD05-x" in {row["cuenta"] for row in reply}
    assert heavy == ["pydantic"]
