"""Figures a test measures (fail-over times, throughput), printed at the end of the run.

They travel in the test's report (``user_properties``), so they reach the terminal summary
whether the test ran in this process or in a pytest-xdist worker."""

from __future__ import annotations

from typing import Any, cast

import pytest

KEY = "custodia-figures"


def figures_of(request: pytest.FixtureRequest, title: str) -> dict[str, Any]:
    """A dict the test fills; shown under ``title`` with the test's name."""
    values: dict[str, Any] = {}
    request.node.user_properties.append((KEY, (title, request.node.name, values)))
    return values


class Collected:
    """Figures seen in the reports of a run, by section title."""

    def __init__(self) -> None:
        self.by_title: dict[str, dict[str, dict[str, Any]]] = {}

    def add(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for key, value in report.user_properties:
            if key == KEY:
                title, test, values = cast(tuple[str, str, dict[str, Any]], value)
                if values:
                    self.by_title.setdefault(title, {})[test] = dict(values)

    def summary(self, terminalreporter: Any) -> None:
        for title, tests in sorted(self.by_title.items()):
            terminalreporter.section(title)
            for test, values in tests.items():
                line = ", ".join(f"{key}={_fmt(value)}" for key, value in values.items())
                terminalreporter.write_line(f"{test}: {line}")


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
