"""The package installs as a wheel (``pip install .``, pipx, a container image), not only as an
editable checkout: every subpackage and data file the code imports or loads is in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("custody", "events", "projections", "cli")


def _source_files() -> set[str]:
    """Every module and policy template under the top-level packages, as wheel paths."""
    found: set[str] = set()
    for top in TOP_LEVEL:
        for path in (ROOT / top).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in {".py", ".hcl"} or path.name == "py.typed":
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_wheel_carries_every_module_and_policy(tmp_path: Path) -> None:
    """A wheel built from the project holds every ``.py`` module of the four top-level packages
    (subpackages included: events/domain, events/jetstream, custody/ledger, …), the policy
    templates and the ``py.typed`` markers, and the ``custodia`` entry point."""
    # Built from a copy of the checkout's files: a build/ folder left in the checkout would
    # otherwise hide a package the configuration forgets.
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = out.glob("custodia-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "custodia = cli.main:main" in archive.read(entry_points).decode()
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert not any(name.startswith("tests/") for name in names)
