"""Rendering helpers: JSON for scripts, rich tables and panels for people; hidden prompts."""

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
    """A rich console on stdout that fits an 80-column terminal when the width is unknown.

    It reads no markup: what it prints comes from the ledger and from people (an oficio
    number, a name, a device id), and brackets in it must show as written, never style it,
    link it or (unbalanced) make rich raise. Styled text is a :class:`rich.text.Text`, and
    so is every table cell and title (:func:`text`): a table renders its title with the
    console's setting but not with ``print``'s."""
    from rich.console import Console

    # On a terminal rich uses its width; otherwise (pipes, files) 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 80, markup=False)


def text(value: str, style: str = "") -> Any:
    """``value`` as rich text, shown as written (no markup), in ``style``."""
    from rich.text import Text

    return Text(value, style=style)


def ask_secret(prompt: str, *, confirm: bool = False, option: str = "--password-stdin") -> str:
    """A password typed at the terminal, hidden. When the input is not a terminal it cannot be
    hidden (Python would warn, in English, that it may be echoed): the user is told to give it
    with ``option`` instead (a usage error, exit 2)."""
    import typer
    from typer._click.exceptions import UsageError

    if not sys.stdin.isatty():
        raise UsageError(f"La entrada no es una terminal: dé la contraseña con {option}.")
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value
