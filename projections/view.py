"""The materialised view: eventsourcing's SQLite tracking recorder plus the report tables.

Exactly-once: the rows an event changes and the tracking position that says it was processed are
written by one SQLite transaction, so after a crash the view resumes exactly where its tables
stand. Events are applied in batches (one transaction for up to :attr:`ReportsView.BATCH_EVENTS`
events, or past it by the end of a run applied at once, :meth:`ReportsView.apply_run`; committed
at the latest :attr:`ReportsView.BATCH_SECONDS` after the first); an event whose handler fails
leaves nothing behind (:meth:`ReportsView.apply`). A batch carries the tracking id of its last
event; a crash loses at most the uncommitted batch, processed again after a restart.

Writes go through one dedicated connection (``synchronous=NORMAL`` under WAL: a power loss may
lose the last batches, never split one); reads, ``max_tracking_id`` and ``wait`` use
eventsourcing's connection pool and see committed batches only.

A rebuild writes a :class:`RebuildView` instead: the same tables and batches, only larger, into a
side file that replaces the real one once complete (see the class).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from projections.errors import ProjectionDatabaseError
from projections.handler import Handler
from projections.schema import CREATE_STATEMENTS, INDEX_STATEMENTS, TABLE_KEYS

__all__ = ["Handler", "ProjectionError", "RebuildView", "ReportsView", "ViewCursor"]


class ViewCursor(sqlite3.Cursor):
    """The writer's cursor, with the view's memory of the exposure rows it holds (``exposed``):
    most credential reads expose a password to someone who has seen it already, and writing
    that row again would change nothing (``INSERT OR IGNORE``), so the handler skips it. The
    memory is forgotten on every rollback and erasure."""

    exposed: set[tuple[str, int, str]]


class ProjectionError:
    """A poison event or an invalid message, as the view records it."""

    __slots__ = (
        "action",
        "kind",
        "notification_id",
        "originator_id",
        "originator_version",
        "reason",
        "stream_seq",
        "topic",
    )

    def __init__(
        self,
        kind: str,
        reason: str,
        *,
        action: str,
        notification_id: int | None = None,
        stream_seq: int | None = None,
        topic: str | None = None,
        originator_id: str | None = None,
        originator_version: int | None = None,
    ) -> None:
        self.kind = kind
        self.reason = reason
        self.action = action
        self.notification_id = notification_id
        self.stream_seq = stream_seq
        self.topic = topic
        self.originator_id = originator_id
        self.originator_version = originator_version

    @property
    def ref(self) -> str:
        """The row's key: the notification id of a poison event, the stream sequence of an
        invalid message (both are stable, so a re-run records the same row)."""
        if self.notification_id is not None:
            return f"notificacion:{self.notification_id:012d}"
        return f"mensaje:{self.stream_seq or 0:012d}"


def _insert_error(cursor: sqlite3.Cursor, error: ProjectionError, position: int) -> None:
    cursor.execute(
        "INSERT OR REPLACE INTO projection_errors VALUES (?,?,?,?,?,?,?,?,?)",
        (
            error.ref,
            error.kind,
            error.notification_id,
            error.stream_seq,
            error.topic,
            error.originator_id,
            error.originator_version,
            error.reason,
            error.action,
        ),
    )


class ReportsView(SQLiteTrackingRecorder):
    """Tracking recorder whose database also holds the report tables (:mod:`.schema`)."""

    BATCH_EVENTS = 1000
    BATCH_SECONDS = 0.05
    # A thread commits a batch once it is BATCH_SECONDS old (events may stop coming).
    FLUSHER: ClassVar[bool] = True
    PRAGMAS: ClassVar[tuple[str, ...]] = ("journal_mode=WAL", "synchronous=NORMAL")

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        if datastore.pool.is_sqlite_memory_mode:
            raise ProjectionDatabaseError(datastore.pool.db_name, "needs a file, not memory")
        self._lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None
        self._cursor: ViewCursor | None = None
        self._exposed: set[tuple[str, int, str]] = set()
        self._pending: tuple[str, int] | None = None  # the batch's tracking position
        # The batch's events, to apply again after a rollback (parallel lists: fewer objects
        # for the garbage collector to look at than a tuple per event).
        self._handlers: list[Handler] = []
        self._events: list[Any] = []
        self._positions: list[int] = []
        self._size = 0  # events in the batch
        self._batch_started = 0.0
        self._closing = threading.Event()
        self._flusher: threading.Thread | None = None
        self._failed: ProjectionDatabaseError | None = None  # a batch the flusher lost

    @property
    def db_name(self) -> str:
        return self.datastore.pool.db_name

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *CREATE_STATEMENTS]

    # -- writing ------------------------------------------------------------------------------

    def _begin(self) -> ViewCursor:
        if self._cursor is None:
            if self._writer is None:
                self._writer = sqlite3.connect(
                    self.db_name,
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                    timeout=30,
                )
                for pragma in self.PRAGMAS:
                    self._writer.execute(f"PRAGMA {pragma}")
            self._cursor = self._writer.cursor(ViewCursor)
            self._cursor.exposed = self._exposed
            self._cursor.execute("BEGIN IMMEDIATE")
            self._batch_started = time.monotonic()
            if self._flusher is None and self.FLUSHER:
                self._flusher = threading.Thread(
                    target=self._flush_when_idle, name="reportes-flush", daemon=True
                )
                self._flusher.start()
        return self._cursor

    def apply(self, handler: Handler, event: Any, tracking: Tracking) -> None:
        """Applies ``handler(cursor, event, notification id)`` in the current batch, which then
        ends at ``tracking``.

        If the handler raises, the batch is rolled back and its earlier events applied again
        (no per-event savepoints: poison events are rare, and this halves the statements per
        event), so the failing event leaves nothing behind; the error propagates.
        """
        self.apply_at(handler, event, tracking.application_name, tracking.notification_id)

    def apply_at(self, handler: Handler, event: Any, application_name: str, position: int) -> None:
        """:meth:`apply`, with the tracking position given by its parts (a catch-up applies
        many events, and needs no ``Tracking`` object for each)."""
        self.apply_run(handler, event, application_name, position, 1)

    def apply_run(
        self, handler: Handler, event: Any, application_name: str, position: int, events: int
    ) -> None:
        """:meth:`apply_at` for a ``handler`` that applies a run of ``events`` consecutive events
        at once (its ``event``, say their list), the last at ``position``: the batch counts
        them all. As with one event, if the handler raises, none of the run is left behind."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            cursor = self._cursor
            if cursor is None:
                cursor = self._begin()
            try:
                handler(cursor, event, position)
            except Exception:
                self._reapply()
                raise
            self._handlers.append(handler)
            self._events.append(event)
            self._positions.append(position)
            self._pending = (application_name, position)
            self._size += events
            if (
                self._size >= self.BATCH_EVENTS
                or time.monotonic() - self._batch_started >= self.BATCH_SECONDS
            ):
                self._commit()

    def _reapply(self) -> None:
        assert self._writer is not None
        assert self._cursor is not None
        self._writer.rollback()
        self._exposed.clear()
        self._cursor.execute("BEGIN IMMEDIATE")
        for handler, event, position in zip(
            self._handlers, self._events, self._positions, strict=True
        ):
            handler(self._cursor, event, position)

    def record_error(self, error: ProjectionError, tracking: Tracking | None) -> None:
        """Records ``error``; with ``tracking``, in the batch (the event counts as processed),
        else committed on its own right away (the position does not move)."""
        with self._lock:
            if tracking is None:
                self._commit()
            self.apply(_insert_error, error, tracking or Tracking("", 0))
            if tracking is None:
                self._commit()

    def forget_no_handler_errors(self, topics: list[str]) -> int:
        """Deletes the errors recorded for events of ``topics`` as having no handler, now that
        they have one that projects nothing (an event that was skipped then is exactly as
        applied now: nothing to project). The count deleted. A view built before the handler
        existed then stops warning that its reports may be incomplete, with no rebuild."""
        if not topics:
            return 0
        with self._lock:
            self._commit()
            cursor = self._begin()
            cursor.executemany(
                "DELETE FROM projection_errors WHERE kind = 'evento_sin_tratamiento' AND topic = ?",
                [(topic,) for topic in topics],
            )
            deleted = int(cursor.rowcount)
            self._commit()
        return deleted

    def flush(self) -> None:
        """Commits the current batch, if any."""
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        cursor = self._cursor
        if cursor is None:
            return
        try:
            if self._pending is not None and self._pending[0]:
                self._insert_tracking(SQLiteCursor(cursor), Tracking(*self._pending))
            cursor.execute("COMMIT")
        except BaseException as error:
            if self._writer is not None and self._writer.in_transaction:
                self._writer.rollback()
            self._exposed.clear()
            if isinstance(error, sqlite3.Error):
                # The whole batch is gone, not one event: this is no poison event to skip. The
                # projection stops; started again, it resumes after the last committed batch.
                raise ProjectionDatabaseError(
                    self.db_name, f"commit failed: {type(error).__name__}: {error}"[:300]
                ) from error
            raise
        finally:
            cursor.close()
            self._cursor = None
            self._pending = None
            self._handlers = []
            self._events = []
            self._positions = []
            self._size = 0

    def _flush_when_idle(self) -> None:
        while not self._closing.wait(self.BATCH_SECONDS / 2):
            with self._lock:
                if (
                    self._cursor is not None
                    and time.monotonic() - self._batch_started >= self.BATCH_SECONDS
                ):
                    try:
                        self._commit()
                    except ProjectionDatabaseError as error:
                        self._failed = error  # raised to the projection at its next event
                        return

    def close(self) -> None:
        """Commits what is pending and closes the writer and the pool."""
        self._closing.set()
        with self._lock:
            try:
                self._commit()
            finally:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        self.datastore.close()

    # -- reading ------------------------------------------------------------------------------

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every view table's rows in key order, and the tracking positions (for comparisons)."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.datastore.transaction(commit=False) as cursor:
            for table, key in TABLE_KEYS.items():
                cursor.execute(f"SELECT * FROM {table} ORDER BY {key}")  # noqa: S608 (constants)
                out[table] = [tuple(row) for row in cursor.fetchall()]
            cursor.execute(
                "SELECT * FROM tracking WHERE application_name != ? ORDER BY application_name",
                (self.table_migration_identifier,),
            )
            out["tracking"] = [tuple(row) for row in cursor.fetchall()]
        return out


class RebuildView(ReportsView):
    """The view as :func:`~projections.runner.rebuild` writes it: the same tables and rows,
    written faster.

    A rebuild writes a fresh side file, which replaces the real one only once complete (and
    checkpointed with the default, fsyncing, settings); if the rebuild stops half-way, the next
    one deletes it. So what protects a live view is not needed while it is written: batches are
    ten times larger (still one transaction each, with the tracking position; the rebuild
    commits the last one itself, so no flusher thread), nothing is fsynced, the page cache is
    larger, and the secondary indexes (none unique) are created once the tables are filled
    (:meth:`create_indexes`).
    """

    BATCH_EVENTS = 10_000
    BATCH_SECONDS = 1.0
    FLUSHER = False
    PRAGMAS = ("journal_mode=WAL", "synchronous=OFF", "cache_size=-32768")

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        return [s for s in statements if s not in INDEX_STATEMENTS]

    def create_indexes(self) -> None:
        """Commits what is pending, then creates the secondary indexes (the view is complete)."""
        with self._lock:
            self._commit()
            cursor = self._begin()
            for statement in INDEX_STATEMENTS:
                cursor.execute(statement)
            self._commit()
