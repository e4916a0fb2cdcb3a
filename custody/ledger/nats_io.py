"""Reading and writing the ledger's streams through an :class:`events.jetstream` connection.

Reads are batched direct gets handed over raw (no header parsing in nats-py: the fastest path in
Python; bench/bench_ledger.py), pipelined one batch ahead so the network fetch of the next batch
overlaps the hashing of the current one (the next request leaves before the current batch is
handed over, see :func:`read_entries`). Every call is synchronous: one run of the connection's
event loop per batch (see :mod:`events.jetstream.driver`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamState

from custody.ledger.names import FRONTIER_HEADER, LedgerNames
from events.jetstream.connection import Connection, DirectReply, NatsSettings, RawMessage
from events.jetstream.errors import EventStoreUnavailableError, StreamNotFoundError
from events.merkle import HASH_SIZE

if TYPE_CHECKING:
    from custody.bootstrap import Endpoints

__all__ = [
    "EXPECTED_SUBJECT_SEQ",
    "StoredNote",
    "checkpoints_stream_config",
    "connect",
    "decode_frontier",
    "encode_frontier",
    "ensure_checkpoints_stream",
    "last_note",
    "read_entries",
    "read_subject",
    "stream_last_sequence",
]

EXPECTED_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})

READ_BATCH = 1000
_MAX_BYTES = 8 * 1024 * 1024
_TIMEOUT = 30.0
_SEND_WAIT = 1.0


def connect(
    nats_url: str,
    user: str | None = None,
    password: str | None = None,
    *,
    name: str = "custodia-bitacora",
    timeout: float = 10.0,
    tls_ca_file: str | None = None,
    creds_file: str | None = None,
) -> Connection:
    """A connection to the NATS server(s) at ``nats_url`` (comma-separated for a cluster);
    ``tls_ca_file``: the CA bundle of servers with a private CA (``CUSTODIA_NATS_CA``);
    ``creds_file``: a NATS credentials file (``CUSTODIA_NATS_CREDS``), instead of a password."""
    servers = tuple(url.strip() for url in nats_url.split(",") if url.strip())
    return Connection(
        NatsSettings(
            servers=servers,
            creds_file=creds_file,
            user=None if creds_file else user,
            password=None if creds_file else password,
            name=name,
            timeout=timeout,
            tls_ca_file=tls_ca_file,
        )
    )


def connect_to(endpoints: Endpoints, *, name: str = "custodia-bitacora") -> Connection:
    """A connection with the settings every command uses (:func:`custody.bootstrap.resolve`):
    URL, credentials file or user and password, and CA."""
    return connect(
        endpoints.nats_url,
        endpoints.nats_user,
        endpoints.nats_password,
        name=name,
        tls_ca_file=str(endpoints.nats_ca) if endpoints.nats_ca else None,
        creds_file=str(endpoints.nats_creds) if endpoints.nats_creds else None,
    )


def checkpoints_stream_config(
    names: LedgerNames, *, replicas: int = 1, storage: StorageType = StorageType.FILE
) -> StreamConfig:
    """The checkpoint stream: append-only through the API, like the events stream."""
    return StreamConfig(
        name=names.checkpoints_stream,
        description=f"Custodia: signed checkpoints of {names.events_stream}",
        subjects=names.checkpoints_subjects,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.NEW,
        storage=storage,
        num_replicas=replicas,
        allow_direct=True,
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
    )


def ensure_checkpoints_stream(conn: Connection, names: LedgerNames, *, replicas: int = 1) -> None:
    """Create the checkpoint stream unless it exists (needs the service's rights)."""
    conn.run(conn.ensure_stream(checkpoints_stream_config(names, replicas=replicas), create=True))


def _stream_state(conn: Connection, stream: str) -> StreamState:
    """The stream's state as the server reports it now."""

    async def info() -> StreamState:
        js = conn.client.jetstream(timeout=conn.settings.timeout)
        try:
            return (await js.stream_info(stream)).state
        except nats.js.errors.NotFoundError:
            raise StreamNotFoundError(stream) from None
        except (nats.errors.Error, TimeoutError):
            raise EventStoreUnavailableError(f"no stream information for {stream}") from None

    return conn.run(info())


def stream_last_sequence(conn: Connection, stream: str) -> int:
    """The stream's last sequence as the server reports it (0 if empty).

    Deleting messages does not lower it, so it exposes a deleted tail.
    """
    return int(_stream_state(conn, stream).last_seq or 0)


def stream_holds_every_entry(conn: Connection, stream: str) -> bool:
    """Whether the stream holds every entry from 1 to its last sequence: none deleted, none
    dropped (the server drops a message whose stored bytes no longer match their checksum,
    and its last sequence stays where it was)."""
    state = _stream_state(conn, stream)
    return int(state.messages or 0) == int(state.last_seq or 0)


def stream_exists(conn: Connection, stream: str) -> bool:
    try:
        stream_last_sequence(conn, stream)
    except StreamNotFoundError:
        return False
    return True


async def _direct(conn: Connection, stream: str, query: dict[str, object]) -> DirectReply:
    return await conn.direct_get(stream, query, time.monotonic() + _TIMEOUT)


def read_entries(
    conn: Connection,
    stream: str,
    *,
    start: int = 1,
    stop: int | None = None,
    batch: int = READ_BATCH,
) -> Iterator[list[RawMessage]]:
    """Batches of ``(sequence, subject, body)`` from ``start`` to ``stop`` (default: the end).

    Deleted messages are simply absent (the caller sees the hole in the sequences).
    """

    def submit(seq: int) -> Future[DirectReply]:
        query: dict[str, object] = {"seq": seq, "batch": batch, "max_bytes": _MAX_BYTES}
        sent = threading.Event()

        async def fetch() -> DirectReply:
            sent.set()  # the request is written in this same step of the loop
            return await _direct(conn, stream, query)

        future = conn.submit(fetch())
        # Hand the GIL over (by blocking) until the loop's runner is on its way to send the
        # request. Otherwise it waits for the GIL while the caller works on the current batch,
        # and the server starts on the next batch only once the caller is done with this one.
        sent.wait(_SEND_WAIT)
        return future

    if stop is not None and stop < start:
        return
    pending: Future[DirectReply] | None = submit(start)
    while pending is not None:
        reply = pending.result()
        messages = reply.messages
        pending = None
        if not messages:
            return
        last = messages[-1][0]
        done = reply.pending == 0 or (stop is not None and last >= stop)
        if not done:
            pending = submit(last + 1)  # fetched while the caller works on this batch
        if stop is not None and last > stop:
            messages = [m for m in messages if m[0] <= stop]
        yield messages


def read_subject(conn: Connection, stream: str, subject: str) -> list[tuple[int, bytes]]:
    """Every ``(sequence, body)`` on ``subject``, in stream order (empty if no stream)."""

    async def read() -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        seq = 1
        while True:
            query = {"seq": seq, "next_by_subj": subject, "batch": READ_BATCH}
            query["max_bytes"] = _MAX_BYTES
            reply = await conn.direct_get(stream, query, time.monotonic() + _TIMEOUT)
            out.extend((s, data) for s, _, data in reply.messages)
            if not reply.messages or reply.pending == 0:
                return out
            seq = reply.messages[-1][0] + 1

    if not stream_exists(conn, stream):
        return []
    return conn.run(read())


@dataclass(frozen=True, slots=True)
class StoredNote:
    """The last message on a checkpoint subject: its sequence, body and frontier header."""

    sequence: int
    data: bytes
    frontier: str | None


def last_note(conn: Connection, stream: str, subject: str) -> StoredNote | None:
    """The last message on ``subject`` with its ``Custodia-Frontier`` header, or None."""

    async def get() -> StoredNote | None:
        js = conn.client.jetstream(timeout=conn.settings.timeout)
        for attempt in range(3):
            try:
                msg = await js.get_last_msg(stream, subject, direct=True)
            except nats.js.errors.NotFoundError:
                return None
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                if attempt == 2:
                    raise EventStoreUnavailableError(f"no answer reading {subject}") from None
                await asyncio.sleep(0.2)
                continue
            headers = msg.headers or {}
            return StoredNote(
                int(msg.seq or 0), bytes(msg.data or b""), headers.get(FRONTIER_HEADER)
            )
        return None  # pragma: no cover

    if not stream_exists(conn, stream):
        return None
    return conn.run(get())


def encode_frontier(frontier: tuple[bytes, ...]) -> str:
    return base64.b64encode(b"".join(frontier)).decode("ascii")


def decode_frontier(text: str | None) -> list[bytes] | None:
    """The hashes of a ``Custodia-Frontier`` header, or None if absent or malformed."""
    if text is None:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) % HASH_SIZE:
        return None
    return [raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)]
