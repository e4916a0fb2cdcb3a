"""Figures of the durability tests, printed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.figures import Figures

pytest.register_assert_rewrite("tests.cluster.helpers")

FIGURES = Figures("durability figures")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Where a test puts what it measured (printed at the end of the run)."""
    return FIGURES.for_test(request.node.name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    FIGURES.summary(terminalreporter)
