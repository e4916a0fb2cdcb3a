"""One NATS connection and the event loop that owns it (the sync/async seam).

``eventsourcing`` is synchronous and nats-py is asyncio. Each :class:`Connection` has its own
event loop; a recorder operation is one coroutine run on that loop (:meth:`Connection.run`),
by the calling thread itself when no other thread runs the loop, else handed over (see
:mod:`events.jetstream.driver`). It can be called from any thread, except from the loop's own
callbacks (refused rather than left to deadlock).

Reads use JetStream *direct get* (batched). nats-py parses every header of every message it
delivers, which dominates read time; the replies to direct gets arrive on one private wildcard
inbox whose messages are handed over raw (subject, headers and body as bytes) by a thin wrapper
around ``Client._process_msg``. That wrapper depends on a private method of nats-py (pinned at
2.16); if its signature differs, the ordinary parsed-message path is used instead.

Writes take the same private inbox: a save's conditional publish (a request) and a direct get's
query are written to the socket at once when nothing is queued before them, and their answers
are taken raw from the inbox (no wake-up of nats-py's flusher or subscription task, no parsed
message). Otherwise, or for anything nats-py would have to check (unusual headers), they go
through nats-py. Nothing is ever buffered while disconnected (``pending_size=0``): a write made
then fails at once, as with nats-py's own publish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from eventsourcing.persistence import ProgrammingError
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.transport import TcpTransport
from nats.js.api import StreamConfig
from nats.protocol.parser import AWAITING_CONTROL_LINE, MAX_CONTROL_LINE_SIZE, Parser

from events.jetstream.driver import InsideLoopError, LoopDriver, LoopStoppedError
from events.jetstream.errors import (
    ConnectionClosedError,
    EventStoreUnavailableError,
    StreamConfigError,
    StreamNotFoundError,
)

logger = logging.getLogger("events.jetstream")

T = TypeVar("T")

# One raw message from a direct get: (stream sequence, subject, body).
RawMessage = tuple[int, bytes, bytes]


@dataclass(frozen=True)
class NatsSettings:
    """How to reach NATS. Built from the environment by :class:`events.jetstream.Factory`."""

    servers: tuple[str, ...]
    creds_file: str | None = None
    nkey_seed_file: str | None = None
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_hostname: str | None = None
    connect_timeout: float = 5.0
    timeout: float = 10.0
    name: str = "custodia-eventstore"

    def redacted_servers(self) -> str:
        """The server URLs without any user information (safe to show and log)."""
        shown = []
        for url in self.servers:
            parts = urlsplit(url)
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            shown.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
        return ", ".join(shown)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca_file or self.tls_cert_file):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.tls_cert_file:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context


class NotSentError(Exception):
    """The message never left the client (not connected; nothing is buffered)."""


class NoAnswerError(Exception):
    """The request was sent but no reply came in time: its outcome is unknown."""


class NoRespondersError(Exception):
    """The server answered that nobody serves the subject (no stream, or JetStream down)."""


class DeadlineError(Exception):
    """The operation's deadline passed while waiting."""


@dataclass
class DirectReply:
    """The messages of one direct get, and how many more match after them."""

    messages: list[RawMessage]
    pending: int


class _Collector:
    __slots__ = ("batch", "future", "messages")

    def __init__(self, batch: bool, future: asyncio.Future[DirectReply]) -> None:
        self.batch = batch
        self.future = future
        self.messages: list[RawMessage] = []

    def finish(self, pending: int) -> None:
        if not self.future.done():
            self.future.set_result(DirectReply(self.messages, pending))

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


# What would break a protocol line if written as it is (nats-py refuses it in publish()).
_UNSAFE_SUBJECT = re.compile(r"[ \t\r\n]")
_HEADER_LINES = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*\r\n)*")


def _hpub(subject: str, reply: str, headers: dict[str, str], payload: bytes) -> bytes | None:
    """The ``HPUB`` frame nats-py would send, or None where nats-py's own checks must run."""
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    if not subject or _UNSAFE_SUBJECT.search(subject) or not _HEADER_LINES.fullmatch(lines):
        return None
    head = f"NATS/1.0\r\n{lines}\r\n".encode()
    size = len(head)
    return (
        f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n".encode()
        + head
        + payload
        + b"\r\n"
    )


def _pub(subject: str, reply: str, payload: bytes) -> bytes | None:
    """The ``PUB`` frame nats-py would send, or None where nats-py's own checks must run."""
    if not subject or _UNSAFE_SUBJECT.search(subject):
        return None
    return f"PUB {subject} {reply} {len(payload)}\r\n".encode() + payload + b"\r\n"


def _header(headers: bytes, key: bytes) -> bytes | None:
    # Server-added headers come last: search from the end, so that a header of the same name
    # smuggled in by a publisher cannot shadow them.
    i = headers.rfind(key)
    if i < 0:
        return None
    start = i + len(key)
    return headers[start : headers.find(b"\r\n", start)]


class _DirectError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"direct get failed: {status} {description}")
        self.status = status


def _raw_path_available(nc: Client) -> bool:
    """Whether nats-py's internals are those the raw path relies on (as in nats-py 2.16)."""
    params = list(inspect.signature(nc._process_msg).parameters)
    internals = all(hasattr(nc, name) for name in ("_pending", "_max_payload"))
    return internals and params == ["sid", "subject", "reply", "data", "headers"]


class _Parser(Parser):
    """nats-py's protocol parser with a shortcut for complete ``HMSG`` frames, most of what the
    event store receives (each message of a direct get's reply is one), and for complete ``MSG``
    frames to the private inbox (the acknowledgements of writes): a frame for the private inbox
    goes straight to :meth:`Connection._on_direct_raw`, any other ``HMSG`` to the client's
    ``_process_msg`` as before; an incomplete frame waits in the buffer for the rest, as in
    nats-py. Everything else (other operations, anything malformed) is left to nats-py's own
    parsing, unchanged."""

    def __init__(self, nc: Client, connection: Connection) -> None:
        super().__init__(nc)
        self.connection = connection

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        buf.extend(data)
        connection = self.connection
        while self.state == AWAITING_CONTROL_LINE:
            if buf.startswith(b"HMSG "):
                start = 5
            elif buf.startswith(b"MSG "):
                start = 4
            else:
                break
            end = buf.find(b"\r\n", start, MAX_CONTROL_LINE_SIZE)
            if end < 0:
                if len(buf) < MAX_CONTROL_LINE_SIZE:
                    return  # the rest of the line is still to come
                break
            fields = bytes(buf[start:end]).split()
            reply = b""
            if start == 4:
                # MSG <subject> <sid> <total bytes>: only those to the private inbox
                if len(fields) != 3:
                    break
                subject, sid, total_size = fields
                header_size = b"0"
                if sid != connection._direct_sid_bytes:
                    break
            # HMSG <subject> <sid> [reply-to] <header bytes> <total bytes>
            elif len(fields) == 4:
                subject, sid, header_size, total_size = fields
            elif len(fields) == 5:
                subject, sid, reply, header_size, total_size = fields
            else:
                break
            if not (sid.isdigit() and header_size.isdigit() and total_size.isdigit()):
                break
            start = end + 2
            total = int(total_size)
            if len(buf) < start + total + 2:
                return  # the rest of the frame is still to come
            header_end = start + int(header_size)
            headers = bytes(buf[start:header_end]) if header_end > start else None
            payload = bytes(buf[header_end : start + total])
            del buf[: start + total + 2]
            if sid == connection._direct_sid_bytes:
                connection._on_direct_raw(subject, payload, headers)
            else:
                await self.nc._process_msg(int(sid), subject, reply, payload, headers)
        if buf:
            await super().parse()


class Connection:
    """A NATS connection with its private event loop. Thread-safe; close with :meth:`close`."""

    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self._driver = LoopDriver("custodia-nats-loop")
        self._loop = self._driver.loop
        self._closed = False
        self._closing = False
        self._close_lock = threading.RLock()  # a finalizer may close while this thread closes
        self._draining: asyncio.Task[None] | None = None  # a deferred close's (kept referenced)
        self._nc = Client()
        self._connected: asyncio.Event | None = None
        self._last_error: Exception | None = None
        self._collectors: dict[bytes, _Collector] = {}
        self._requests: dict[bytes, asyncio.Future[bytes]] = {}
        self._next_token = 0
        self._inbox_prefix = b""
        self._direct_sid = -1
        self._direct_sid_bytes = b""
        self._reconnect_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closables: weakref.WeakSet[Any] = weakref.WeakSet()
        self._shared: dict[str, Any] = {}
        self._shared_lock = threading.Lock()
        self._ensured_streams: set[str] = set()
        try:
            self.run(self._connect())
        except BaseException:
            self._stop_loop()
            raise

    # -- the seam ---------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the connection's loop; returns a thread-safe future."""
        if self._closed:
            coro.close()
            raise ConnectionClosedError
        try:
            return self._driver.submit(coro)
        except InsideLoopError:
            raise ProgrammingError("a recorder was called from its own event loop") from None
        except LoopStoppedError:
            raise ConnectionClosedError from None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the connection's loop and wait for its result.

        The calling thread runs the loop itself when no other thread does (see
        :mod:`events.jetstream.driver`): no thread wake-up on the way there or back.
        """
        if self._closed:
            coro.close()
            raise ConnectionClosedError
        try:
            return self._driver.run(coro)
        except InsideLoopError:
            raise ProgrammingError("a recorder was called from its own event loop") from None
        except LoopStoppedError:
            raise ConnectionClosedError from None
        except asyncio.CancelledError:
            raise ConnectionClosedError from None

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` in the connection's loop soon (from any thread)."""
        self._driver.call_soon(callback)

    def shared(self, key: str, create: Callable[[], T]) -> T:
        """A per-connection singleton (e.g. the writer state of one stream)."""
        with self._shared_lock:
            value = self._shared.get(key)
            if value is None:
                value = self._shared[key] = create()
            return value

    def mark_ensured(self, stream: str) -> bool:
        """Whether ``stream`` still has to be checked/created on this connection (marks it)."""
        with self._shared_lock:
            if stream in self._ensured_streams:
                return False
            self._ensured_streams.add(stream)
            return True

    def unmark_ensured(self, stream: str) -> None:
        with self._shared_lock:
            self._ensured_streams.discard(stream)

    def on_reconnect(self, listener: Any) -> None:
        """``listener.reconnected()`` is called (in the loop) after each reconnection."""
        self._reconnect_listeners.add(listener)

    def on_close(self, closable: Any) -> None:
        """``closable.connection_closing()`` is called (from the closing thread) on close."""
        self._closables.add(closable)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def client(self) -> Client:
        return self._nc

    # -- connecting and closing ---------------------------------------------------------------

    async def _connect(self) -> None:
        settings = self.settings
        self._connected = asyncio.Event()
        options: dict[str, Any] = {
            "servers": list(settings.servers),
            "name": settings.name,
            # No publish is ever buffered while disconnected: it fails at once instead of being
            # delivered later, after its caller was told it failed (a ghost write).
            "pending_size": 0,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.25,
            "connect_timeout": min(2.0, settings.connect_timeout),
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
        }
        if settings.creds_file:
            options["user_credentials"] = settings.creds_file
        if settings.nkey_seed_file:
            options["nkeys_seed"] = settings.nkey_seed_file
        if settings.token:
            options["token"] = settings.token
        if settings.user:
            options["user"] = settings.user
            options["password"] = settings.password
        context = settings.ssl_context()
        if context is not None:
            options["tls"] = context
            if settings.tls_hostname:
                options["tls_hostname"] = settings.tls_hostname
        if type(self._nc._ps) is Parser and _raw_path_available(self._nc):
            self._nc._ps = _Parser(self._nc, self)
        try:
            await asyncio.wait_for(self._nc.connect(**options), settings.connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as e:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 2)
            cause = self._last_error if isinstance(e, TimeoutError) else e
            detail = f"{type(cause).__name__}: {cause}".strip(": ") if cause else "no answer"
            raise EventStoreUnavailableError(
                f"cannot connect to NATS at {settings.redacted_servers()} within "
                f"{settings.connect_timeout:g} s ({detail})"
            ) from None
        self._connected.set()
        await self._subscribe_direct_inbox()

    async def _subscribe_direct_inbox(self) -> None:
        prefix = self._nc.new_inbox() + "."
        self._inbox_prefix = prefix.encode()
        original = self._nc._process_msg
        if _raw_path_available(self._nc):
            subscription = await self._nc.subscribe(prefix + "*")
            self._direct_sid = subscription._id
            self._direct_sid_bytes = str(subscription._id).encode()

            async def process_msg(
                sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
            ) -> None:
                if sid == self._direct_sid:
                    self._on_direct_raw(subject, data, headers)
                else:
                    # nats-py annotates ``headers`` as bytes but passes None when absent.
                    await original(sid, subject, reply, data, headers)  # type: ignore[arg-type]

            self._nc._process_msg = process_msg  # type: ignore[method-assign]
        else:  # pragma: no cover - only with a nats-py whose internals changed
            logger.warning("nats-py internals changed: direct gets use the slower parsed path")
            await self._nc.subscribe(prefix + "*", cb=self._on_direct_msg)

    async def _on_error(self, error: Exception) -> None:
        # What the server said (say, an authorization violation) explains more than the
        # connection reset that follows it.
        if isinstance(error, nats.errors.Error) or not isinstance(
            self._last_error, nats.errors.Error
        ):
            self._last_error = error
        logger.debug("NATS client error: %s: %s", type(error).__name__, error)

    async def _on_disconnected(self) -> None:
        if self._connected is not None:
            self._connected.clear()
        if not self._closing:
            logger.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        if self._connected is not None:
            self._connected.set()
        logger.warning("reconnected to NATS")
        for listener in list(self._reconnect_listeners):
            listener.reconnected()

    def close(self) -> None:
        """Drain the connection, stop the loop and its keeper thread. Idempotent."""
        # Where waiting would wait for itself, so would waiting for another thread's close (it
        # waits for the loop this thread holds): leave it to that one, which then finishes.
        if not self._close_lock.acquire(blocking=not self._driver.reentrant()):
            return
        try:
            if self._closed or self._closing:
                return  # closed, or closing further up this thread's stack (a finalizer)
            self._closing = True
            for closable in list(self._closables):
                closable.connection_closing()
            if self._driver.reentrant():
                # Called where waiting would wait for itself (the loop's own callbacks, or a
                # finalizer the garbage collector ran there): finish in the loop, later.
                self._closed = True
                with contextlib.suppress(RuntimeError):  # the loop is closed already
                    self._loop.call_soon_threadsafe(self._start_drain_and_stop)
                return
            try:
                self._driver.run(self._drain())
            except Exception as e:  # closing must not raise
                logger.debug("NATS drain failed: %s", e)
            finally:  # even when interrupted (Ctrl-C): a later close() would return at once
                self._closed = True
                self._stop_loop()
        finally:
            self._close_lock.release()

    def _start_drain_and_stop(self) -> None:
        self._draining = self._loop.create_task(self._drain_and_stop())

    async def _drain_and_stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._drain()
        self._driver.stop_soon()

    async def _drain(self) -> None:
        for collector in list(self._collectors.values()):
            collector.fail(ConnectionClosedError())
        try:
            await asyncio.wait_for(self._nc.drain(), 5)
        except Exception:
            await asyncio.wait_for(self._nc.close(), 5)

    def _stop_loop(self) -> None:
        """Cancel what is left on the loop, close it and join the keeper thread."""
        self._driver.stop()

    # -- waiting for the connection -------------------------------------------------------------

    async def wait_connected(self, deadline: float) -> None:
        """Return once connected; raise :class:`DeadlineError` at ``deadline`` (monotonic)."""
        if self._closed or self._nc.is_closed:
            raise ConnectionClosedError
        assert self._connected is not None
        if self._connected.is_set() and self._nc.is_connected:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineError
        try:
            await asyncio.wait_for(self._connected.wait(), remaining)
        except TimeoutError:
            raise DeadlineError from None

    # -- publishing ---------------------------------------------------------------------------

    async def request(
        self, subject: str, payload: bytes, headers: dict[str, str], wait: float
    ) -> dict[str, Any]:
        """Publish ``payload`` as a request and return the JSON reply (an ack or an error).

        The reply comes to the raw inbox of direct gets, and the request is written to the
        socket at once when nothing is queued before it: no message object, no wake-up of
        nats-py's flusher and subscription tasks (two loop iterations per request). Never
        buffered while disconnected, as with nats-py's ``publish`` and ``pending_size=0``.
        """
        nc = self._nc
        if self._closed or nc.is_closed:
            raise ConnectionClosedError
        if self._direct_sid < 0 or len(payload) > nc._max_payload:
            return await self._request_parsed(subject, payload, headers, wait)
        if nc.is_draining_pubs or not nc.is_connected:
            raise NotSentError
        self._next_token += 1
        token = b"r%d" % self._next_token
        reply = (self._inbox_prefix + token).decode()
        frame = _hpub(subject, reply, headers, payload)
        if frame is None:
            return await self._request_parsed(subject, payload, headers, wait)
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._requests[token] = future
        try:
            if not self._write_now(frame):
                await self.publish(subject, payload, headers, reply)
            data = await asyncio.wait_for(future, wait)
        except TimeoutError:
            raise NoAnswerError from None
        finally:
            self._requests.pop(token, None)
        if not data:
            return {}
        answer: dict[str, Any] = json.loads(data)
        return answer

    def _write_now(self, frame: bytes | None) -> bool:
        """Write ``frame`` to the socket now, unless something queued must go before it (or
        the client is not connected, or not on plain TCP/TLS): then False, nothing written."""
        nc = self._nc
        transport = nc._transport
        if frame is None or nc._pending or not nc.is_connected:
            return False
        if not isinstance(transport, TcpTransport):
            return False
        transport.write(frame)  # type: ignore[no-untyped-call]
        return True

    async def _request_parsed(
        self, subject: str, payload: bytes, headers: dict[str, str], wait: float
    ) -> dict[str, Any]:
        """:meth:`request` through nats-py's own request path."""
        try:
            msg = await self._nc.request(subject, payload, timeout=wait, headers=headers)
        except nats.errors.NoRespondersError:
            raise NoRespondersError from None
        except nats.errors.TimeoutError:
            raise NoAnswerError from None
        except (
            nats.errors.OutboundBufferLimitError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionClosedError,
            nats.errors.StaleConnectionError,
        ):
            raise NotSentError from None
        if not msg.data:
            return {}
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str], reply: str = ""
    ) -> None:
        """Publish without waiting for a reply (the middle messages of an atomic batch)."""
        try:
            await self._nc.publish(subject, payload, reply=reply, headers=headers)
        except (
            nats.errors.OutboundBufferLimitError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionClosedError,
            nats.errors.StaleConnectionError,
        ):
            raise NotSentError from None

    # -- direct get ------------------------------------------------------------------------------

    async def direct_get(self, stream: str, query: dict[str, Any], deadline: float) -> DirectReply:
        """One direct get (``batch`` in ``query`` makes it a batch), retried until ``deadline``.

        A missing message is an empty reply. Reads are idempotent, so any failure to get a
        complete answer is retried while time remains.
        """
        payload = json.dumps(query).encode()
        batch = "batch" in query
        subject = f"$JS.API.DIRECT.GET.{stream}"
        raw = self._direct_sid >= 0
        while True:
            await self.wait_connected(deadline)
            self._next_token += 1
            token = str(self._next_token).encode()
            future: asyncio.Future[DirectReply] = self._loop.create_future()
            self._collectors[token] = _Collector(batch, future)
            try:
                reply = (self._inbox_prefix + token).decode()
                if not self._write_now(_pub(subject, reply, payload) if raw else None):
                    await self._nc.publish(subject, payload, reply=reply)
                remaining = deadline - time.monotonic()
                return await asyncio.wait_for(future, max(0.01, min(remaining, 5.0)))
            except (
                nats.errors.OutboundBufferLimitError,
                nats.errors.ConnectionReconnectingError,
                nats.errors.StaleConnectionError,
                TimeoutError,
            ):
                if time.monotonic() >= deadline:
                    raise DeadlineError from None
                await asyncio.sleep(0.05)
            except _DirectError as e:
                if e.status != 503:
                    raise
                await self.check_stream(stream, deadline)
                if time.monotonic() >= deadline:
                    raise DeadlineError from None
                await asyncio.sleep(0.1)
            finally:
                self._collectors.pop(token, None)

    def _on_direct_raw(self, subject: bytes, data: bytes, headers: bytes | None) -> None:
        token = subject[len(self._inbox_prefix) :]
        collector = self._collectors.get(token)
        if collector is None:
            request = self._requests.get(token)
            if request is not None and not request.done():
                if headers is not None and headers[8:12] == b" 503":
                    request.set_exception(NoRespondersError())
                else:
                    request.set_result(data)
            return
        if headers is None:
            collector.fail(_DirectError(0, "reply without headers"))
            return
        if headers[8:9] == b" ":
            status = int(headers[9:12])
            if status == 204:
                collector.finish(int(_header(headers, b"Nats-Num-Pending: ") or 0))
            elif status == 404:
                collector.finish(0)
            else:
                description = headers[13 : headers.find(b"\r\n")].decode(errors="replace")
                collector.fail(_DirectError(status, description))
            return
        # _header(), inline: this runs for every message read.
        i = headers.rfind(b"\r\nNats-Sequence: ")
        j = headers.rfind(b"\r\nNats-Subject: ")
        if i < 0 or j < 0:
            collector.fail(_DirectError(0, "reply without sequence or subject"))
            return
        seq = headers[i + 17 : headers.find(b"\r\n", i + 17)]
        msg_subject = headers[j + 16 : headers.find(b"\r\n", j + 16)]
        collector.messages.append((int(seq), msg_subject, data))
        if not collector.batch:
            collector.finish(0)

    async def _on_direct_msg(self, msg: Msg) -> None:  # pragma: no cover - fallback path
        collector = self._collectors.get(msg.subject.encode()[len(self._inbox_prefix) :])
        if collector is None:
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == "204":
            collector.finish(int(headers.get("Nats-Num-Pending", "0")))
        elif status == "404":
            collector.finish(0)
        elif status:
            collector.fail(_DirectError(int(status), headers.get("Description", "")))
        else:
            seq = int(headers["Nats-Sequence"])
            collector.messages.append((seq, headers["Nats-Subject"].encode(), msg.data))
            if not collector.batch:
                collector.finish(0)

    # -- streams -----------------------------------------------------------------------------------

    async def check_stream(self, stream: str, deadline: float) -> None:
        """Raise :class:`StreamNotFoundError` if ``stream`` does not exist."""
        js = self._nc.jetstream(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            raise StreamNotFoundError(stream) from None
        except (nats.errors.Error, TimeoutError):
            return  # JetStream unavailable: the caller retries until its deadline

    async def ensure_stream(self, config: StreamConfig, create: bool) -> StreamConfig:
        """Create ``config`` unless a stream of that name exists; return the actual config."""
        assert config.name is not None
        js = self._nc.jetstream(timeout=self.settings.timeout)
        try:
            info = await js.stream_info(config.name)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            raise EventStoreUnavailableError(
                f"JetStream does not answer at {self.settings.redacted_servers()}"
            ) from None
        except nats.js.errors.NotFoundError:
            if not create:
                raise StreamNotFoundError(config.name) from None
            try:
                info = await js.add_stream(config)
            except nats.js.errors.BadRequestError as e:
                if e.err_code != 10058:  # 10058: created concurrently by another process
                    raise StreamConfigError(
                        f"cannot create stream {config.name}: {e.description} ({e.err_code})"
                    ) from None
                info = await js.stream_info(config.name)
            except nats.js.errors.APIError as e:
                raise StreamConfigError(
                    f"cannot create stream {config.name}: {e.description} ({e.err_code})"
                ) from None
        return info.config
