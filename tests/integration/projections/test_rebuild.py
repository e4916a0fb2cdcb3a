"""Rebuilding every projection from zero gives exactly the same tables as the live ones.

A long random history (the domain's own commands over three districts: reads, rotations,
designations, absences, change requests, incidents, an erasure) is saved through the JetStream
application while the live projection follows it — stopped and restarted half-way, as a service
restart would — and then the view is rebuilt from the first event and compared table by table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate

from projections.runner import rebuild, start_projections
from projections.view import ReportsView
from tests.integration.projections.conftest import Ledger
from tests.integration.projections.history import RandomHistory
from tests.unit.projections.local import open_view

pytestmark = pytest.mark.integration


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    view: ReportsView = open_view(db)
    try:
        return view.dump()
    finally:
        view.close()


def test_rebuild_from_zero_equals_the_live_view(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path
) -> None:
    """Live (with a restart) and rebuilt views hold the same rows in every table, whether the
    rebuild reads in a process of its own or not."""

    def save(aggregates: Sequence[Aggregate]) -> None:
        ledger.save(*aggregates)

    history = RandomHistory(save, seed=20250303)
    live_db = tmp_path / "proyecciones.sqlite"
    service = start_projections(app_env, live_db)
    try:
        history.run(800)
    finally:
        service.close()  # a restart: the view resumes from its own tracking position
    service = start_projections(app_env, live_db)
    try:
        history.run(800)
        assert history.erase_someone()
        history.run(300)
        last = ledger.recorder.max_notification_id()
        assert last is not None
        service.wait(last, timeout=30)
        assert service.errors() == []
    finally:
        service.close()

    seen: list[tuple[int, int]] = []
    rebuilt_db = tmp_path / "reconstruida.sqlite"
    result = rebuild(rebuilt_db, app_env, progress=lambda done, total: seen.append((done, total)))

    assert result.events == last
    assert seen[-1] == (last, last)
    live, rebuilt = dump(live_db), dump(rebuilt_db)
    assert live.keys() == rebuilt.keys()
    for table in live:
        assert live[table] == rebuilt[table], table
    assert live["tracking"] == [("custodia", last)]
    rebuild(live_db, app_env)  # in place of the live file, as ``reporte reconstruir`` does
    assert dump(live_db) == rebuilt
    # Read and written in one process (where the platform cannot fork): the same view.
    alone: list[tuple[int, int]] = []
    one_db = tmp_path / "un-proceso.sqlite"
    rebuild(one_db, app_env, progress=lambda done, total: alone.append((done, total)),
            reading_process=False)  # fmt: skip
    assert dump(one_db) == rebuilt
    assert alone[-1] == (last, last)
    for progress in (seen, alone):
        assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    # The history is long and varied enough to mean something.
    assert last > 1500
    assert history.erased >= 1
    assert len(live["erased_people"]) == history.erased
    for table in ("reads", "obligations", "exposure", "change_requests", "incidents"):
        assert len(live[table]) > 5, table
