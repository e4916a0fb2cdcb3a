"""The Containerfile builds the image the Kubernetes Deployment names, from what the wheel needs.

No container engine runs the suite, so the file is checked against the project's own sources
of truth: pyproject.toml (packages, readme, Python version) and
deploy/kubernetes/custodia-servicio.yaml (image, user, subcommand). The wheel it installs is
built and run by tests/packaging/test_wheel.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
DEPLOYMENT = ROOT / "deploy" / "kubernetes" / "custodia-servicio.yaml"


def _stages() -> list[list[str]]:
    """The Containerfile's instructions (continuation lines joined), stage by stage."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_build_stage_copies_everything_the_wheel_is_built_from() -> None:
    """The build stage copies pyproject.toml, its readme and every top-level package that
    pyproject.toml's package discovery includes, then builds the wheels of ``.``."""
    build, _ = _stages()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {
        source.rstrip("/")
        for line in build
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }
    packages = {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied
    assert any(
        line.startswith("RUN ") and "pip wheel" in line and line.endswith(" .") for line in build
    )


def test_runtime_stage_is_slim_python_311_non_root_with_the_custodia_entrypoint() -> None:
    """The image runs Python 3.11 (slim), installs custodia only from the built wheels, runs as
    the uid/gid the Deployment requires (never root), and its entry point is ``custodia``."""
    build, runtime = _stages()
    assert re.match(r"FROM \S*python:3\.11-slim\S* AS build$", build[0])
    assert re.match(r"FROM \S*python:3\.11-slim\S*$", runtime[0])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
    installs = [line for line in runtime if line.startswith("RUN ") and "pip install" in line]
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert "--find-links /wheels" in installs[0]
    assert installs[0].endswith(" custodia")

    deployment = DEPLOYMENT.read_text()
    uid = re.search(r"runAsUser: (\d+)", deployment)
    gid = re.search(r"runAsGroup: (\d+)", deployment)
    assert uid
    assert gid
    assert "runAsNonRoot: true" in deployment
    (user,) = [line for line in runtime if line.startswith("USER ")]
    assert user == f"USER {uid.group(1)}:{gid.group(1)}"
    assert user != "USER 0:0"
    assert 'ENTRYPOINT ["custodia"]' in runtime
    assert 'args: ["servicio"]' in deployment
    assert "CUSTODIA_HOME=/var/lib/custodia" in " ".join(runtime)
    assert "mountPath: /var/lib/custodia}" in deployment


def test_deployment_names_the_image_this_file_builds() -> None:
    """The Deployment's image is the one the Containerfile's header tells how to build, at the
    project's version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    image = re.search(r"image: (\S+)", DEPLOYMENT.read_text())
    assert image
    assert image.group(1).endswith(f"custodia:{project['project']['version']}")
    assert f"-t {image.group(1)} -f Containerfile ." in CONTAINERFILE.read_text()
