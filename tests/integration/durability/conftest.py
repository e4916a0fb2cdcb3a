"""Figures of the durability tests, printed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.figures import figures_of

pytest.register_assert_rewrite("tests.cluster.helpers")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Where a test puts what it measured (printed at the end of the run)."""
    return figures_of(request, "durability figures")
