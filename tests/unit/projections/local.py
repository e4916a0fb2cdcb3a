"""A ledger in memory and the report projection over it, without NATS.

:class:`LocalLedger` saves aggregates in an eventsourcing application with POPO persistence (and
the projections' tolerant mapper), and :meth:`LocalLedger.project` feeds its notifications to
the real :class:`ReportsProjection` and SQLite view, as the runner would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, StoredEvent, Tracking
from eventsourcing.utils import Environment

from projections.projection import APPLICATION_NAME, LedgerReader, OnError, ReportsProjection
from projections.runner import projection_env
from projections.view import ReportsView


def open_view(db: Path) -> ReportsView:
    """The view in the SQLite file ``db``, built as the runner builds it."""
    env = Environment(ReportsProjection.name, projection_env({}, db))
    view = InfrastructureFactory[ReportsView].construct(env=env).tracking_recorder(ReportsView)
    assert isinstance(view, ReportsView)
    return view


class LocalLedger:
    """Aggregates saved in memory; the projection applied on demand."""

    def __init__(self) -> None:
        self.app = LedgerReader(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def save(self, *aggregates: Any) -> int:
        """Saves and returns the last notification id."""
        self.app.save(*aggregates)
        return self.position

    def insert_raw(self, *stored: StoredEvent) -> int:
        """Records stored events as they are (to plant poison)."""
        self.app.recorder.insert_events(list(stored))
        return self.position

    @property
    def position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def project_into(self, db: Path) -> Path:
        """Projects everything into the SQLite file ``db`` (then closes it); returns ``db``."""
        view = open_view(db)
        try:
            self.project(view)
        finally:
            view.close()
        return db

    def project(self, view: ReportsView, on_error: OnError = "continuar") -> None:
        """Applies every notification after the view's position (then commits)."""
        projection = ReportsProjection.with_policy(on_error)(view)
        start = (view.max_tracking_id(APPLICATION_NAME) or 0) + 1
        try:
            for notification in self.app.recorder.select_notifications(start, 100_000):
                event = self.app.mapper.to_domain_event(notification)
                projection.process_event(event, Tracking(APPLICATION_NAME, notification.id))
        finally:
            view.flush()
