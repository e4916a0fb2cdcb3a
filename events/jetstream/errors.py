"""Errors of the JetStream event store.

Each is an :class:`events.errors.EventStoreError` *and* the ``eventsourcing`` persistence error
the library expects in its place, so application code can catch either::

    EventStoreError
    ├── AggregateVersionConflictError   + IntegrityError    a version already recorded
    ├── TrackingConflictError           + IntegrityError    a notification already processed
    ├── EventStoreUnavailableError      + OperationalError  NATS unreachable; nothing was stored
    ├── OutcomeUnknownError             + OperationalError  sent, but no answer: maybe stored
    ├── StreamNotFoundError             + OperationalError  a stream is missing
    ├── StreamConfigError               + OperationalError  a stream exists with unusable settings
    ├── JetStreamAPIError               + OperationalError  any other refusal by the server
    ├── ConnectionClosedError           + InterfaceError    the factory was closed
    └── InvalidRecordError              + DataError         a message is not a valid record
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import DataError, IntegrityError, InterfaceError, OperationalError

from events.errors import EventStoreError


class AggregateVersionConflictError(EventStoreError, IntegrityError):
    """A save was refused: ``version`` of ``originator_id`` is already recorded (or older).

    Nothing of the refused save was stored.
    """

    def __init__(self, originator_id: UUID | str, version: int, recorded: int | None) -> None:
        super().__init__(
            f"version {version} of {originator_id} conflicts with recorded version {recorded}"
        )
        self.originator_id = originator_id
        self.version = version
        self.recorded = recorded


class TrackingConflictError(EventStoreError, IntegrityError):
    """Notification ``notification_id`` of ``application_name`` is not after the last tracked."""

    def __init__(self, application_name: str, notification_id: int, recorded: int | None) -> None:
        super().__init__(
            f"notification {notification_id} of {application_name!r} is not after the last "
            f"tracked ({recorded})"
        )
        self.application_name = application_name
        self.notification_id = notification_id
        self.recorded = recorded


class EventStoreUnavailableError(EventStoreError, OperationalError):
    """NATS could not be reached in time. A write that raises this was *not* stored."""


@dataclass(frozen=True)
class Fence:
    """Where an unanswered write can land, and how to recognise it.

    Every write is conditional on the last sequence of ``filter_subject`` being ``expected``, so
    it can only ever land as the first message after ``expected`` on ``filter_subject``. The
    message found there is ours if it has the subject and payload of our first message.
    ``messages`` are the write's ``(subject, payload, headers)``, ready to be sent again.
    """

    stream: str
    filter_subject: str
    expected: int
    messages: tuple[tuple[str, bytes, tuple[tuple[str, str], ...]], ...]

    @property
    def subject(self) -> str:
        return self.messages[0][0]

    @property
    def payload(self) -> bytes:
        return self.messages[0][1]


class OutcomeUnknownError(EventStoreError, OperationalError):
    """A write was sent but its acknowledgement never came: it may or may not be stored.

    ``fence`` says where it can land. ``recorder.settle(error)`` finds out for sure (and, if the
    position is still free, completes the write), returning the notification ids or ``None``.
    """

    def __init__(self, message: str, fence: Fence) -> None:
        super().__init__(message)
        self.fence = fence


class StreamNotFoundError(EventStoreError, OperationalError):
    """A stream the recorder needs does not exist (and was not to be created)."""

    def __init__(self, stream: str) -> None:
        super().__init__(f"JetStream stream {stream!r} not found")
        self.stream = stream


class StreamConfigError(EventStoreError, OperationalError):
    """A stream exists with settings the event store cannot work with."""


class JetStreamAPIError(EventStoreError, OperationalError):
    """The server refused an operation for a reason other than a conflict."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"JetStream error {code}: {description}")
        self.code = code
        self.description = description


class ConnectionClosedError(EventStoreError, InterfaceError):
    """The recorder's connection was closed (its factory or application was closed)."""

    def __init__(self) -> None:
        super().__init__("the event store connection is closed")


class InvalidRecordError(EventStoreError, DataError):
    """A message on an event stream is not a valid record (``reason`` says why).

    Readers do not raise it: they skip such a message and report it (see ``InvalidMessage``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
