"""``eventsourcing`` persistence on NATS JetStream: ``PERSISTENCE_MODULE=events.jetstream``.

Streams and subjects (``<app>`` is the application's name, behind ``NATS_NAMESPACE.`` if set)
    ``<app>-events``     subjects ``<app>.events.<aggregate>`` and ``<app>.tracking.<upstream>``:
                         the application's log. Limits retention, discard *new*, file storage,
                         ``NATS_REPLICAS`` replicas, direct get, atomic batches, no delete/purge.
    ``<app>-snapshots``  subjects ``<app>.snapshots.<aggregate>``: snapshots (purge allowed);
                         they use no notification ids. Any other ``purpose`` gets its own stream.

Records
    One message is one *record* (:mod:`events.jetstream.records`): the events of **one
    aggregate** from one save (all of them, so a multi-event save is one plain publish, as
    atomic as the server's write of one message), or one tracking record. A save touching
    several aggregates, or events plus tracking, is one JetStream atomic batch (~3-10 ms); so
    is a save too big for one message (``max_payload``), split into several records.

Notification ids
    ``notification id = position of the event in the application's log``, counted over events:
    contiguous from 1, increasing in commit order, never interleaved between saves. A record
    carries the id of its first event; the next record continues from it. This is not the
    stream sequence (one message may hold several events, and tracking records hold none), and
    cannot be: a save of several events of one aggregate must be one message to avoid the cost
    of a batch, yet each event needs its own id (``eventsourcing`` gives every ``Notification``
    one, tracks projections by it, and expects ids 1, 2, 3 for saves of 2 and then 1 events).
    Writers number records safely with ``Nats-Expected-Last-Sequence`` on every append: a
    record lands only right after the record it was numbered from. Every message can thus be
    checked against its predecessor: stream sequences contiguous from 1, and first id =
    previous record's first id + its number of events (:meth:`JetStreamRecorder.read_messages`
    gives verifiers the raw messages). Tracking records take no ids, so there are no gaps.

Concurrency
    Per aggregate, ``Nats-Expected-Last-Subject-Sequence``: on the log a version must be above
    the aggregate's last (else ``IntegrityError``, and nothing of the save is stored); on
    snapshot streams versions need only be unique, like the library's SQL key (a snapshot below
    the latest is a *late* record). Writers of one process take turns per stream; other
    processes are refused by the server, and retried after re-reading (and re-checking, like a
    reader) the records written since.

Faults
    Publishes are never buffered while disconnected (``pending_size=0``). A write that got no
    answer can only land as the first message after the sequence it was conditional on; the
    writer looks there (and resends the identical message if the place is free), so an outage
    shorter than ``NATS_TIMEOUT`` is invisible. Otherwise ``OutcomeUnknownError`` (an
    ``OperationalError``) carries that position; ``recorder.settle(error)`` resolves it.
    Messages that are not valid records where they stand are skipped by readers and reported
    (``recorder.invalid_messages``, log warnings), never raised from a reader.

The seam
    One connection per factory, with an event loop of its own; each recorder operation is one
    coroutine on it, run by the calling thread itself when no other thread runs the loop (no
    thread hop), else handed in to whoever does (see ``driver``). Reads are batched direct gets
    handed over raw (see ``connection``).
"""

from events.jetstream.errors import (
    AggregateVersionConflictError,
    ConnectionClosedError,
    EventStoreUnavailableError,
    Fence,
    InvalidRecordError,
    JetStreamAPIError,
    OutcomeUnknownError,
    StreamConfigError,
    StreamNotFoundError,
    TrackingConflictError,
)
from events.jetstream.factory import Factory
from events.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamRecorder,
    JetStreamSubscription,
    JetStreamTrackingRecorder,
)
from events.jetstream.streams import InvalidMessage

__all__ = [
    "AggregateVersionConflictError",
    "ConnectionClosedError",
    "EventStoreUnavailableError",
    "Factory",
    "Fence",
    "InvalidMessage",
    "InvalidRecordError",
    "JetStreamAPIError",
    "JetStreamAggregateRecorder",
    "JetStreamApplicationRecorder",
    "JetStreamProcessRecorder",
    "JetStreamRecorder",
    "JetStreamSubscription",
    "JetStreamTrackingRecorder",
    "OutcomeUnknownError",
    "StreamConfigError",
    "StreamNotFoundError",
    "TrackingConflictError",
]
