"""``custodia reporte``: Spanish help with examples, light imports, reports from the local
projection database, clear Spanish errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli import reporte_cmds
from cli.app import app
from cli.main import run
from tests.unit.projections.scenario import build

COMMANDS = ("cumplimiento", "rotaciones", "exposicion", "cambios", "incidentes", "lecturas")


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    """The sub-app on the real root app (once; the lead wires it in cli/app.py)."""
    if not any(group.name == "reporte" for group in app.registered_groups):
        reporte_cmds.register(app)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CUSTODIA_HOME holding the scenario's projection database."""
    build(tmp_path)
    monkeypatch.setenv("CUSTODIA_HOME", str(tmp_path))
    monkeypatch.delenv("CUSTODIA_POLITICA", raising=False)
    return tmp_path


def test_help_lists_the_reports_with_spanish_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """Every report command has Spanish help with an example."""
    assert run(["reporte", "--help"]) == 0
    listing = capsys.readouterr().out
    for command in COMMANDS:
        assert command in listing
        assert run(["reporte", command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "Ejemplo:" in text
        assert f"custodia reporte {command}" in text
        assert "--formato" in text


def test_help_imports_nothing_heavy() -> None:
    """``custodia reporte --help`` keeps nats, eventsourcing, hvac, cryptography, structlog out."""
    code = (
        "import sys, io, contextlib\n"
        "from cli.app import app\n"
        "from cli import reporte_cmds\n"
        "reporte_cmds.register(app) if not any(g.name == 'reporte' for g in app.registered_groups)"
        " else None\n"
        "from cli.main import run\n"
        "for args in (['--help'], ['reporte', '--help'], ['reporte', 'cumplimiento', '-h']):\n"
        "    sys.argv = ['custodia', *args]  # as the console script sees them\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        run(args)\n"
        "heavy = ('hvac', 'nats', 'eventsourcing', 'cryptography', 'structlog', 'projections')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_bad_district_is_a_spanish_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An impossible district exits 2 with a Spanish message."""
    assert run(["reporte", "rotaciones", "--distrito", "40"]) == 2
    assert "no es una Dirección Distrital" in capsys.readouterr().err


def test_errors_command_lists_nothing_on_a_clean_view(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reporte errores --json`` is an empty list when every event was projected."""
    assert run(["reporte", "errores", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
