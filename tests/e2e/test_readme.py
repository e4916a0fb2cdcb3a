"""Every command the README shows exists, with Spanish help; the two set-up commands are real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli.main import run

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)


def _commands() -> list[list[str]]:
    commands = []
    for block in BLOCKS:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip().rstrip("&").strip()
            if line.startswith("custodia "):
                commands.append(shlex.split(line)[1:])
    return commands


def _path(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")][:2]


def _lists_command(help_text: str, name: str) -> bool:
    return "Comandos" in help_text and bool(
        re.search(rf"^\W*{re.escape(name)}\s", help_text.split("Comandos", 1)[1], re.M)
    )


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a[:3]))
def test_readme_command_exists_and_its_options_are_real(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``custodia <command> --help`` answers in Spanish and lists every option the README uses."""
    words = _path(args)
    code = run([*words[:1], "--help"])
    listed = capsys.readouterr().out
    # A group may take options of its own (``titular --distrito …``): its second word is a
    # subcommand only if the group lists it as one.
    if code == 0 and len(words) > 1 and _lists_command(listed, words[1]):
        code = run([*words, "--help"])
    else:
        words = words[:1]
        code = run([*words, "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Uso:" in out
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert option in out, f"{' '.join(words)}: {option}"


def test_readme_gives_exactly_the_two_setup_commands_and_ci_runs_the_second() -> None:
    """The two commands are scripts of this repo; ``.ci/run`` calls the test one only."""
    assert "bash scripts/demo.sh" in README
    assert "bash scripts/test.sh" in README
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci == ["bash scripts/test.sh"]
    assert len(_commands()) >= 15
