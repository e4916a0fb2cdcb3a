"""Leaf bytes of a ledger entry, and the record-level checks that complement the Merkle checks.

:func:`leaf_bytes` is the single definition of what the Merkle tree commits to for one stream
message (format in the package docstring). Everything that hashes an entry calls it: the
follower, bundles (which store leaf bytes as their event data) and proofs. Online verification
hashes them as :func:`leaf_hash` does (inlined in :meth:`RecordChecker.check_batch`), without
building them; a unit test holds both equal to the leaf hash of :func:`leaf_bytes`.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from enum import StrEnum

from events.jetstream import records
from events.jetstream.errors import InvalidRecordError
from events.merkle import LedgerError

__all__ = [
    "LEAF_FORMAT",
    "MalformedLeafError",
    "RecordChecker",
    "RecordProblem",
    "RecordProblemKind",
    "leaf_bytes",
    "leaf_hash",
    "parse_leaf",
]

LEAF_FORMAT = 1
_HEAD = struct.Struct(">BHI")  # format, subject length, data length
_HEAD_SIZE = _HEAD.size


class MalformedLeafError(LedgerError):
    """Bytes that are not a leaf of format 1 (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def leaf_bytes(subject: bytes, data: bytes) -> bytes:
    """``0x01 | u16 len(subject) | u32 len(data) | subject | data``, big-endian."""
    return _HEAD.pack(LEAF_FORMAT, len(subject), len(data)) + subject + data


_HASH_HEAD = struct.Struct(">BBHI")  # the Merkle leaf prefix 0x00, then the leaf head
_sha256 = hashlib.sha256


def leaf_hash(subject: bytes, data: bytes) -> bytes:
    """``H(0x00 || leaf_bytes(subject, data))`` (RFC 9162 §2.1.1), without building the leaf."""
    return _sha256(
        b"".join((_HASH_HEAD.pack(0, LEAF_FORMAT, len(subject), len(data)), subject, data))
    ).digest()


def parse_leaf(leaf: bytes) -> tuple[bytes, bytes]:
    """``(subject, data)`` of a leaf; raises :class:`MalformedLeafError`."""
    if len(leaf) < _HEAD_SIZE:
        raise MalformedLeafError("shorter than a leaf head")
    fmt, subject_len, data_len = _HEAD.unpack_from(leaf)
    if fmt != LEAF_FORMAT:
        raise MalformedLeafError(f"unknown leaf format {fmt}")
    if len(leaf) != _HEAD_SIZE + subject_len + data_len:
        raise MalformedLeafError("leaf length does not match its head")
    end = _HEAD_SIZE + subject_len
    return leaf[_HEAD_SIZE:end], leaf[end:]


class RecordProblemKind(StrEnum):
    """What a record-level check found (positions are entries, i.e. stream sequences)."""

    MALFORMED_LEAF = "malformed_leaf"
    """A bundle's event data is not leaf bytes."""
    INVALID_RECORD = "invalid_record"
    """The message is not a Custodia record, or its subject does not name its aggregate."""
    NUMBERING = "numbering"
    """The entry's first notification id does not follow the previous entry's (``expected``)."""
    VERSION_ORDER = "version_order"
    """The aggregate's first version here does not follow its previous one (``expected``)."""


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """One record-level finding at entry ``sequence``."""

    kind: RecordProblemKind
    sequence: int
    detail: str
    expected: int | None = None
    found: int | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """What an entry holds: notification ids ``first_id`` .. ``first_id + count - 1``."""

    sequence: int
    subject: str
    first_id: int
    count: int
    tracking: bool


def entry_info(sequence: int, subject: bytes, data: bytes) -> EntryInfo | None:
    """The notification ids an entry holds, or None if it is not a record."""
    try:
        kind, first_id, count = records.peek(data)
    except InvalidRecordError:
        return None
    return EntryInfo(
        sequence,
        subject.decode(errors="replace"),
        first_id,
        count,
        kind == records.KIND_TRACKING,
    )


class RecordChecker:
    """Decodes each entry in order and checks numbering, subjects and aggregate versions.

    Feed it every entry in stream order (:meth:`check`, or :meth:`check_leaf` for bundle data).
    A hole in the sequences (reported by the Merkle verifier as a gap) resynchronises the
    numbering instead of being reported twice, and from then on a version that jumps forward is
    put down to the missing entries (one that goes back is still reported). After a break, the
    expected id is the furthest one seen, so two swapped entries are both named and the entries
    after them are not.
    """

    def __init__(self, max_problems: int = 100) -> None:
        self.max_problems = max_problems
        self.problems: list[RecordProblem] = []
        self.omitted = 0
        self.entries = 0
        self._last_seq = 0
        self._after_hole = False
        self._next_id: int | None = None
        self._prefix: bytes | None = None
        # Each aggregate's (or tracking subject's) last version, in two parts by the subject's
        # form alone: ``<prefix>.events.<UUID text>`` (what check_batch looks up), and others.
        self._uuid_versions: dict[bytes, int] = {}
        self._versions: dict[bytes, int] = {}

    def _add(self, problem: RecordProblem) -> None:
        if len(self.problems) >= self.max_problems:
            self.omitted += 1
        else:
            self.problems.append(problem)

    def check_leaf(self, sequence: int, leaf: bytes) -> None:
        try:
            subject, data = parse_leaf(leaf)
        except MalformedLeafError as exc:
            self._last_seq = sequence
            self._next_id = None
            self.entries += 1
            self._add(RecordProblem(RecordProblemKind.MALFORMED_LEAF, sequence, exc.reason))
            return
        self.check(sequence, subject, data)

    def check_batch(self, batch: list[tuple[int, bytes, bytes]]) -> list[bytes]:
        """:meth:`check` every entry of ``batch`` in order; return their leaf hashes.

        Same findings and state as :meth:`check`, entry by entry (unit tests hold them equal,
        on valid and on tampered ledgers): the usual entry is checked inline
        (:meth:`_usual`), any other goes through :meth:`check`.
        """
        sha, pack_head = _sha256, _HASH_HEAD.pack
        hashes = [
            sha(pack_head(0, LEAF_FORMAT, len(subject), len(data)) + subject + data).digest()
            for _, subject, data in batch
        ]
        self._usual(batch)
        return hashes

    def _usual(self, batch: list[tuple[int, bytes, bytes]]) -> None:
        """Check each entry: the usual one inline (the next sequence and notification id; one
        event of a UUID aggregate on its own subject; the aggregate's next version, or its
        first), any other through :meth:`check`."""
        fast, fast_size = _REC_FAST.unpack_from, _REC_FAST_SIZE
        usual_head, usual_id, usual_count = _USUAL_HEAD, _USUAL_ID, _USUAL_COUNT
        versions = self._uuid_versions
        version_of = versions.get
        uuid_text = _UUID_TEXT.fullmatch
        last_seq, next_id, entries = self._last_seq, self._next_id, self.entries
        prefix = self._prefix
        events = b"" if prefix is None else prefix + b".events."
        for seq, subject, data in batch:
            size = len(data)
            if seq == last_seq + 1 and size >= fast_size:
                head, first_id, id_head, uid, count, version, topic_len, state_len = fast(data)
                if (
                    first_id == next_id  # never when next_id is None (then prefix may be too)
                    and head == usual_head
                    and id_head == usual_id
                    and count == usual_count
                    and fast_size + topic_len + state_len == size
                    and subject == events + uid
                ):
                    previous = version_of(subject)
                    if (
                        version == previous + 1
                        if previous is not None
                        else uuid_text(uid) is not None  # a new aggregate: the UUID check
                    ):
                        try:
                            data[fast_size : fast_size + topic_len].decode()
                        except UnicodeDecodeError:
                            pass
                        else:
                            versions[subject] = version
                            next_id = first_id + 1
                            last_seq = seq
                            entries += 1
                            continue
            self._last_seq, self._next_id, self.entries = last_seq, next_id, entries
            self.check(seq, subject, data)
            last_seq, next_id, entries = self._last_seq, self._next_id, self.entries
            prefix = self._prefix
            events = b"" if prefix is None else prefix + b".events."
        self._last_seq, self._next_id, self.entries = last_seq, next_id, entries

    def check(self, sequence: int, subject: bytes, data: bytes) -> None:
        self.entries += 1
        if sequence != self._last_seq + 1:
            self._next_id = None
            self._after_hole = True
        self._last_seq = sequence
        try:
            first_id, count, tail, first_version, last_version = _parse_record(data)
        except (InvalidRecordError, struct.error, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, InvalidRecordError) else "malformed record"
            self._invalid(sequence, subject, reason)
            return
        prefix = self._prefix
        if not subject.endswith(tail):
            self._invalid(sequence, subject, "the subject does not name the record's aggregate")
            return
        if prefix is None:
            self._prefix = subject[: -len(tail)]
        elif len(subject) != len(prefix) + len(tail) or not subject.startswith(prefix):
            self._invalid(sequence, subject, "the subject is outside the application's ledger")
            return
        # The checks below are inlined for the common case (the verifier's hot path).
        expected = self._next_id
        if first_id == expected or (expected is None and (first_id == 1 or sequence != 1)):
            self._next_id = first_id + count
        else:
            self._numbering(sequence, subject, first_id, count)
        if count:
            versions = self._uuid_versions if _is_uuid_tail(tail) else self._versions
            previous = versions.get(subject)
            if previous is None or first_version == previous + 1:
                versions[subject] = last_version
            elif first_version > previous and self._after_hole:
                versions[subject] = last_version  # the missing entries may hold them
            else:
                self._version(sequence, subject, previous, first_version)
                versions[subject] = max(previous, last_version)

    def _invalid(self, sequence: int, subject: bytes, reason: str) -> None:
        self._next_id = None
        self._add(
            RecordProblem(
                RecordProblemKind.INVALID_RECORD,
                sequence,
                reason,
                subject=subject.decode(errors="replace"),
            )
        )

    def _numbering(self, sequence: int, subject: bytes, first_id: int, count: int) -> None:
        expected = 1 if self._next_id is None else self._next_id
        self._add(
            RecordProblem(
                RecordProblemKind.NUMBERING,
                sequence,
                f"entry {sequence} starts at notification id {first_id}, expected {expected}",
                expected=expected,
                found=first_id,
                subject=subject.decode(errors="replace"),
            )
        )
        self._next_id = max(expected, first_id + count)

    def _version(self, sequence: int, subject: bytes, previous: int, first: int) -> None:
        self._add(
            RecordProblem(
                RecordProblemKind.VERSION_ORDER,
                sequence,
                f"version {first} follows version {previous} on {subject!r}",
                expected=previous + 1,
                found=first,
                subject=subject.decode(errors="replace"),
            )
        )


# The record layout of events.jetstream.records (format CSR1), parsed only as far as the checks
# need: the reader's decode() builds an object per event, five times slower. A unit test checks
# that both accept and refuse the same bytes.
_REC_HEAD = struct.Struct("<4sBQ")
_REC_ID = struct.Struct("<BH")
_REC_COUNT = struct.Struct("<I")
_REC_EVENT = struct.Struct("<qHI")
_REC_TRACKING = struct.Struct("<HQI")
_EVENT_SIZE = _REC_EVENT.size
# The usual record in one unpack (check_batch): magic and kind; first id; originator id kind
# (1, UUID) and length (36); the UUID; the event count (1); the event's head.
_REC_FAST = struct.Struct("<5sQ3s36s4sqHI")
_REC_FAST_SIZE = _REC_FAST.size
_USUAL_HEAD = records.MAGIC + bytes([records.KIND_EVENTS])
_USUAL_ID = _REC_ID.pack(1, 36)
_USUAL_COUNT = _REC_COUNT.pack(1)
_UUID_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_uuid_tail(tail: bytes) -> bool:
    """Whether a subject tail is ``.events.<UUID text>`` (check_batch's part of the versions)."""
    return len(tail) == 44 and tail.startswith(b".events.") and bool(_UUID_TEXT.fullmatch(tail, 8))


def _parse_record(data: bytes) -> tuple[int, int, bytes, int, int]:
    """``(first_id, event count, subject tail, first version, last version)`` of a record.

    The subject tail is ``.events.<token>`` or ``.tracking.<token>``. Raises
    :class:`InvalidRecordError` (or ``struct.error`` / ``UnicodeDecodeError`` on short data).
    """
    magic, kind, first_id = _REC_HEAD.unpack_from(data, 0)
    if magic != records.MAGIC:
        raise InvalidRecordError("not a Custodia record (bad magic)")
    if not first_id:
        raise InvalidRecordError("not a numbered record")
    offset = _REC_HEAD.size
    if kind == records.KIND_TRACKING:
        name_len, _, payload_len = _REC_TRACKING.unpack_from(data, offset)
        offset += _REC_TRACKING.size
        name = data[offset : offset + name_len].decode()
        if offset + name_len + payload_len != len(data):
            raise InvalidRecordError("record length does not match its content")
        return first_id, 0, b".tracking." + records.subject_token(name).encode(), 0, 0
    if kind != records.KIND_EVENTS:
        raise InvalidRecordError(f"unknown record kind {kind}")
    id_kind, id_len = _REC_ID.unpack_from(data, offset)
    offset += _REC_ID.size
    id_bytes = data[offset : offset + id_len]
    offset += id_len
    if id_kind == 1:
        if not _UUID_TEXT.fullmatch(id_bytes):
            raise InvalidRecordError("malformed UUID")
        token = id_bytes
    elif id_kind == 0:
        token = records.subject_token(id_bytes.decode()).encode()
    else:
        raise InvalidRecordError(f"unknown originator id kind {id_kind}")
    (count,) = _REC_COUNT.unpack_from(data, offset)
    offset += _REC_COUNT.size
    if not count:
        raise InvalidRecordError("an events record without events")
    end = len(data)
    if count == 1:  # the usual record: one event
        version, topic_len, state_len = _REC_EVENT.unpack_from(data, offset)
        offset += _EVENT_SIZE
        data[offset : offset + topic_len].decode()
        if offset + topic_len + state_len != end:
            raise InvalidRecordError("record length does not match its content")
        return first_id, 1, b".events." + token, version, version
    unpack, size = _REC_EVENT.unpack_from, _EVENT_SIZE
    first = previous = 0
    for i in range(count):
        version, topic_len, state_len = unpack(data, offset)
        offset += size
        data[offset : offset + topic_len].decode()
        offset += topic_len + state_len
        if offset > end:
            raise InvalidRecordError("truncated record")
        if i == 0:
            first = version
        elif version <= previous:
            raise InvalidRecordError("versions not increasing")
        previous = version
    if offset != end:
        raise InvalidRecordError("record length does not match its content")
    return first_id, count, b".events." + token, first, previous
