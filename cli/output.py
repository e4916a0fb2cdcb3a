"""Rendering helpers: JSON for scripts, rich tables and panels for people."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when something is rendered, not for every command
    from rich.console import Console


def print_json(data: Any) -> None:
    """Machine-readable output: UTF-8 JSON on stdout, keys stable across versions."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def console() -> Console:
    """A rich console on stdout that fits an 80-column terminal when the width is unknown."""
    from rich.console import Console

    # On a terminal rich uses its width; otherwise (pipes, files) 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 80)


def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)
