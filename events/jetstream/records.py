"""The bytes of one stored record: the body of one JetStream message (format version 1).

Every message the recorders write is one *record*, encoded here. All integers are little-endian.

::

    record    = magic "CSR1" | kind u8 | first_id u64 | body
    kind 1    = events:   id_kind u8 (0 str, 1 UUID) | id_len u16 | id utf-8 | count u32
                          | count x (version i64 | topic_len u16 | state_len u32 | topic | state)
    kind 2    = tracking: name_len u16 | notification_id u64 | payload_len u32 | name utf-8
                          | payload
    kind 3    = late events: as kind 1, for versions below the highest already recorded for the
                          aggregate (snapshot streams only, where versions need only be unique)

``first_id`` is the notification id of the record's first event (of a tracking record: the id the
next event will get), or 0 on streams without notification ids (snapshots). A record's events get
``first_id, first_id + 1, ...``; the next record on the stream starts where this one ends, so
notification ids are contiguous and each message can be checked against its predecessor.

The events of one record belong to one aggregate, in increasing version order. The message's
subject names the aggregate (:func:`subject_token`); a reader checks that the two agree.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from events.jetstream.errors import InvalidRecordError

MAGIC = b"CSR1"
KIND_EVENTS = 1
KIND_TRACKING = 2
KIND_LATE_EVENTS = 3

_HEAD = struct.Struct("<4sBQ")
_ID = struct.Struct("<BH")
_COUNT = struct.Struct("<I")
_EVENT = struct.Struct("<qHI")
_TRACKING = struct.Struct("<HQI")
HEAD_SIZE = _HEAD.size

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True)
class EventsRecord:
    """A decoded events record."""

    first_id: int
    originator_id: UUID | str
    events: tuple[StoredEvent, ...]
    late: bool = False

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.events) if self.first_id else 0

    @property
    def last_version(self) -> int:
        return self.events[-1].originator_version


@dataclass(frozen=True, slots=True)
class TrackingRecord:
    """A decoded tracking record: ``notification_id`` of ``application_name`` was processed."""

    first_id: int
    application_name: str
    notification_id: int
    payload: bytes

    @property
    def next_id(self) -> int:
        return self.first_id


Record = EventsRecord | TrackingRecord


def subject_token(originator_id: UUID | str) -> str:
    """The subject token that names an aggregate (or an upstream application's tracking).

    UUIDs use their canonical text; plain identifiers are used as they are; anything else (dots,
    spaces, wildcards, non-ASCII) is base64url-encoded behind a ``~``, which no plain token has.
    """
    if isinstance(originator_id, UUID):
        return str(originator_id)
    if _SAFE_TOKEN.fullmatch(originator_id):
        return originator_id
    return "~" + base64.urlsafe_b64encode(originator_id.encode()).decode().rstrip("=")


def encode_events_body(originator_id: UUID | str, events: list[StoredEvent]) -> bytes:
    """Everything of an events record after the head (the head carries ``first_id``)."""
    if isinstance(originator_id, UUID):
        id_bytes = str(originator_id).encode()
        id_kind = 1
    else:
        id_bytes = originator_id.encode()
        id_kind = 0
    parts = [_ID.pack(id_kind, len(id_bytes)), id_bytes, _COUNT.pack(len(events))]
    for event in events:
        topic = event.topic.encode()
        state = event.state
        parts.append(_EVENT.pack(event.originator_version, len(topic), len(state)))
        parts.append(topic)
        parts.append(state)
    return b"".join(parts)


def encode_tracking_body(application_name: str, notification_id: int, payload: bytes) -> bytes:
    """Everything of a tracking record after the head."""
    name = application_name.encode()
    return _TRACKING.pack(len(name), notification_id, len(payload)) + name + payload


def head(kind: int, first_id: int) -> bytes:
    return _HEAD.pack(MAGIC, kind, first_id)


def read_head(data: bytes) -> tuple[int, int]:
    """``(kind, first_id)`` of a record; raises :class:`InvalidRecordError`."""
    if len(data) < HEAD_SIZE:
        raise InvalidRecordError("shorter than a record head")
    magic, kind, first_id = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise InvalidRecordError("not a Custodia record (bad magic)")
    if kind not in (KIND_EVENTS, KIND_TRACKING, KIND_LATE_EVENTS):
        raise InvalidRecordError(f"unknown record kind {kind}")
    return kind, first_id


def peek(data: bytes) -> tuple[int, int, int]:
    """``(kind, first_id, number of events)`` without decoding the events."""
    kind, first_id = read_head(data)
    if kind == KIND_TRACKING:
        return kind, first_id, 0
    try:
        _, id_len = _ID.unpack_from(data, HEAD_SIZE)
        (count,) = _COUNT.unpack_from(data, HEAD_SIZE + _ID.size + id_len)
    except struct.error:
        raise InvalidRecordError("truncated record") from None
    return kind, first_id, count


def decode(data: bytes) -> Record:
    """Decode one record; raises :class:`InvalidRecordError` if ``data`` is not one."""
    kind, first_id = read_head(data)
    try:
        if kind != KIND_TRACKING:
            originator_id, events, end = _decode_events(data, HEAD_SIZE)
            late = kind == KIND_LATE_EVENTS
            record: Record = EventsRecord(first_id, originator_id, tuple(events), late)
        else:
            name_len, notification_id, payload_len = _TRACKING.unpack_from(data, HEAD_SIZE)
            start = HEAD_SIZE + _TRACKING.size
            name = data[start : start + name_len].decode()
            payload = data[start + name_len : start + name_len + payload_len]
            end = start + name_len + payload_len
            record = TrackingRecord(first_id, name, notification_id, payload)
    except (struct.error, UnicodeDecodeError, ValueError) as e:
        raise InvalidRecordError(f"malformed record: {e}") from None
    if end != len(data):
        raise InvalidRecordError("record length does not match its content")
    return record


def _decode_events(data: bytes, offset: int) -> tuple[UUID | str, list[StoredEvent], int]:
    id_kind, id_len = _ID.unpack_from(data, offset)
    offset += _ID.size
    id_text = data[offset : offset + id_len].decode()
    offset += id_len
    if id_kind == 1:
        originator_id: UUID | str = UUID(id_text)
    elif id_kind == 0:
        originator_id = id_text
    else:
        raise ValueError(f"unknown originator id kind {id_kind}")
    (count,) = _COUNT.unpack_from(data, offset)
    offset += _COUNT.size
    if count == 0:
        raise ValueError("an events record without events")
    events = []
    unpack = _EVENT.unpack_from
    size = _EVENT.size
    previous: int | None = None
    for _ in range(count):
        version, topic_len, state_len = unpack(data, offset)
        offset += size
        topic = data[offset : offset + topic_len].decode()
        offset += topic_len
        state = data[offset : offset + state_len]
        offset += state_len
        if len(state) != state_len:
            raise ValueError("truncated state")
        if previous is not None and version <= previous:
            raise ValueError("versions not increasing")
        previous = version
        events.append(StoredEvent(originator_id, version, topic, state))
    return originator_id, events, offset


_UUID_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOPICS: dict[bytes, str] = {}
# Aggregate ids by their text: a log names the same aggregates over and over, and a UUID is
# immutable, so the readers share one instance per id (and check its text once).
_UUIDS: dict[bytes, UUID] = {}
_UUIDS_CACHED = 10_000
_new = object.__new__
_set = object.__setattr__


def _topic(raw: bytes) -> str:
    topic = _TOPICS.get(raw)
    if topic is None:
        if len(_TOPICS) > 10_000:
            _TOPICS.clear()
        topic = _TOPICS[raw] = raw.decode()
    return topic


def _uuid(text: bytes) -> UUID:
    uuid = _UUIDS.get(text)
    if uuid is None:
        if not _UUID_TEXT.fullmatch(text):
            raise InvalidRecordError("malformed UUID")
        if len(_UUIDS) >= _UUIDS_CACHED:
            _UUIDS.clear()
        uuid = _UUIDS[bytes(text)] = UUID(int=int(text.replace(b"-", b""), 16))
    return uuid


def decode_notifications(data: bytes, subject: bytes, prefix: bytes) -> list[Notification]:
    """The notifications of a numbered events record, checked against its ``subject``.

    The hot path of every log reader, hence written out flat. Raises :class:`InvalidRecordError`.
    """
    try:
        magic, kind, first_id = _HEAD.unpack_from(data, 0)
        if magic != MAGIC or kind != KIND_EVENTS or not first_id:
            raise InvalidRecordError("not a numbered events record")
        id_kind, id_len = _ID.unpack_from(data, HEAD_SIZE)
        offset = HEAD_SIZE + _ID.size
        id_bytes = data[offset : offset + id_len]
        offset += id_len
        originator_id: UUID | str
        if id_kind == 1:
            cached = _UUIDS.get(id_bytes)
            originator_id = _uuid(id_bytes) if cached is None else cached
            token = id_bytes
        elif id_kind == 0:
            originator_id = id_bytes.decode()
            token = subject_token(originator_id).encode()
        else:
            raise InvalidRecordError(f"unknown originator id kind {id_kind}")
        if len(subject) != len(prefix) + len(token) or not subject.endswith(token):
            raise InvalidRecordError("subject does not name the record's aggregate")
        if not subject.startswith(prefix):
            raise InvalidRecordError("subject does not name the record's aggregate")
        (count,) = _COUNT.unpack_from(data, offset)
        offset += _COUNT.size
        if not count:
            raise InvalidRecordError("an events record without events")
        unpack = _EVENT.unpack_from
        size = _EVENT.size
        previous: int | None = None
        notifications = []
        for i in range(count):
            version, topic_len, state_len = unpack(data, offset)
            offset += size
            raw_topic = data[offset : offset + topic_len]
            topic = _TOPICS.get(raw_topic) or _topic(raw_topic)
            offset += topic_len
            state = data[offset : offset + state_len]
            offset += state_len
            if previous is not None and version <= previous:
                raise InvalidRecordError("versions not increasing")
            previous = version
            # Notification(...) without its frozen dataclass __init__ (three times slower): the
            # same fields, the same object.
            notification = _new(Notification)
            _set(
                notification,
                "__dict__",
                {
                    "originator_id": originator_id,
                    "originator_version": version,
                    "topic": topic,
                    "state": state,
                    "id": first_id + i,
                },
            )
            notifications.append(notification)
    except (struct.error, UnicodeDecodeError, ValueError) as e:
        raise InvalidRecordError(f"malformed record: {e}") from None
    if offset != len(data):
        raise InvalidRecordError("record length does not match its content")
    return notifications
