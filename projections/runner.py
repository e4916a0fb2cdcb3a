"""Running the projections: live (``custodia servicio``) and rebuilt from zero.

The service calls :func:`start_projections` once and keeps the returned
:class:`ProjectionService` until it stops::

    service = start_projections(app_env, home / "proyecciones.sqlite")
    ...
    service.close()

``app_env`` configures the ledger's application (``custodia``) as for any eventsourcing
application: ``PERSISTENCE_MODULE=events.jetstream``, ``NATS_URL``, ``NATS_NAMESPACE``... The view
lives in the SQLite file ``db_path`` (its own environment, prefixed ``REPORTES_``, is filled in
here). :func:`rebuild` builds a fresh view from the first event into a side file, then puts it in
place of ``db_path`` (stop the live projections first).

Messages of the stream that are not valid records never reach the projection: the event store's
reader skips and reports them (``recorder.invalid_messages``). A watcher thread copies each such
report into ``projection_errors`` (kind ``mensaje_invalido``), so they are not silently skipped
either, and with the policy ``detener`` stops the projections.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from eventsourcing.projection import ProjectionRunner

from projections.errors import ProjectionHaltedError
from projections.projection import APPLICATION_NAME, LedgerReader, OnError, ReportsProjection
from projections.view import ProjectionError, ReportsView

__all__ = [
    "Progress",
    "ProjectionService",
    "RebuildResult",
    "projection_env",
    "rebuild",
    "start_projections",
]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events processed so far, and events in the ledger."""

_PREFIX = ReportsProjection.name.upper()


def projection_env(app_env: Mapping[str, str], db_path: Path) -> dict[str, str]:
    """The runner's environment: the application's, plus the view's SQLite settings."""
    env = dict(app_env)
    env[f"{_PREFIX}_PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
    env[f"{_PREFIX}_SQLITE_DBNAME"] = str(db_path)
    env[f"{_PREFIX}_CREATE_TABLE"] = "y"
    return env


class ProjectionService:
    """The report projection running over the ledger's ``subscribe()``, with its view."""

    INVALID_POLL = 0.5

    def __init__(
        self, app_env: Mapping[str, str], db_path: Path, *, on_error: OnError = "continuar"
    ) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self.on_error: OnError = on_error
        self._halted: ProjectionHaltedError | None = None
        self._seen_invalid: set[tuple[str, int]] = set()
        self._invalid_lock = threading.Lock()
        self.runner: ProjectionRunner[LedgerReader, ReportsView] = ProjectionRunner(
            application_class=LedgerReader,
            projection_class=ReportsProjection.with_policy(on_error),
            view_class=ReportsView,
            env=projection_env(app_env, db_path),
        )
        self.runner.__enter__()
        self.view: ReportsView = self.runner.view
        self._closed = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch_invalid, name="reportes-invalidos", daemon=True
        )
        self._watcher.start()

    # -- state --------------------------------------------------------------------------------

    def position(self) -> int:
        """The notification id of the last event the view reflects (0 if none)."""
        return self.view.max_tracking_id(APPLICATION_NAME) or 0

    def ledger_position(self) -> int:
        """The notification id of the ledger's last event (0 if none)."""
        return self.runner.app.recorder.max_notification_id() or 0

    def errors(self) -> list[dict[str, Any]]:
        """The recorded projection errors, in ledger order."""
        with self.view.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT * FROM projection_errors ORDER BY ref")
            return [dict(row) for row in cursor.fetchall()]

    def _raise_if_halted(self) -> None:
        if self._halted is not None:
            raise self._halted

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, notification_id: int, timeout: float = 10.0) -> None:
        """Blocks until the view reflects ``notification_id``; raises ``TimeoutError``, or the
        :class:`ProjectionHaltedError` that stopped the projection."""
        try:
            self.runner.wait(notification_id, timeout=timeout)
        except ProjectionHaltedError as error:
            self._halted = error
            raise
        self._raise_if_halted()
        if self.position() < notification_id:  # the runner was stopped meanwhile
            raise TimeoutError(f"projection stopped before {notification_id}")

    def run_forever(self, timeout: float | None = None) -> None:
        """Blocks until stopped (or ``timeout``); re-raises what stopped the projection."""
        self.runner.run_forever(timeout)
        self._raise_if_halted()

    # -- invalid messages ---------------------------------------------------------------------

    def collect_invalid(self) -> int:
        """Records the invalid messages the reader reported since the last call; returns how
        many. With the policy ``detener``, a new one stops the projection."""
        reported = getattr(self.runner.app.recorder, "invalid_messages", None) or []
        new = 0
        with self._invalid_lock:
            for message in reported:
                key = (message.stream, message.seq)
                if key in self._seen_invalid:
                    continue
                self._seen_invalid.add(key)
                new += 1
                error = ProjectionError(
                    "mensaje_invalido",
                    str(message.reason)[:500],
                    action="detenida" if self.on_error == "detener" else "omitido",
                    stream_seq=message.seq,
                    topic=message.subject,
                )
                self.view.record_error(error, None)
                if self.on_error == "detener" and self._halted is None:
                    self._halted = ProjectionHaltedError(error.kind, error.ref, error.reason)
                    self.runner.stop()
        return new

    def _watch_invalid(self) -> None:
        while not self._closed.wait(self.INVALID_POLL):
            with contextlib.suppress(Exception):  # the view may be closing
                self.collect_invalid()

    # -- stopping -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Asks the projection to stop (from any thread)."""
        self.runner.stop()

    def close(self) -> None:
        """Stops the projection, commits what it processed and closes everything. A
        :class:`ProjectionHaltedError` that stopped it is kept (see :meth:`run_forever`)."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self.runner.__exit__(None, None, None)
        except ProjectionHaltedError as error:
            self._halted = error
        finally:
            self._watcher.join(timeout=5)
            self.view.close()

    def __enter__(self) -> ProjectionService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_projections(
    app_env: Mapping[str, str], db_path: Path, *, on_error: OnError = "continuar"
) -> ProjectionService:
    """Starts the report projection over the ledger configured by ``app_env`` into the SQLite
    file ``db_path``; it resumes from the position the view recorded."""
    return ProjectionService(app_env, db_path, on_error=on_error)


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did: events processed, seconds taken, projection errors recorded."""

    events: int
    seconds: float
    errors: int


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _remove(path: Path) -> None:
    for candidate in (path, *_sidecars(path)):
        candidate.unlink(missing_ok=True)


def rebuild(
    db_path: Path,
    app_env: Mapping[str, str],
    *,
    progress: Progress | None = None,
    on_error: OnError = "continuar",
) -> RebuildResult:
    """Builds the view from the ledger's first event into ``<db_path>.reconstruccion`` and,
    once it reflects every event recorded when the rebuild started, moves it to ``db_path``.

    ``progress(done, total)`` is called while it runs (a progress bar hook). Stop the live
    projections on ``db_path`` first. Raises :class:`ProjectionHaltedError` if a poison event
    halts it (policy ``detener``); ``db_path`` is then left as it was.
    """
    started = time.perf_counter()
    side = db_path.with_name(db_path.name + ".reconstruccion")
    _remove(side)
    service = ProjectionService(app_env, side, on_error=on_error)
    try:
        total = service.ledger_position()
        done = service.position()
        while True:
            if progress is not None:
                progress(done, total)
            if done >= total:
                break
            with contextlib.suppress(TimeoutError):
                service.wait(min(done + 50_000, total), timeout=0.25)
            done = service.position()
        service.collect_invalid()
        service._raise_if_halted()
        errors = len(service.errors())
    finally:
        service.close()
    service._raise_if_halted()
    with contextlib.closing(sqlite3.connect(side)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    for sidecar in _sidecars(db_path):
        sidecar.unlink(missing_ok=True)
    os.replace(side, db_path)
    for sidecar in _sidecars(side):
        sidecar.unlink(missing_ok=True)
    return RebuildResult(events=total, seconds=time.perf_counter() - started, errors=errors)
