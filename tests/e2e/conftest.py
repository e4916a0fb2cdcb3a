"""Helpers to run the real ``custodia`` executable as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

CUSTODIA = str(Path(sys.executable).parent / "custodia")

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_custodia(
    *args: str,
    home: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``custodia ARGS`` with ``CUSTODIA_HOME=home`` and a clean server environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    full_env["CUSTODIA_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run(
        [CUSTODIA, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def custodia() -> Run:
    return run_custodia
