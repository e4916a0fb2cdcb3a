"""Code run in child processes by the fault tests (importable, for the ``spawn`` start method)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    def increment(self) -> None:
        self.trigger_event(self.Incremented)

    class Incremented(Aggregate.Event):
        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Counter)
            aggregate.count += 1


def race(env: dict[str, str], counter_id: str, attempts: int, start: Any) -> tuple[list[int], int]:
    """Once every racer has passed ``start`` (a ``multiprocessing`` barrier), try ``attempts``
    times to increment the counter.

    Returns the versions this process won, and how many attempts it lost.
    """
    app: Application[UUID] = Application(env=env)
    app.repository.get(UUID(counter_id))  # connected and warm before the start
    start.wait()
    won = []
    lost = 0
    try:
        for _ in range(attempts):
            counter: Counter = app.repository.get(UUID(counter_id))
            counter.increment()
            try:
                app.save(counter)
            except IntegrityError:
                lost += 1
                continue
            won.append(counter.version)
    finally:
        app.close()
    return won, lost
