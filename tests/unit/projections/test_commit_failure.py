"""A batch of the view that fails to commit (disk full, I/O error) is not a poison event: the
projection stops instead of skipping it, and started again it resumes after the last committed
batch — nothing is lost, nothing is recorded as a projection error."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from projections.errors import ProjectionDatabaseError
from projections.projection import APPLICATION_NAME
from projections.view import ReportsView, ViewCursor
from tests.unit.projections.local import open_view
from tests.unit.projections.scenario import build


def test_a_failed_commit_stops_the_projection_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = build(tmp_path)
    ledger = scenario.ledger
    assert ledger.position > 3

    reference = open_view(tmp_path / "reference.sqlite")
    ledger.project(reference)

    failing = open_view(tmp_path / "failing.sqlite")
    monkeypatch.setattr(ReportsView, "BATCH_EVENTS", 2)  # several batches in the history
    original = ViewCursor.execute
    commits = [0]

    def execute(self: ViewCursor, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            commits[0] += 1
            if commits[0] == 2:  # the second batch cannot be written
                raise sqlite3.OperationalError("disk I/O error")
        return original(self, sql, *args)

    monkeypatch.setattr(ViewCursor, "execute", execute)
    with pytest.raises(ProjectionDatabaseError) as stopped:
        ledger.project(failing)
    assert "disk I/O error" in stopped.value.problem
    failing.close()

    monkeypatch.setattr(ViewCursor, "execute", original)
    resumed = open_view(tmp_path / "failing.sqlite")
    assert (resumed.max_tracking_id(APPLICATION_NAME) or 0) == 2  # the first batch only
    ledger.project(resumed)  # started again: from the last committed batch
    assert resumed.max_tracking_id(APPLICATION_NAME) == ledger.position
    expected = reference.dump()
    assert resumed.dump() == expected
    assert expected["projection_errors"] == []  # nothing recorded as a poison event
    resumed.close()
    reference.close()
