"""A rebuild reads the ledger in a child process of its own (``projections.reading``): what the
writing process does when an event it was sent ready does not apply, and when the reader fails,
dies or is no longer wanted. Against a real NATS server; the child is a real fork.

Whatever happens to the reader, the view being replaced stays as it was, and no reader is left
running (or unreaped) behind the rebuild.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

import projections.reading as reading
from events.domain import District
from events.jetstream import records
from projections.errors import ProjectionHaltedError, RebuildFailedError
from projections.projection import LedgerReader
from projections.runner import rebuild
from tests.integration.projections.conftest import Ledger
from tests.integration.projections.test_poison import append_raw
from tests.unit.domain.domain_world import later, make_world
from tests.unit.projections.local import open_view

pytestmark = pytest.mark.integration


def tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    view = open_view(db)
    try:
        return view.dump()
    finally:
        view.close()


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the reading processes the rebuilds of the test start."""
    pids: list[int] = []
    start = reading.ReadingProcess.__init__

    def recorded(self: reading.ReadingProcess, *args: Any) -> None:
        start(self, *args)
        pids.append(self.pid)

    monkeypatch.setattr(reading.ReadingProcess, "__init__", recorded)
    return pids


def gone(pid: int) -> bool:
    """Whether ``pid`` is neither running nor waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def saved_world(ledger: Ledger) -> None:
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)


def test_an_event_sent_ready_that_does_not_apply_is_read_again_and_recorded(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path, readers: list[int]
) -> None:
    """A rotation of an account the district never registered: its stored state is ordinary,
    so the reader sends it with its parameters, but its update finds no row. The writer reads
    that event from the ledger itself and records it as the one-process rebuild does (topic,
    aggregate and version: taken from the ledger, not from the parameters)."""
    saved_world(ledger)
    dd05 = District.create_id("DD05")
    reader = LedgerReader(env=app_env)
    try:
        started = [
            n
            for n in reader.recorder.select_notifications(start=1, limit=1000)
            if n.topic == get_topic(District.RotationStarted)
        ]
    finally:
        reader.close()
    state = json.loads(started[0].state)
    assert state["account"] == "DD05-x"
    ghost = json.dumps({**state, "account": "DD05-fantasma"}).encode()
    version = max(n.originator_version for n in started) + 100
    position = (ledger.recorder.max_notification_id() or 0) + 1
    body = records.encode_events_body(
        dd05, [StoredEvent(dd05, version, get_topic(District.RotationStarted), ghost)]
    )
    append_raw(app_env, str(dd05), records.head(records.KIND_EVENTS, position) + body)

    two, one = tmp_path / "dos.sqlite", tmp_path / "uno.sqlite"
    assert rebuild(two, app_env).errors == 1
    assert rebuild(one, app_env, reading_process=False).errors == 1
    assert tables(two) == tables(one)
    error = tables(two)["projection_errors"][0]
    assert error[1:3] == ("evento_no_aplicable", position)
    assert get_topic(District.RotationStarted) in error
    assert str(dd05) in error
    assert version in error
    assert readers
    assert all(gone(pid) for pid in readers)


def rebuild_that_fails(
    ledger: Ledger,
    app_env: dict[str, str],
    tmp_path: Path,
    readers: list[int],
    spoil: Callable[[], None],
) -> str:
    """Rebuilds once, then spoils the reader (``spoil``) and rebuilds again: the second must
    fail with the view as the first left it and both readers reaped. What it says."""
    saved_world(ledger)
    db = tmp_path / "p.sqlite"
    rebuild(db, app_env)
    before = db.read_bytes()
    spoil()
    with pytest.raises(RebuildFailedError) as raised:
        rebuild(db, app_env)
    assert db.read_bytes() == before
    assert len(readers) == 2
    assert all(gone(pid) for pid in readers)
    return raised.value.problem


def test_a_reader_that_fails_leaves_the_view_as_it_was(
    ledger: Ledger,
    app_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    readers: list[int],
) -> None:
    """The reader's own error ends the rebuild with a Spanish explanation; the existing view is
    untouched and the reader reaped."""

    def failing(stream: IO[bytes], env: dict[str, str], total: int) -> None:
        raise ConnectionError("sin conexión con la bitácora")

    problem = rebuild_that_fails(
        ledger,
        app_env,
        tmp_path,
        readers,
        lambda: monkeypatch.setattr(reading, "_read_ledger", failing),
    )
    assert "falló la lectura de la bitácora" in problem
    assert "sin conexión con la bitácora" in problem


def test_a_reader_that_dies_half_way_leaves_the_view_as_it_was(
    ledger: Ledger,
    app_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    readers: list[int],
) -> None:
    """Killed after sending its first page (as by the OOM killer): the writer does not take
    the pages it got for the whole ledger; it stops, says so, and keeps the old view."""
    real_write = reading._write

    def dying(stream: IO[bytes], body: bytes) -> None:
        real_write(stream, body)
        os.kill(os.getpid(), signal.SIGKILL)

    problem = rebuild_that_fails(
        ledger, app_env, tmp_path, readers, lambda: monkeypatch.setattr(reading, "_write", dying)
    )
    assert "terminó antes del final" in problem
    assert f"{-signal.SIGKILL}" in problem


def test_a_rebuild_that_halts_stops_its_reader(
    ledger: Ledger,
    app_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    readers: list[int],
) -> None:
    """«detener» at a message that is not a record, while the reader still has events to send
    (it is made to wait there for ever): the reader is stopped and reaped, not left reading,
    and no view is written."""
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    append_raw(app_env, "basura", b"this is not a record")
    w.district.register_account(
        "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", by=w.coadmin, at=later(9)
    )
    ledger.save(w.district)
    real_write = reading._write

    def stuck_after_reporting(stream: IO[bytes], body: bytes) -> None:
        real_write(stream, body)
        if msgspec.msgpack.decode(body)[0] == "invalid":
            signal.pause()

    monkeypatch.setattr(reading, "_write", stuck_after_reporting)
    with pytest.raises(ProjectionHaltedError):
        rebuild(tmp_path / "p.sqlite", app_env, on_error="detener")
    assert len(readers) == 1
    assert gone(readers[0])
    assert not (tmp_path / "p.sqlite").exists()


def test_a_log_stream_locked_at_the_fork_does_not_hang_the_reader(
    ledger: Ledger,
    app_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    readers: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the rebuild forks, another thread of the caller is blocked writing to the event
    store's log stream (a pipe nobody reads yet), holding that stream's lock: in the child no
    thread will ever release it. The ledger holds a message that is not a record, which the
    reader skips: had the child logged that, it would wait for the lock for ever. It logs
    nothing; the parent (whose stream is drained once it has forked) logs what was skipped, to
    its own logger, records it, and the rebuild finishes."""
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    garbage_seq = append_raw(app_env, "basura", b"this is not a record")
    w.district.register_account(
        "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", by=w.coadmin, at=later(9)
    )
    ledger.save(w.district)  # the last message is a record: the first contact logs nothing
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    handler = logging.StreamHandler(stream)
    store_logger = logging.getLogger("events.jetstream")

    def flood() -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.write("x" * (1 << 20))  # the pipe holds 64 KiB: blocks inside the write
            stream.flush()

    def drain() -> None:
        with open(read_end, "rb") as pipe:
            while pipe.read(1 << 16):
                pass

    # A stack far larger than the default, so that no thread the child starts reuses it (and
    # its identity: the lock would then say "reentrant call" instead of waiting).
    default = threading.stack_size(64 << 20)
    try:
        writer = threading.Thread(target=flood, daemon=True)
        writer.start()
    finally:
        threading.stack_size(default)
    drainer = threading.Thread(target=drain, daemon=True)
    forked = reading.ReadingProcess.__init__

    def fork_then_drain(self: reading.ReadingProcess, *args: Any) -> None:
        assert writer.is_alive()  # blocked in the write when the child is forked
        forked(self, *args)
        drainer.start()

    monkeypatch.setattr(reading.ReadingProcess, "__init__", fork_then_drain)
    time.sleep(0.3)
    store_logger.addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="projections.reading"):
            result = rebuild(tmp_path / "p.sqlite", app_env)
    finally:
        store_logger.removeHandler(handler)
        writer.join(timeout=5)
        with contextlib.suppress(OSError):
            stream.close()
        drainer.join(timeout=5)
    assert result.errors == 1
    assert tables(tmp_path / "p.sqlite")["projection_errors"][0][1:4] == (
        "mensaje_invalido",
        None,
        garbage_seq,
    )
    assert f"skipped message {app_env['NATS_NAMESPACE']}-custodia-events/{garbage_seq}" in (
        caplog.text
    )
    assert len(readers) == 1
    assert gone(readers[0])
