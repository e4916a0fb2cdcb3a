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

The live service is eventsourcing's ``ProjectionRunner``. A rebuild has no runner: a forked
reading process (:mod:`projections.reading`) reads the subscription a page at a time and
prepares each event (nearly every one goes straight from its stored state to its handler's SQL
parameters, :mod:`projections.fastrows`), and the calling thread applies the pages
(:meth:`ReportsProjection.apply_prepared`: the same handlers, poison policy and tracking) to a
:class:`~projections.view.RebuildView` (larger batches, no fsync until the end, indexes built
last). Where the platform cannot fork, or with ``reading_process=False``, the calling thread
does both (:meth:`ReportsProjection.catch_up`). All give the same tables
(``tests/integration/projections/test_rebuild.py``, ``tests/unit/projections/test_fastrows.py``).

Messages of the stream that are not valid records never reach the projection: the event store's
reader skips and reports them (``recorder.invalid_messages``). A watcher thread (a rebuild: after
each page, as the reading process sends them) copies each such report into
``projection_errors`` (kind ``mensaje_invalido``), so they are not silently skipped either, and
with the policy ``detener`` stops the projections.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import ProjectionRunner
from eventsourcing.utils import Environment

from projections.errors import ProjectionHaltedError
from projections.projection import (
    APPLICATION_NAME,
    LedgerReader,
    OnError,
    ReportsProjection,
)
from projections.reading import (
    InvalidReport,
    LedgerEvents,
    ReadingProcess,
    can_fork,
    new_invalid,
    pages,
)
from projections.view import ProjectionError, RebuildView, ReportsView

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
        # Errors of events skipped for want of a handler that now projects them as nothing.
        projection = self.runner.projection
        assert isinstance(projection, ReportsProjection)
        self.view.forget_no_handler_errors(projection.ignored_topics())
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
        with self._invalid_lock:
            new = new_invalid(self.runner.app.recorder, self._seen_invalid)
            halt = record_invalid(self.view, new, self.on_error)
            if halt is not None and self._halted is None:
                self._halted = halt
                self.runner.stop()
        return len(new)

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


def record_invalid(
    view: ReportsView, messages: Sequence[InvalidReport], on_error: OnError
) -> ProjectionHaltedError | None:
    """Records each of ``messages`` in ``view``; with the policy ``detener``, returns the error
    that halts the projection (the first message's) if there was any."""
    halt = None
    for _stream, seq, subject, reason in messages:
        error = ProjectionError(
            "mensaje_invalido",
            str(reason)[:500],
            action="detenida" if on_error == "detener" else "omitido",
            stream_seq=seq,
            topic=subject,
        )
        view.record_error(error, None)
        if on_error == "detener" and halt is None:
            halt = ProjectionHaltedError(error.kind, error.ref, error.reason)
    return halt


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


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Young-generation collections far apart: a rebuild keeps thousands of events alive (the
    view's batch, the subscription's pages), which the cyclic collector would otherwise scan
    over and over (about a tenth of a rebuild's time). Refcounting frees them all the same."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def rebuild(
    db_path: Path,
    app_env: Mapping[str, str],
    *,
    progress: Progress | None = None,
    on_error: OnError = "continuar",
    reading_process: bool = True,
) -> RebuildResult:
    """Builds the view from the ledger's first event into ``<db_path>.reconstruccion`` and,
    once it reflects every event recorded when the rebuild started, moves it to ``db_path``.

    ``progress(done, total)`` is called while it runs (a progress bar hook; ``done`` counts
    the events applied). Stop the live projections on ``db_path`` first. Raises
    :class:`ProjectionHaltedError` if a poison event halts it (policy ``detener``), and
    :class:`RebuildFailedError` if the reading stopped half-way; ``db_path`` is then left as it
    was. ``reading_process=False``: read and write in this process alone (the same view,
    slower; where the platform cannot fork, that is what happens). The reading process is
    forked: call this while no other thread of the process uses the event store or the domain
    (a thread holding one of their locks at the fork would leave it held in the child); the
    command line's progress bar does neither.
    """
    started = time.perf_counter()
    side = db_path.with_name(db_path.name + ".reconstruccion")
    _remove(side)
    with _fewer_collections():
        total, errors = _build(side, app_env, progress, on_error, reading_process)
    with contextlib.closing(sqlite3.connect(side)) as conn:
        # The default, fsyncing checkpoint: the file is complete and durable before it moves.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    for sidecar in _sidecars(db_path):
        sidecar.unlink(missing_ok=True)
    os.replace(side, db_path)
    for sidecar in _sidecars(side):
        sidecar.unlink(missing_ok=True)
    return RebuildResult(events=total, seconds=time.perf_counter() - started, errors=errors)


def _build(
    side: Path,
    app_env: Mapping[str, str],
    progress: Progress | None,
    on_error: OnError,
    reading_process: bool,
) -> tuple[int, int]:
    """Projects the ledger, as recorded now, into the fresh file ``side``; returns the number of
    events and of projection errors.

    No runner thread: the events come a page at a time, each prepared (FastRows parameters),
    and :meth:`ReportsProjection.apply_prepared` applies them (the same handlers, poison
    policy, batches and tracking as the live service, with less bookkeeping per event). With
    ``reading_process`` (where the platform forks), a child process reads and prepares the
    pages while this one writes (:mod:`.reading`); else this process does both.
    """
    side.parent.mkdir(parents=True, exist_ok=True)
    env = projection_env(app_env, side)
    # First contact here, so that an unreachable server or a missing ledger fails as usual;
    # closed before any fork (the child must not inherit a running connection).
    reader = LedgerReader(env=env)
    try:
        total = reader.recorder.max_notification_id() or 0
        if not (reading_process and can_fork()) or not total:
            return _build_here(side, env, reader, total, progress, on_error)
        mapper = reader.mapper
    finally:
        reader.close()
    if progress is not None:
        progress(0, total)
    ledger = LedgerEvents(env)
    view = _rebuild_view(side)
    try:
        projection = ReportsProjection.with_policy(on_error)(view)
        with contextlib.closing(ReadingProcess(env, total)) as child:
            for message in child:
                if message[0] == "page":
                    items = message[1]
                    if items:
                        projection.apply_prepared(
                            items, mapper, APPLICATION_NAME, ledger.notification
                        )
                        done = items[-1][0]
                        if progress is not None and done < total:
                            progress(done, total)
                else:  # "invalid"
                    halt = record_invalid(view, [tuple(m) for m in message[1]], on_error)
                    if halt is not None:
                        raise halt
        return total, _finish(view, total, progress)
    finally:
        ledger.close()
        view.close()


def _rebuild_view(side: Path) -> RebuildView:
    env = projection_env({}, side)
    return (
        InfrastructureFactory[RebuildView]
        .construct(env=Environment(ReportsProjection.name, {**os.environ, **env}))
        .tracking_recorder(RebuildView)
    )


def _finish(view: RebuildView, total: int, progress: Progress | None) -> int:
    """Commits the last batch, builds the indexes; returns the number of projection errors."""
    view.flush()
    view.create_indexes()
    if progress is not None and total:
        progress(total, total)
    with view.datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT COUNT(*) FROM projection_errors")
        return int(cursor.fetchone()[0])


def _build_here(
    side: Path,
    env: Mapping[str, str],
    reader: LedgerReader,
    total: int,
    progress: Progress | None,
    on_error: OnError,
) -> tuple[int, int]:
    """:func:`_build` in this process alone: this thread reads the subscription a page at a
    time and hands each page to :meth:`ReportsProjection.catch_up`."""
    view = _rebuild_view(side)
    try:
        projection = ReportsProjection.with_policy(on_error)(view)
        recorder = reader.recorder
        seen_invalid: set[tuple[str, int]] = set()
        if progress is not None:
            progress(0, total)
        if total:
            with recorder.subscribe(gt=0) as subscription:
                for page in pages(subscription):
                    projection.catch_up(page, reader.mapper, APPLICATION_NAME)
                    halt = record_invalid(view, new_invalid(recorder, seen_invalid), on_error)
                    if halt is not None:
                        raise halt
                    if page[-1].id >= total:
                        break
                    if progress is not None:
                        progress(page[-1].id, total)
        halt = record_invalid(view, new_invalid(recorder, seen_invalid), on_error)
        if halt is not None:
            raise halt
        return total, _finish(view, total, progress)
    finally:
        view.close()
