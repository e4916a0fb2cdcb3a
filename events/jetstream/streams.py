"""One JetStream stream as an event store: conditional appends and reads (runs in the loop).

Writes
    A write is a list of records (one per aggregate, plus an optional tracking record). One
    record is one message, published as a request; several are one JetStream atomic batch. Every
    message is conditional on its subject (``Nats-Expected-Last-Subject-Sequence``, the first
    message per subject only); on a numbered stream the first message is also conditional on the
    stream (``Nats-Expected-Last-Sequence``), which is what lets the writer number events
    without gaps: it knows the last record, hence the next notification id, and the server
    refuses the write if anyone appended in between. Writers in one process take turns (an
    asyncio lock); writers in other processes are caught by the server and retried.

    A refusal is resolved by reading the subjects' last records (and the stream's): a version
    already recorded is an ``IntegrityError``; otherwise the write is re-planned and retried.

    A write whose reply never comes may still land, but only as the first message after the
    sequence it was conditional on (its :class:`~events.jetstream.errors.Fence`). The writer
    looks there: its own message means committed; another message means it can never land;
    nothing means the identical message is sent again (it cannot land twice).

Reads
    Batched direct gets from a sequence, filtered by subject, decoded in the loop. A message that
    is not a valid record, or whose first notification id does not continue its predecessor's,
    is skipped and reported (:attr:`EventStream.invalid_messages`, and a log warning).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from events.jetstream import records
from events.jetstream.connection import (
    Connection,
    DeadlineError,
    DirectReply,
    NoAnswerError,
    NoRespondersError,
    NotSentError,
    RawMessage,
)
from events.jetstream.errors import (
    AggregateVersionConflictError,
    EventStoreUnavailableError,
    Fence,
    InvalidRecordError,
    JetStreamAPIError,
    OutcomeUnknownError,
    TrackingConflictError,
)

logger = logging.getLogger("events.jetstream")

EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
EXPECTED_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"

_CONFLICT_CODES = frozenset({10071, 10164})  # wrong last sequence (10164: inside a batch)
_RETRY_CODES = frozenset({10163, 10176})  # not ready yet; batch incomplete
_READ_BATCH = 1000
_READ_MAX_BYTES = 8 * 1024 * 1024
_SUBJECT_CACHE_SIZE = 100_000
# Known positions kept per subject: a cached aggregate at any of these versions is brought up
# to date by reading only the records after it (see ``select_events``).
_MARKS_PER_SUBJECT = 4
_SCAN_SLACK = 32
_SUBJECT = itemgetter(1)  # of a RawMessage (seq, subject, data)
# A reply not here by then is treated as lost: the fence resolves the outcome.
_ATTEMPT_TIMEOUT = 2.0
_CHAIN_CHECK_LIMIT = 10_000  # records a writer re-checks before numbering after others wrote


@dataclass
class Item:
    """One record to append: ``body`` is everything after the record head."""

    subject: str
    kind: int
    body: bytes
    key: UUID | str  # the aggregate id, or the upstream application name
    first_version: int  # first event version, or the tracked notification id
    last_version: int
    count: int  # number of events (0 for tracking)
    positions: tuple[int, ...] = ()  # where the events were in the caller's list
    versions: tuple[int, ...] = ()  # all versions of the events


@dataclass
class _Message:
    subject: str
    payload: bytes
    headers: dict[str, str]
    first_id: int
    count: int
    last_version: int


@dataclass
class _Plan:
    messages: list[_Message]
    expected_tail: int


@dataclass(frozen=True)
class InvalidMessage:
    """A message a reader skipped because it is not a valid record where it stands."""

    stream: str
    seq: int
    subject: str
    reason: str


class _Refused(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class _StaleState(Exception):
    """A state-conditional write lost a race; recompute and retry."""


class PositionIndex:
    """A sparse map from notification id to the stream sequence of the record that starts there."""

    def __init__(self, capacity: int = 8192) -> None:
        self._ids: list[int] = []
        self._seqs: list[int] = []
        self._capacity = capacity

    def add(self, first_id: int, seq: int) -> None:
        if first_id <= 0:
            return
        i = bisect.bisect_left(self._ids, first_id)
        if i < len(self._ids) and self._ids[i] == first_id:
            self._seqs[i] = seq
            return
        self._ids.insert(i, first_id)
        self._seqs.insert(i, seq)
        if len(self._ids) > self._capacity:
            keep = [*range(0, len(self._ids) - 1, 2), len(self._ids) - 1]
            self._ids = [self._ids[k] for k in keep]
            self._seqs = [self._seqs[k] for k in keep]

    def floor(self, target: int) -> tuple[int, int] | None:
        """The greatest known ``(first_id, seq)`` with ``first_id <= target``."""
        i = bisect.bisect_right(self._ids, target)
        return (self._ids[i - 1], self._seqs[i - 1]) if i else None

    def ceiling(self, target: int) -> tuple[int, int] | None:
        """The least known ``(first_id, seq)`` with ``first_id > target``."""
        i = bisect.bisect_right(self._ids, target)
        return (self._ids[i], self._seqs[i]) if i < len(self._ids) else None


@dataclass
class EventStream:
    """The writer state and the reads of one stream, shared by the recorders of a connection."""

    conn: Connection
    name: str
    prefix: str  # "<namespace>.<application>" or "<application>"
    purpose: str  # "events" (numbered) or e.g. "snapshots"
    numbered: bool
    timeout: float
    invalid_messages: deque[InvalidMessage] = field(default_factory=lambda: deque(maxlen=1000))

    def __post_init__(self) -> None:
        self.events_prefix = f"{self.prefix}.{self.purpose}."
        self.events_prefix_bytes = self.events_prefix.encode()
        self.events_filter = f"{self.prefix}.{self.purpose}.>"
        self.tracking_prefix = f"{self.prefix}.tracking."
        self.tracking_filter = f"{self.prefix}.tracking.>"
        self.tail_filter = f"{self.prefix}.>" if self.numbered else self.events_filter
        self.index = PositionIndex()
        self._lock = asyncio.Lock()
        self._tail_seq: int | None = None
        self._next_id = 1
        self._subjects: OrderedDict[str, tuple[int, int | None]] = OrderedDict()
        # Per subject, a few ``(sequence, version)`` marks: no valid record at or before that
        # sequence holds a version above that version (numbered streams keep versions rising).
        self._marks: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
        self._reported: set[int] = set()

    @property
    def subjects(self) -> list[str]:
        if self.numbered:
            return [self.events_filter, self.tracking_filter]
        return [self.events_filter]

    def deadline(self) -> float:
        return time.monotonic() + self.timeout

    @staticmethod
    def _loop_time(deadline: float) -> float:
        """A monotonic ``deadline`` on the running loop's clock."""
        return asyncio.get_running_loop().time() + deadline - time.monotonic()

    def event_subject(self, originator_id: UUID | str) -> str:
        return self.events_prefix + records.subject_token(originator_id)

    def tracking_subject(self, application_name: str) -> str:
        return self.tracking_prefix + records.subject_token(application_name)

    # -- reporting ----------------------------------------------------------------------------

    def report(self, seq: int, subject: bytes | str, reason: str) -> None:
        if seq in self._reported:
            return
        if len(self._reported) > 100_000:
            self._reported.clear()
        self._reported.add(seq)
        name = subject.decode(errors="replace") if isinstance(subject, bytes) else subject
        self.invalid_messages.append(InvalidMessage(self.name, seq, name, reason))
        logger.warning("skipped message %s/%d on %r: %s", self.name, seq, name, reason)

    # -- subject state --------------------------------------------------------------------------

    def _remember(
        self, subject: str, seq: int, last_version: int | None, *, force: bool = False
    ) -> None:
        if last_version is not None and seq > 0:
            self._mark(subject, seq, last_version)
        cached = self._subjects.get(subject)
        if cached is not None and cached[0] > seq and not force:
            return
        self._subjects[subject] = (seq, last_version)
        self._subjects.move_to_end(subject)
        if len(self._subjects) > _SUBJECT_CACHE_SIZE:
            self._subjects.popitem(last=False)

    def _mark(self, subject: str, seq: int, version: int) -> None:
        marks = self._marks.get(subject, ())
        if (seq, version) not in marks:
            marks = tuple(sorted((*marks, (seq, version))))[-_MARKS_PER_SUBJECT:]
        self._marks[subject] = marks
        self._marks.move_to_end(subject)
        if len(self._marks) > _SUBJECT_CACHE_SIZE:
            self._marks.popitem(last=False)

    def _start_after(self, subject: str, gt: int) -> tuple[int, int] | None:
        """The latest mark ``(sequence, version)`` with ``version <= gt``: events above ``gt``
        are all in records after that sequence."""
        best = None
        for seq, version in self._marks.get(subject, ()):
            if version <= gt:
                best = (seq, version)
        return best

    def _forget(self, subject: str) -> None:
        self._subjects.pop(subject, None)
        self._marks.pop(subject, None)

    def record(self, seq: int, subject: bytes, data: bytes) -> records.Record | None:
        """The record in a message, if valid where it stands; otherwise reported and ``None``."""
        try:
            record = records.decode(data)
        except InvalidRecordError as e:
            self.report(seq, subject, e.reason)
            return None
        if isinstance(record, records.TrackingRecord):
            expected = self.tracking_subject(record.application_name)
        else:
            expected = self.event_subject(record.originator_id)
        if subject.decode(errors="replace") != expected:
            self.report(seq, subject, "subject does not name the record's key")
            return None
        if self.numbered != bool(record.first_id):
            self.report(seq, subject, "notification id where none belongs, or missing")
            return None
        return record

    def _version_of(self, seq: int, subject: bytes, data: bytes) -> int | None:
        """The last version (or tracked id) a valid record stands for; ``None`` if invalid."""
        record = self.record(seq, subject, data)
        if isinstance(record, records.TrackingRecord):
            return record.notification_id
        if isinstance(record, records.EventsRecord):
            return record.last_version
        return None

    async def subject_state(self, subject: str, deadline: float) -> tuple[int, int | None]:
        """``(last sequence, last version)`` of ``subject`` as the server has it now."""
        reply = await self.conn.direct_get(self.name, {"last_by_subj": subject}, deadline)
        if not reply.messages:
            state: tuple[int, int | None] = (0, None)
        else:
            seq, subj, data = reply.messages[0]
            version = self._version_of(seq, subj, data)
            if version is None or records.peek(data)[0] == records.KIND_LATE_EVENTS:
                # The last message is not a record, or not the highest: look at them all.
                last: int | None = None
                for m_seq, m_subj, m_data in await self.read_subject(subject, deadline):
                    v = self._version_of(m_seq, m_subj, m_data)
                    if v is not None and (last is None or v > last):
                        last = v
                version = last
            state = (seq, version)
        self._remember(subject, *state)
        return state

    async def read_tail(
        self, deadline: float, known: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """``(last stream sequence, next notification id)`` of a numbered stream.

        From a ``known`` good ``(sequence, next id)``, the records written since are checked
        like a reader checks them (a forged record cannot make the writer number wrongly);
        without one, the last valid record is trusted.
        """
        reply = await self.conn.direct_get(self.name, {"last_by_subj": self.tail_filter}, deadline)
        if not reply.messages:
            return 0, 1
        tail_seq = reply.messages[0][0]
        if known is not None and 0 < tail_seq - known[0] <= _CHAIN_CHECK_LIMIT:
            seq, next_id = known
            while seq < tail_seq:
                batch = await self.read_messages(seq + 1, 1000, deadline)
                if not batch:
                    break
                for m_seq, subject, data in batch:
                    seq = m_seq
                    record = self.record(m_seq, subject, data)
                    if record is None:
                        continue
                    if record.first_id != next_id:
                        reason = f"notification id {record.first_id}, expected {next_id}"
                        self.report(m_seq, subject, reason)
                        continue
                    next_id = record.next_id
            return tail_seq, next_id
        message: RawMessage | None = reply.messages[0]
        seq = tail_seq
        while seq >= 1:
            if message is not None:
                record = self.record(*message)
                if record is not None:
                    return tail_seq, record.next_id
            seq -= 1  # walk back over what is not a record (rare: foreign messages)
            if seq >= 1:
                previous = await self.conn.direct_get(self.name, {"seq": seq}, deadline)
                message = previous.messages[0] if previous.messages else None
        return tail_seq, 1

    # -- appending --------------------------------------------------------------------------

    async def append(self, items: list[Item], deadline: float) -> list[tuple[int, int]]:
        """Append ``items`` atomically; returns ``(sequence, first notification id)`` per item."""
        if not self.numbered:
            return await self._append(items, deadline)
        if self._lock.locked():
            try:
                async with asyncio.timeout_at(self._loop_time(deadline)):
                    await self._lock.acquire()
            except TimeoutError:
                raise EventStoreUnavailableError(
                    f"timed out waiting for other writers of {self.name}; nothing was stored"
                ) from None
        else:
            await self._lock.acquire()  # free: returns at once, no task, no timer
        try:
            return await self._append(items, deadline)
        finally:
            self._lock.release()

    async def append_with_state(
        self,
        make_item: Callable[[bytes | None], Item],
        deadline: float,
    ) -> None:
        """Append a tracking record made from the state in the stream's last tracking record.

        The write is conditional on the stream's last sequence, so the state it was made from is
        still the latest when it lands (a numbered stream only).
        """
        assert self.numbered
        while True:
            async with self._lock:
                try:
                    known = (self._tail_seq, self._next_id) if self._tail_seq is not None else None
                    self._tail_seq, self._next_id = await self.read_tail(deadline, known)
                    state = await self.tracking_state(deadline, up_to=self._tail_seq)
                    await self._append([make_item(state)], deadline, rebase=False)
                    return
                except _StaleState:
                    continue
                except DeadlineError:
                    raise EventStoreUnavailableError(
                        f"NATS did not answer within {self.timeout:g} s; nothing was stored"
                    ) from None

    async def tracking_state(self, deadline: float, up_to: int | None = None) -> bytes | None:
        """The payload of the stream's last tracking record (``None`` if there is none)."""
        reply = await self.conn.direct_get(
            self.name, {"last_by_subj": self.tracking_filter}, deadline
        )
        for seq, subject, data in reply.messages:
            if up_to is not None and seq > up_to:
                raise _StaleState
            try:
                record = records.decode(data)
            except InvalidRecordError as e:
                self.report(seq, subject, e.reason)
                return None
            if isinstance(record, records.TrackingRecord):
                return record.payload
        return None

    async def _append(
        self, items: list[Item], deadline: float, *, rebase: bool = True
    ) -> list[tuple[int, int]]:
        fence: Fence | None = None
        plan: _Plan | None = None
        conflicts = 0
        try:
            if self.numbered and self._tail_seq is None:
                self._tail_seq, self._next_id = await self.read_tail(deadline)
            while True:
                if fence is not None and plan is not None:
                    found = await self._probe(fence, deadline)
                    if found:
                        return self._committed(plan, found + len(plan.messages) - 1)
                    if found is not None:  # another message took the position: ours never can
                        fence = None
                        plan = None
                        await self._refresh(items, deadline)
                if plan is None:
                    late = await self._check_versions(items, deadline)
                    plan = self._plan(items, late)
                try:
                    last_seq = await self._send(plan.messages, deadline)
                except NotSentError:
                    await self.conn.wait_connected(deadline)
                    await asyncio.sleep(0.01)
                    continue
                except NoAnswerError:
                    fence = self._fence(plan)
                    continue
                except NoRespondersError:
                    await self.conn.check_stream(self.name, deadline)
                    await asyncio.sleep(0.1)
                    continue
                except _Refused as e:
                    if e.code in _CONFLICT_CODES:
                        if fence is not None:
                            continue  # look at the fenced position again
                        conflicts += 1
                        await self._refresh(items, deadline)
                        if not rebase:
                            await self._check_versions(items, deadline)
                            raise _StaleState from None
                        plan = None
                        if conflicts > 2:
                            jitter = random.uniform(0, min(0.01 * conflicts, 0.2))  # noqa: S311
                            await asyncio.sleep(jitter)
                        continue
                    if e.code in _RETRY_CODES:
                        await asyncio.sleep(0.02)
                        continue
                    raise JetStreamAPIError(e.code, e.description) from None
                return self._committed(plan, last_seq)
        except DeadlineError:
            if fence is not None:
                raise OutcomeUnknownError(
                    f"no acknowledgement from NATS within {self.timeout:g} s: the write to "
                    f"{fence.subject} may or may not be stored (settle it with the recorder)",
                    fence,
                ) from None
            raise EventStoreUnavailableError(
                f"NATS did not answer within {self.timeout:g} s; nothing was stored"
            ) from None

    async def _check_versions(self, items: list[Item], deadline: float) -> dict[str, int]:
        """Refuse versions already recorded; return the subjects written *late*, with their top.

        On the log a version must be above the aggregate's last. On other streams (snapshots)
        versions need only be unique: one below the top is checked against all recorded ones.
        """
        late: dict[str, int] = {}
        seen: set[str] = set()
        for item in items:
            if item.subject in seen:
                continue
            seen.add(item.subject)
            cached = self._subjects.get(item.subject)
            if cached is None or cached[1] is None or item.first_version > cached[1]:
                continue
            if item.kind == records.KIND_TRACKING:
                raise TrackingConflictError(str(item.key), item.first_version, cached[1])
            if self.numbered:
                raise AggregateVersionConflictError(item.key, item.first_version, cached[1])
            seq, recorded = await self._all_versions(item.subject, deadline)
            top = max(recorded, default=0)
            self._remember(item.subject, seq, top, force=True)
            for other in items:
                if other.subject == item.subject:
                    for version in other.versions:
                        if version in recorded:
                            raise AggregateVersionConflictError(item.key, version, version)
            late[item.subject] = top
        return late

    async def _all_versions(self, subject: str, deadline: float) -> tuple[int, set[int]]:
        versions: set[int] = set()
        last_seq = 0
        for seq, subj, data in await self.read_subject(subject, deadline):
            last_seq = seq
            try:
                record = records.decode(data)
            except InvalidRecordError as e:
                self.report(seq, subj, e.reason)
                continue
            if isinstance(record, records.EventsRecord):
                versions.update(e.originator_version for e in record.events)
        return last_seq, versions

    def _plan(self, items: list[Item], late: dict[str, int]) -> _Plan:
        next_id = self._next_id if self.numbered else 0
        messages: list[_Message] = []
        seen: set[str] = set()
        for item in items:
            headers: dict[str, str] = {}
            if item.subject not in seen:
                seen.add(item.subject)
                cached = self._subjects.get(item.subject)
                headers[EXPECTED_SUBJECT_SEQ] = str(cached[0] if cached else 0)
            kind, top = item.kind, item.last_version
            if item.subject in late:
                if item.last_version < late[item.subject]:
                    kind = records.KIND_LATE_EVENTS
                top = max(top, late[item.subject])
                late[item.subject] = top
            payload = records.head(kind, next_id) + item.body
            messages.append(_Message(item.subject, payload, headers, next_id, item.count, top))
            if self.numbered:
                next_id += item.count
        expected_tail = self._tail_seq or 0
        if self.numbered:
            messages[0].headers = {EXPECTED_LAST_SEQ: str(expected_tail), **messages[0].headers}
        return _Plan(messages, expected_tail)

    def _fence(self, plan: _Plan) -> Fence:
        first = plan.messages[0]
        if self.numbered:
            filter_subject, expected = self.tail_filter, plan.expected_tail
        else:
            filter_subject, expected = first.subject, int(first.headers[EXPECTED_SUBJECT_SEQ])
        messages = tuple((m.subject, m.payload, tuple(m.headers.items())) for m in plan.messages)
        return Fence(self.name, filter_subject, expected, messages)

    async def _probe(self, fence: Fence, deadline: float) -> int | None:
        """Sequence of our fenced message if it landed; 0 if another took its place; else None."""
        reply = await self.conn.direct_get(
            self.name, {"seq": fence.expected + 1, "next_by_subj": fence.filter_subject}, deadline
        )
        if not reply.messages:
            return None
        seq, subject, data = reply.messages[0]
        if subject == fence.subject.encode() and data == fence.payload:
            return seq
        return 0

    async def settle(self, fence: Fence, deadline: float) -> int | None:
        """Resolve an unknown outcome: the first sequence if committed (now or before), else None.

        If the fenced position is still free, the identical write is sent again: being
        conditional on the same position, it can land only once.
        """
        try:
            async with self._lock:
                while True:
                    found = await self._probe(fence, deadline)
                    if found is not None:
                        return found or None
                    messages = [
                        _Message(subject, payload, dict(headers), 0, 0, 0)
                        for subject, payload, headers in fence.messages
                    ]
                    try:
                        await self._send(messages, deadline)
                    except (NotSentError, NoAnswerError, NoRespondersError):
                        await self.conn.wait_connected(deadline)
                    except _Refused as e:
                        if e.code not in _CONFLICT_CODES and e.code not in _RETRY_CODES:
                            raise JetStreamAPIError(e.code, e.description) from None
                    finally:
                        self._tail_seq = None  # re-read before the next write
                        for subject, _, _ in fence.messages:
                            self._forget(subject)
        except DeadlineError:
            raise EventStoreUnavailableError(
                f"NATS did not answer within {self.timeout:g} s; the outcome is still unknown"
            ) from None

    def _committed(self, plan: _Plan, last_seq: int) -> list[tuple[int, int]]:
        first_seq = last_seq - len(plan.messages) + 1
        results = []
        for i, message in enumerate(plan.messages):
            seq = first_seq + i
            self._remember(message.subject, seq, message.last_version)
            results.append((seq, message.first_id))
        if self.numbered:
            last = plan.messages[-1]
            self._tail_seq = last_seq
            self._next_id = last.first_id + last.count
            for (seq, first_id), message in zip(results, plan.messages, strict=True):
                if message.count:
                    self.index.add(first_id, seq)
                    break
        return results

    async def _refresh(self, items: list[Item], deadline: float) -> None:
        subjects = list(dict.fromkeys(item.subject for item in items))
        await asyncio.gather(*(self.subject_state(s, deadline) for s in subjects))
        if self.numbered:
            known = (self._tail_seq, self._next_id) if self._tail_seq is not None else None
            self._tail_seq, self._next_id = await self.read_tail(deadline, known)

    def _attempt_timeout(self, deadline: float) -> float:
        return max(0.05, min(deadline - time.monotonic(), _ATTEMPT_TIMEOUT))

    async def _send(self, messages: list[_Message], deadline: float) -> int:
        """Publish one message, or an atomic batch; returns the last sequence."""
        timeout = self._attempt_timeout(deadline)
        if len(messages) == 1:
            m = messages[0]
            return self._ack(await self.conn.request(m.subject, m.payload, m.headers, timeout), 1)
        batch_id = uuid.uuid4().hex
        last = len(messages)
        for i, m in enumerate(messages, 1):
            headers = {**m.headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)}
            if i == 1:
                try:
                    reply = await self.conn.request(m.subject, m.payload, headers, timeout)
                except NoAnswerError:
                    raise NotSentError from None  # no commit was sent: the batch cannot land
                if "error" in reply:
                    self._ack(reply, last)
            elif i < last:
                await self.conn.publish(m.subject, m.payload, headers)
            else:
                headers["Nats-Batch-Commit"] = "1"
                reply = await self.conn.request(m.subject, m.payload, headers, timeout)
                return self._ack(reply, last)
        raise AssertionError("unreachable")  # pragma: no cover

    def _ack(self, reply: dict[str, object], count: int) -> int:
        error = reply.get("error")
        if isinstance(error, dict):
            raise _Refused(int(error.get("err_code", 0)), str(error.get("description", "")))
        if reply.get("stream") != self.name:
            raise JetStreamAPIError(0, f"acknowledged by stream {reply.get('stream')!r}")
        if count > 1 and reply.get("count") != count:
            raise JetStreamAPIError(0, f"batch of {count} acknowledged as {reply.get('count')}")
        seq = reply.get("seq")
        if not isinstance(seq, int):
            raise JetStreamAPIError(0, f"acknowledgement without sequence: {reply}")
        return seq

    # -- reading -----------------------------------------------------------------------------

    async def read_messages(self, start_seq: int, limit: int, deadline: float) -> list[RawMessage]:
        """Up to ``limit`` messages of the stream, any subject, from ``start_seq`` on."""
        query = {
            "seq": max(1, start_seq),
            "next_by_subj": self.tail_filter,
            "batch": max(1, limit),
            "max_bytes": _READ_MAX_BYTES,
        }
        return (await self.conn.direct_get(self.name, query, deadline)).messages

    async def read_subject(
        self, subject: str, deadline: float, start_seq: int = 1
    ) -> list[RawMessage]:
        """Every message of ``subject`` from ``start_seq`` on."""
        out: list[RawMessage] = []
        seq = start_seq
        while True:
            reply = await self._read(seq, subject, _READ_BATCH, deadline)
            out.extend(reply.messages)
            if not reply.messages or reply.pending == 0:
                return out
            seq = reply.messages[-1][0] + 1

    async def _read(self, seq: int, subject: str, batch: int, deadline: float) -> DirectReply:
        query = {"seq": seq, "next_by_subj": subject, "batch": batch, "max_bytes": _READ_MAX_BYTES}
        return await self.conn.direct_get(self.name, query, deadline)

    async def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
        deadline: float,
    ) -> list[StoredEvent]:
        subject = self.event_subject(originator_id)
        if desc and limit is not None and lte is None and (self.numbered or limit == 1):
            # The last record usually holds what is asked for (e.g. the latest snapshot).
            reply = await self.conn.direct_get(self.name, {"last_by_subj": subject}, deadline)
            if not reply.messages:
                return []
            seq, subj, data = reply.messages[0]
            record = self._events_record(seq, subj, data, originator_id)
            if record is not None and not record.late:
                wanted = [
                    e for e in reversed(record.events) if gt is None or e.originator_version > gt
                ]
                if len(wanted) >= limit or (
                    gt is not None and record.events[0].originator_version <= gt
                ):
                    return wanted[:limit]
        top: int | None = None
        start_seq = 1
        mark = self._start_after(subject, gt) if self.numbered and gt is not None else None
        if mark is not None:
            # Fast-forwarding a cached aggregate: only the records after a known position.
            start_seq, top = mark[0] + 1, mark[1]
        messages = await self.read_subject(subject, deadline, start_seq)
        events, top = self._events_of(messages, originator_id, top)
        if messages:
            self._remember(subject, messages[-1][0], top)
        if gt is not None or lte is not None:
            events = [
                e
                for e in events
                if (gt is None or e.originator_version > gt)
                and (lte is None or e.originator_version <= lte)
            ]
        if desc:
            events.reverse()
        return events[:limit] if limit is not None else events

    async def last_record_events(
        self, originator_id: UUID | str, deadline: float
    ) -> list[StoredEvent]:
        """The events of the aggregate's last record, in order (one direct get)."""
        subject = self.event_subject(originator_id)
        reply = await self.conn.direct_get(self.name, {"last_by_subj": subject}, deadline)
        if not reply.messages:
            return []
        seq, subj, data = reply.messages[0]
        record = self._events_record(seq, subj, data, originator_id)
        return list(record.events) if record is not None else []

    async def select_events_since(
        self, originator_id: UUID | str, start: datetime, deadline: float
    ) -> list[StoredEvent]:
        """The events of the aggregate's records stored at or after ``start`` (by the server's
        clock), in order: the recent history of a long-lived aggregate without reading it from
        its first record. A record whose versions do not follow the previous one's is reported
        and left out, as :meth:`select_events` does."""
        subject = self.event_subject(originator_id)
        query = {
            "start_time": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "next_by_subj": subject,
            "batch": _READ_BATCH,
            "max_bytes": _READ_MAX_BYTES,
        }
        reply = await self.conn.direct_get(self.name, query, deadline)
        messages = list(reply.messages)
        if messages and reply.pending:
            messages.extend(await self.read_subject(subject, deadline, messages[-1][0] + 1))
        return self._events_of(messages, originator_id, None)[0]

    def _events_of(
        self, messages: Sequence[RawMessage], originator_id: UUID | str, top: int | None
    ) -> tuple[list[StoredEvent], int | None]:
        """The events of an aggregate's records in ``messages`` (in order) and the last version
        among them; a record whose versions do not follow ``top`` or the previous record's is
        reported and left out."""
        events: list[StoredEvent] = []
        for seq, subj, data in messages:
            record = self._events_record(seq, subj, data, originator_id)
            if record is None:
                continue
            if self.numbered and top is not None and record.events[0].originator_version <= top:
                self.report(seq, subj, "versions do not follow the previous record's")
                continue
            events.extend(record.events)
            top = max(top or record.last_version, record.last_version)
        if not self.numbered:
            events.sort(key=lambda e: e.originator_version)  # late records: versions unique only
        return events, top

    def _events_record(
        self, seq: int, subject: bytes, data: bytes, originator_id: UUID | str
    ) -> records.EventsRecord | None:
        try:
            record = records.decode(data)
        except InvalidRecordError as e:
            self.report(seq, subject, e.reason)
            return None
        if not isinstance(record, records.EventsRecord) or str(record.originator_id) != str(
            originator_id
        ):
            self.report(seq, subject, "not an events record of this aggregate")
            return None
        return record

    async def locate(self, target: int, deadline: float) -> int:
        """A stream sequence at or before the record holding notification ``target``.

        Known positions come from an index of earlier reads and writes; between them, a binary
        search over sequences with single direct gets narrows it down to a few records.
        """
        if target <= 1:
            return 1
        floor = self.index.floor(target)
        if floor is not None and floor[0] == target:
            return floor[1]
        lo = floor[1] if floor else 1
        ceiling = self.index.ceiling(target)
        if ceiling is not None:
            hi = ceiling[1]
        else:
            reply = await self.conn.direct_get(
                self.name, {"last_by_subj": self.events_filter}, deadline
            )
            if not reply.messages:
                return 1
            hi = reply.messages[0][0] + 1
        while hi - lo > _SCAN_SLACK:
            mid = (lo + hi) // 2
            reply = await self.conn.direct_get(
                self.name, {"seq": mid, "next_by_subj": self.events_filter}, deadline
            )
            if not reply.messages or reply.messages[0][0] >= hi:
                hi = mid
                continue
            seq, _, data = reply.messages[0]
            try:
                _, first_id, count = records.peek(data)
            except InvalidRecordError:
                hi = mid  # unreadable: stay conservative, the read will report it
                continue
            self.index.add(first_id, seq)
            if first_id <= target < first_id + count:
                return seq
            if first_id <= target:
                lo = seq
            else:
                hi = seq
        return lo

    async def fetch(
        self, seq: int, deadline: float, batch: int = _READ_BATCH, *, filtered: bool = True
    ) -> DirectReply:
        """Raw events records from ``seq`` on (at most ``batch``).

        Unfiltered, the reply holds every message of the stream from ``seq`` on (tracking
        records too, which :meth:`decode_batch` drops): the server answers that about 2.5 times
        faster than a read filtered by the events wildcard (nats-server 2.15, file storage), so
        sequential readers read unfiltered unless the stream turns out to be mostly not events
        (:meth:`mostly_foreign`).
        """
        if filtered:
            return await self._read(seq, self.events_filter, batch, deadline)
        query = {"seq": seq, "batch": batch, "max_bytes": _READ_MAX_BYTES}
        return await self.conn.direct_get(self.name, query, deadline)

    def mostly_foreign(self, messages: list[RawMessage]) -> bool:
        """Whether most of an unfiltered read's ``messages`` are not events records."""
        # Counted without a Python frame per message (a fifth of a generator's time; every
        # page a subscription reads is counted).
        subjects = map(_SUBJECT, messages)
        events = sum(map(bytes.startswith, subjects, repeat(self.events_prefix_bytes)))
        return (len(messages) - events) * 2 > len(messages)

    def decode_batch(
        self,
        messages: list[RawMessage],
        first: int,
        next_id: int | None,
        topics: frozenset[str] | None,
    ) -> tuple[list[Notification], int | None]:
        """Notifications with ids ``>= first`` (of ``topics``, if given) in a batch of records.

        ``next_id`` is the id the batch's first record should start with (``None``: any); the
        id the record after the batch should start with is returned with the notifications.
        """
        out: list[Notification] = []
        prefix = self.events_prefix_bytes
        for seq, subject, data in messages:
            if not subject.startswith(prefix):
                continue  # another subject of the stream (an unfiltered read): not an event
            try:
                notifications = records.decode_notifications(data, subject, prefix)
            except InvalidRecordError as e:
                self.report(seq, subject, e.reason)
                continue
            first_id = notifications[0].id
            if next_id is None:
                self.index.add(first_id, seq)
            elif first_id != next_id:
                self.report(seq, subject, f"notification id {first_id}, expected {next_id}")
                continue
            next_id = first_id + len(notifications)
            if next_id <= first:
                continue
            if first_id < first:
                notifications = notifications[first - first_id :]
            if topics is None:
                out.extend(notifications)
            else:
                out.extend(n for n in notifications if n.topic in topics)
        if messages and next_id is not None:
            self.index.add(next_id, messages[-1][0] + 1)
        return out, next_id

    async def read_page(
        self,
        seq: int,
        first: int,
        *,
        stop: int | None,
        topics: frozenset[str] | None,
        limit: int,
        batch: int,
        deadline: float,
    ) -> list[Notification]:
        """Up to ``limit`` notifications with ids ``>= first``, ``<= stop``, from ``seq`` on."""
        out: list[Notification] = []
        next_id: int | None = None
        filtered = False
        while True:
            reply = await self.fetch(seq, deadline, batch, filtered=filtered)
            messages = reply.messages
            if not messages:
                return out
            filtered = filtered or self.mostly_foreign(messages)
            notifications, next_id = self.decode_batch(messages, first, next_id, topics)
            if stop is not None:
                notifications = [n for n in notifications if n.id <= stop]
            out.extend(notifications)
            if len(out) >= limit:
                return out[:limit]
            if reply.pending == 0 or (stop is not None and next_id is not None and next_id > stop):
                return out
            seq = messages[-1][0] + 1
            if next_id is not None:
                first = max(first, next_id)
            batch = _READ_BATCH

    async def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None,
        topics: Sequence[str],
        inclusive_of_start: bool,
        deadline: float,
    ) -> list[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        first = max(first, 1)
        if limit <= 0 or (stop is not None and stop < first):
            return []
        seq = await self.locate(first, deadline)
        return await self.read_page(
            seq,
            first,
            stop=stop,
            topics=frozenset(topics) if topics else None,
            limit=limit,
            batch=min(_READ_BATCH, limit + _SCAN_SLACK),
            deadline=deadline,
        )

    async def max_notification_id(self, deadline: float) -> int | None:
        _, next_id = await self.read_tail(deadline)
        return next_id - 1 if next_id > 1 else None
