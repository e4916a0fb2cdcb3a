"""The client is thin (issue 17): a command imports only what it needs.

``--help`` and reading the session file load neither the OpenBao client (hvac, requests) nor the
event-sourcing library; a command line that names an area or a command gets the help and the
behaviour of the whole tree while only that branch is built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer.main

import cli.app
from cli.main import run

# Neither --help nor a data command needs these. structlog and pydantic are on the list for
# their cost, each more than a data command's whole round trip: structlog imports rich's
# tracebacks and pygments; typer coerces through pydantic any value that is not a bool.
HEAVY = ("hvac", "requests", "eventsourcing", "structlog", "pydantic")


def _loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a fresh interpreter; the HEAVY modules it left in ``sys.modules``."""
    probe = (
        "import contextlib, io, json, sys\n"
        f"{code}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "args", [["--help"], ["sesion", "quien", "--help"], ["cuentas", "--help"], ["revelar", "-h"]]
)
def test_help_imports_no_adapter_library(args: list[str]) -> None:
    """``custodia --help`` and the help of an area or a command, run through the CLI entry,
    import none of hvac, requests, eventsourcing, structlog, pydantic."""
    code = (
        "from cli.main import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert run({args!r}) == 0\n"
    )
    assert _loaded_after(code) == []


def test_reading_the_session_imports_no_openbao_client(tmp_path: Path) -> None:
    """A data command's first step, reading the session file, does not import hvac or
    requests (before: custody.vault.session imported the OpenBao adapter at module level)."""
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    session = {"usuario": "ana", "token": "t", "vault_addr": "http://x", "expira": expires}
    (tmp_path / "sesion.json").write_text(json.dumps(session))
    code = (
        "from cli import remote\n"
        "assert remote.session().username == 'ana'\n"
        "assert remote.settings().home is not None\n"
    )
    env = {"CUSTODIA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert _loaded_after(code, env) == []


def _paths() -> list[list[str]]:
    """Every area and command name, and every command of every area."""
    whole = typer.main.get_command(cli.app.app)
    paths: list[list[str]] = []
    for name, command in sorted(getattr(whole, "commands", {}).items()):
        paths.append([name])
        paths.extend([name, sub] for sub in sorted(getattr(command, "commands", {})))
    return paths


def _help(command: object, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main = command.main  # type: ignore[attr-defined]
    main(args=[*args, "--help"], prog_name="custodia", standalone_mode=False)
    return capsys.readouterr().out


def test_one_branch_helps_as_the_whole_tree(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every area and command, the tree built for one branch prints the same help as the
    whole tree; the top-level help's tree (names and summaries only) prints the same top-level
    help; unknown names and options get the whole tree."""
    monkeypatch.setenv("COLUMNS", "100")
    whole = typer.main.get_command(cli.app.app)
    paths = _paths()
    assert len(paths) > 40
    for path in paths:
        branch = cli.app.command_for(path)
        assert list(getattr(branch, "commands", {})) == [path[0]]
        assert _help(branch, path, capsys) == _help(whole, path, capsys), path
    for args in ([], ["--help"], ["-h"], ["no-existe"], ["--install-completion"]):
        assert sorted(getattr(cli.app.command_for(args), "commands", {})) == sorted(
            getattr(whole, "commands", {})
        )
    assert _help(cli.app.command_for(["--help"]), [], capsys) == _help(whole, [], capsys)


def test_an_unknown_command_is_still_refused_in_spanish(capsys: pytest.CaptureFixture[str]) -> None:
    """A name that is no area nor command builds the whole tree, whose usage error is the
    Spanish one (exit 2)."""
    assert run(["no-existe"]) == 2
    assert "No existe el comando «no-existe»." in capsys.readouterr().err
