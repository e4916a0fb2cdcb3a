"""Figures measured by the fault tests, printed in the terminal summary of the run."""

from __future__ import annotations

from typing import Any


class Figures:
    """Per-test dictionaries of measured values, shown under ``title`` at the end of the run."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.by_test: dict[str, dict[str, Any]] = {}

    def for_test(self, name: str) -> dict[str, Any]:
        return self.by_test.setdefault(name, {})

    def summary(self, terminalreporter: Any) -> None:
        shown = {test: values for test, values in self.by_test.items() if values}
        if not shown:
            return
        terminalreporter.section(self.title)
        for test, values in shown.items():
            line = ", ".join(f"{key}={_fmt(value)}" for key, value in values.items())
            terminalreporter.write_line(f"{test}: {line}")


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
