"""A rebuild's reading half in a process of its own.

A rebuild (:func:`projections.runner.rebuild`) reads and decodes the whole ledger, prepares each
event (:class:`~projections.fastrows.FastRows`: its handler's parameters straight from its stored
state) and writes the view. In one process these take turns on the interpreter's lock, so
:class:`ReadingProcess` forks a child that reads, decodes and prepares, while the rebuilding
process only writes (:meth:`ReportsProjection.apply_prepared`: the same handlers, poison
policy, batches and tracking, in the same order). Each half can have a core of its own.

The child is forked, not started afresh: a fresh interpreter would spend about as long
importing the domain as the writing takes. It is forked while the rebuild holds no connection
or file open (the first contact with the ledger, which reports an unreachable server as usual,
is closed first), it reads with a connection of its own, its only output is the pipe to its
parent (it logs nothing: the parent logs the messages it skipped), and it ends with
``os._exit``, so nothing it inherited (the caller's buffers, its ``atexit`` handlers, a test
runner's stack) runs twice. Other threads of the caller are not in the child, and a lock one
of them held at the fork stays held there: hence the child logs nothing, and the caller must
not be using the event store or the domain in another thread while it forks (the command
line's progress bar does neither; see :func:`projections.runner.rebuild`).

The pipe carries frames: a 4-byte big-endian length and a MessagePack body (``msgspec``), plain
values only, so nothing in a frame can make the parent run code (unlike pickle); nobody but the
parent and the child holds either end. The child sends::

    ["page", [item, ...]]      each event: [position, kind, params] (FastRows gave parameters:
                               kind indexes FAST_KINDS), else [position, -1, originator_id,
                               originator_version, topic, state] (the usual way)
    ["invalid", [[stream, seq, subject, reason], ...]]   messages the reader skipped
    ["end"]                    every event up to the total was sent
    ["failed", text]           the reading failed (the parent raises RebuildFailedError)

An event sent with parameters whose parameters then fail to apply goes the usual way too: the
parent reads that one event from the ledger itself (:class:`LedgerEvents`), as a rebuild in
one process would have had it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from projections.errors import RebuildFailedError

__all__ = [
    "InvalidReport",
    "LedgerEvents",
    "ReadingProcess",
    "can_fork",
    "encode_page",
    "new_invalid",
    "pages",
]

logger = logging.getLogger(__name__)

InvalidReport = tuple[str, int, str, str]
"""A message the reader skipped: ``(stream, sequence, subject, reason)``."""

_LENGTH: Final = 4
_MAX_FRAME: Final = 1 << 30
_BUFFER: Final = 1 << 20


def can_fork() -> bool:
    """Whether this platform forks (Linux, macOS; not Windows)."""
    return hasattr(os, "fork")


def pages(subscription: Iterator[Notification]) -> Iterator[Sequence[Notification]]:
    """A subscription's notifications a page at a time (one at a time if it has no pages)."""
    next_page = getattr(subscription, "next_page", None)
    if next_page is None:
        for notification in subscription:
            yield (notification,)
        return
    while True:
        try:
            yield next_page()
        except StopIteration:
            return


def new_invalid(recorder: object, seen: set[tuple[str, int]]) -> list[InvalidReport]:
    """The invalid messages ``recorder`` reported that are not in ``seen`` (which is updated)."""
    new: list[InvalidReport] = []
    for message in getattr(recorder, "invalid_messages", None) or []:
        key = (message.stream, message.seq)
        if key not in seen:
            seen.add(key)
            new.append((message.stream, message.seq, message.subject, str(message.reason)))
    return new


# -- frames --------------------------------------------------------------------------------------


def _write(stream: IO[bytes], body: bytes) -> None:
    """Writes a frame and sends it on at once (the reader waits for it)."""
    stream.write(len(body).to_bytes(_LENGTH, "big"))
    stream.write(body)
    stream.flush()


def _read(stream: IO[bytes]) -> bytes | None:
    """The next frame's body, or ``None`` at the end of the stream; a frame cut short is an
    error, never a short frame."""
    head = stream.read(_LENGTH)
    if not head:
        return None
    if len(head) < _LENGTH:
        raise EOFError("frame header cut short")
    size = int.from_bytes(head, "big")
    if size > _MAX_FRAME:
        raise EOFError(f"frame of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("frame cut short")
    return body


def _usual(n: Notification) -> list[Any]:
    originator: Any = n.originator_id
    originator = originator.bytes if type(originator) is UUID else str(originator)
    return [n.id, -1, originator, n.originator_version, n.topic, n.state]


def encode_page(
    page: Sequence[Notification],
    params: Any,
    kinds: Mapping[type[Any], int],
    encode: Any,
) -> bytes:
    """The ``page`` frame of ``page``: each event with its kind and FastRows parameters
    (``params(notification)``), or its stored parts when it has none; an event whose parameters
    cannot be sent (an integer beyond 64 bits, say) is sent to go the usual way."""
    items: list[list[Any]] = []
    add = items.append
    for n in page:
        fast = params(n)
        if fast is None:
            add(_usual(n))
        else:
            add([n.id, kinds[fast[0]], fast[1]])
    try:
        return bytes(encode(["page", items]))
    except (OverflowError, TypeError):
        for index, item in enumerate(items):
            if item[1] >= 0:
                try:
                    encode(item)
                except (OverflowError, TypeError):
                    items[index] = _usual(page[index])
        return bytes(encode(["page", items]))


# -- the child -----------------------------------------------------------------------------------


def _read_ledger(stream: IO[bytes], env: Mapping[str, str], total: int) -> None:
    """The child's work: every event up to ``total`` (at least), a page at a time."""
    from projections.projection import FAST_KIND, LedgerReader, fast_rows_for

    encode = msgspec.msgpack.Encoder().encode
    reader = LedgerReader(env=env)
    try:
        recorder = reader.recorder
        fast_rows = fast_rows_for(reader.mapper)
        params = fast_rows.params if fast_rows is not None else (lambda n: None)
        seen: set[tuple[str, int]] = set()
        with recorder.subscribe(gt=0) as subscription:
            for page in pages(subscription):
                _write(stream, encode_page(page, params, FAST_KIND, encode))
                invalid = new_invalid(recorder, seen)
                if invalid:
                    _write(stream, encode(["invalid", invalid]))
                if page[-1].id >= total:
                    break
        invalid = new_invalid(recorder, seen)
        if invalid:
            _write(stream, encode(["invalid", invalid]))
    finally:
        reader.close()
    _write(stream, encode(["end"]))


def _child(fd: int, env: Mapping[str, str], total: int) -> int:
    # The child logs nothing: a stream it inherited may have been locked, mid-write, by another
    # thread of the caller at the fork, and that lock is never released in the child. What it
    # would have logged (messages the reader skipped) the parent logs as it receives them.
    logging.disable(logging.CRITICAL)
    stream = os.fdopen(fd, "wb", buffering=_BUFFER)
    try:
        try:
            _read_ledger(stream, env, total)
        except BaseException as error:  # told to the parent, which raises it
            _write(stream, msgspec.msgpack.encode(["failed", _describe(error)]))
            return 1
        finally:
            stream.flush()
    except OSError:  # the parent stopped listening
        return 1
    return 0


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


# -- the parent's side ---------------------------------------------------------------------------


class ReadingProcess:
    """The forked child that reads the ledger configured by ``env``, from its first event to
    at least ``total``; iterate over it for its ``page`` and ``invalid`` messages, in order.
    Iteration raises :class:`RebuildFailedError` if the child failed or ended early;
    :meth:`close` stops it if it still runs, and reaps it."""

    def __init__(self, env: Mapping[str, str], total: int) -> None:
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12 warns about forking a process with threads (a progress bar's, a test
            # runner's): the child touches none of their locks (module docstring).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (its work is measured by the parent's tests)
            code = 1
            try:
                os.close(read_end)
                code = _child(write_end, env, total)
            finally:
                os._exit(code)
        os.close(write_end)
        self.pid = pid
        self._stream = os.fdopen(read_end, "rb", buffering=_BUFFER)
        self._status: int | None = None

    def __iter__(self) -> Iterator[list[Any]]:
        decode = msgspec.msgpack.Decoder().decode
        while True:
            try:
                body = _read(self._stream)
                message = None if body is None else decode(body)
            except (OSError, EOFError, msgspec.DecodeError) as error:
                raise RebuildFailedError(f"lectura interrumpida: {_describe(error)}") from None
            if message is None:
                raise RebuildFailedError(
                    f"el proceso lector terminó antes del final (estado {self._wait()})"
                )
            if message[0] == "end":
                return
            if message[0] == "failed":
                raise RebuildFailedError(f"falló la lectura de la bitácora: {message[1]}")
            if message[0] == "invalid":
                for stream, seq, subject, reason in message[1]:
                    logger.warning(
                        "the reading process skipped message %s/%d on %r: %s",
                        stream,
                        seq,
                        subject,
                        reason,
                    )
            yield message

    def _wait(self, *, kill: bool = False) -> int:
        """Reaps the child (killing it first with ``kill``, if it still runs); its exit status
        (negative: the signal that ended it), or ``-1`` if someone else reaped it."""
        if self._status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG if kill else 0)
                if pid == 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    _, status = os.waitpid(self.pid, 0)
                self._status = os.waitstatus_to_exitcode(status)
            except ChildProcessError:  # reaped elsewhere (a handler that waits for any child)
                self._status = -1
        return self._status

    def close(self) -> None:
        """Stops the child if it still runs (the rebuild stopped early) and reaps it."""
        with contextlib.suppress(OSError):
            self._stream.close()
        self._wait(kill=True)


class LedgerEvents:
    """The events of the ledger configured by ``env``, one at a time, for the items of a page
    that go the usual way (:meth:`notification`); connects only if it has to."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._reader: Any = None

    def notification(self, item: list[Any]) -> Notification:
        """The notification of ``item``: from its stored parts if it carries them, else read
        from the ledger."""
        if item[1] < 0:
            position, _, originator, version, topic, state = item
            originator_id: Any = UUID(bytes=originator) if type(originator) is bytes else originator
            return Notification(
                id=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state,
            )
        if self._reader is None:
            from projections.projection import LedgerReader

            self._reader = LedgerReader(env=self._env)
        found = self._reader.recorder.select_notifications(start=item[0], limit=1)
        if not found or found[0].id != item[0]:
            raise RebuildFailedError(f"el evento {item[0]} ya no está en la bitácora")
        notification: Notification = found[0]
        return notification

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
