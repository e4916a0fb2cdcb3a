"""Workloads and checks shared by the cluster tests: event writers, a KV loop, failover clients.

The workloads run in plain threads, each bounded by a stop event the test sets; every outcome a
caller could see (acknowledged, refused, unknown) is recorded with its times, so the checks can
state exactly what must be in the store afterwards.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Notification
from eventsourcing.utils import Environment

from custody.errors import (
    VaultCasConflictError,
    VaultSealedError,
    VaultServerError,
    VaultUnavailableError,
    VaultUnreachableError,
)
from custody.vault.client import VaultClient
from events.jetstream import (
    EventStoreUnavailableError,
    Factory,
    JetStreamApplicationRecorder,
    OutcomeUnknownError,
)
from tests.integration.eventstore.test_semantics import verify_log

T = TypeVar("T")

APP = "custodia"  # the stream is custodia-events, inside the servicio user's permissions
STREAM = "custodia-events"


class Entry(Aggregate):
    """A stand-in aggregate: created, then noted a few times in the same save."""

    @event("Created")
    def __init__(self, writer: int, serial: int) -> None:
        self.writer = writer
        self.serial = serial
        self.notes = 0

    @event("Noted")
    def note(self) -> None:
        self.notes += 1


class LedgerApp(Application[UUID]):
    """An application named ``custodia``: its events go to the ``custodia-events`` stream."""

    name = APP


def new_entry(writer: int, serial: int) -> Entry:
    """An aggregate with 1 to 3 events (one message per save, whatever the count)."""
    entry = Entry(writer, serial)
    for _ in range(serial % 3):
        entry.note()
    return entry


def longest_gap(times: list[float]) -> tuple[float, float]:
    """The longest interval between consecutive ``times``: ``(start, length)``."""
    ends = sorted(times)
    best = (ends[0], 0.0)
    for before, after in itertools.pairwise(ends):
        if after - before > best[1]:
            best = (before, after - before)
    return best


@dataclass
class Save:
    """One acknowledged save: its aggregate, events and notification ids, and when."""

    originator_id: UUID
    events: int
    ids: tuple[int, ...]
    started: float
    ended: float


@dataclass
class EventWriters:
    """``threads`` writers saving new aggregates through one application until stopped."""

    app: LedgerApp
    threads: int = 4
    acknowledged: list[Save] = field(default_factory=list)
    unknown: list[tuple[UUID, int, OutcomeUnknownError]] = field(default_factory=list)
    refused: list[UUID] = field(default_factory=list)
    other_errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._write, args=(n,), name=f"writer-{n}")
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 40.0) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)
        assert not any(w.is_alive() for w in self._workers), "a writer is stuck"

    def _write(self, writer: int) -> None:
        serial = 0
        while not self._stop.is_set():
            serial += 1
            entry = new_entry(writer, serial)
            events = 1 + serial % 3
            started = time.monotonic()
            try:
                recordings = self.app.save(entry)
            except OutcomeUnknownError as e:
                with self._lock:
                    self.unknown.append((entry.id, events, e))
                continue
            except EventStoreUnavailableError:
                with self._lock:
                    self.refused.append(entry.id)
                continue
            except BaseException as e:  # anything else fails the test, after the others stop
                with self._lock:
                    self.other_errors.append(e)
                return
            ids = tuple(r.notification.id for r in recordings)
            with self._lock:
                self.acknowledged.append(Save(entry.id, events, ids, started, time.monotonic()))

    def acks_between(self, start: float, end: float) -> int:
        return sum(1 for s in self.acknowledged if start <= s.ended < end)

    def longest_gap(self) -> tuple[float, float]:
        """The longest time without an acknowledgement: ``(start, length)``."""
        return longest_gap([s.ended for s in self.acknowledged])


def recorder_for(env: dict[str, str]) -> tuple[Factory, JetStreamApplicationRecorder]:
    """A fresh factory (its own connection) and the application recorder of ``custodia``."""
    factory = Factory(Environment(APP, env))
    return factory, factory.application_recorder()


def all_notifications(recorder: JetStreamApplicationRecorder) -> list[Notification]:
    out: list[Notification] = []
    while page := recorder.select_notifications(len(out), 1000, inclusive_of_start=False):
        out.extend(page)
    return out


@dataclass
class LogCheck:
    """What :func:`check_log` found."""

    notifications: int
    settled: int
    never: int
    refused: int


def check_log(recorder: JetStreamApplicationRecorder, *groups: EventWriters) -> LogCheck:
    """Assert the promises: every acknowledged save is stored exactly once, where it was told;
    a save that raised is absent, or settled by ``recorder.settle`` (then stored once); notification
    ids are contiguous and the raw log verifies record by record."""
    acknowledged = [save for writers in groups for save in writers.acknowledged]
    unknown = [entry for writers in groups for entry in writers.unknown]
    refused = [oid for writers in groups for oid in writers.refused]
    for writers in groups:
        assert not writers.other_errors, writers.other_errors
    settled: set[UUID] = set()
    never: set[UUID] = set()
    for originator_id, _, error in unknown:
        (settled if recorder.settle(error) is not None else never).add(originator_id)
    notifications = all_notifications(recorder)
    assert [n.id for n in notifications] == list(range(1, len(notifications) + 1))
    assert verify_log(recorder) == [n.id for n in notifications]
    by_aggregate: dict[UUID | str, list[Notification]] = {}
    for n in notifications:
        by_aggregate.setdefault(n.originator_id, []).append(n)
    for save in acknowledged:  # nothing acknowledged lost, nothing duplicated
        stored = by_aggregate.get(save.originator_id, [])
        assert [n.originator_version for n in stored] == list(range(1, save.events + 1))
        assert tuple(n.id for n in stored) == save.ids
    for originator_id, events, _ in unknown:
        stored = by_aggregate.get(originator_id, [])
        if originator_id in settled:
            assert [n.originator_version for n in stored] == list(range(1, events + 1))
        else:
            assert stored == []  # no ghost
    for originator_id in refused:
        assert by_aggregate.get(originator_id, []) == []  # told "nothing was stored": true
    versions = Counter((n.originator_id, n.originator_version) for n in notifications)
    assert max(versions.values(), default=1) == 1
    return LogCheck(len(notifications), len(settled), len(never), len(refused))


@contextmanager
def closing_app(env: dict[str, str]) -> Iterator[LedgerApp]:
    app = LedgerApp(env=env)
    try:
        yield app
    finally:
        app.close()


# -- OpenBao ------------------------------------------------------------------------------------

# A member that is down, sealed, standing by without an active member to forward to, or failing:
# the next address may serve. Refusals (permission, not found, CAS conflict) are answers.
RETRYABLE = (VaultUnreachableError, VaultUnavailableError, VaultSealedError, VaultServerError)


def vault_client(addr: str, token: str, ca_file: str | None, timeout: float = 3.0) -> VaultClient:
    """A :class:`VaultClient` that verifies the cluster's CA (its transport's ``verify``)."""
    return VaultClient(addr, token, verify=ca_file or True, timeout=timeout)


class FailoverVault:
    """Several members' addresses; an operation that fails for lack of an active member is
    retried on the next address until ``deadline_s`` passes (standbys forward to the active)."""

    def __init__(self, clients: Sequence[VaultClient], deadline_s: float = 30.0) -> None:
        self.clients = list(clients)
        self.current = 0
        self.deadline_s = deadline_s
        self.failures: list[tuple[float, str, str]] = []

    def run(self, operation: Callable[[VaultClient], T]) -> T:
        deadline = time.monotonic() + self.deadline_s
        while True:
            client = self.clients[self.current]
            try:
                return operation(client)
            except RETRYABLE as e:
                if time.monotonic() > deadline:
                    raise
                self.failures.append((time.monotonic(), client.addr, type(e).__name__))
                self.current = (self.current + 1) % len(self.clients)
                time.sleep(0.05)


@dataclass
class KvLoop:
    """A writer of unique keys (check-and-set 0) that reads each back, and a reader of random
    acknowledged keys, through :class:`FailoverVault`, until stopped."""

    vault: FailoverVault
    reader_vault: FailoverVault
    mount: str
    prefix: str = field(default_factory=lambda: "ha-" + uuid.uuid4().hex[:8])
    acknowledged: dict[str, tuple[str, float]] = field(default_factory=dict)
    reads: list[float] = field(default_factory=list)
    ambiguous: int = 0
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def path(self, key: str) -> str:
        return f"{self.mount}/data/{self.prefix}/{key}"

    def start(self) -> None:
        for target in (self._write, self._read):
            worker = threading.Thread(target=self._guard, args=(target,))
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)
        assert not any(w.is_alive() for w in self._workers), "a KV worker is stuck"

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as e:
            self.errors.append(e)

    def _write(self) -> None:
        serial = 0
        while not self._stop.is_set():
            serial += 1
            key, value = f"k{serial:06d}", uuid.uuid4().hex
            try:
                self.write(key, value)
            except VaultCasConflictError:
                # A retry of a write that had landed: it is ours only if the value is.
                self.ambiguous += 1
                assert self.value_of(key) == value, f"{key}: another value than ours"
            self.acknowledged[key] = (value, time.monotonic())
            assert self.value_of(key) == value

    def _read(self) -> None:
        n = 0
        while not self._stop.is_set():
            keys = list(self.acknowledged)
            if not keys:
                time.sleep(0.01)
                continue
            n += 1
            key = keys[(n * 7919) % len(keys)]
            assert self.value_of(key, self.reader_vault) == self.acknowledged[key][0]
            self.reads.append(time.monotonic())

    def write(self, key: str, value: str) -> None:
        body = {"data": {"value": value}, "options": {"cas": 0}}
        self.vault.run(lambda c: c.write(self.path(key), body, operation="ha-write"))

    def value_of(self, key: str, vault: FailoverVault | None = None) -> Any:
        path = self.path(key)
        body = (vault or self.vault).run(lambda c: c.read(path, operation="ha-read"))
        return body["data"]["data"]["value"]

    def longest_gap(self) -> tuple[float, float]:
        """The longest time without an acknowledged write: ``(start, length)``."""
        return longest_gap([t for _, t in self.acknowledged.values()])
