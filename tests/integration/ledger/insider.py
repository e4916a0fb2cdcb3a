"""What an insider with NATS admin rights can do to the streams, bypassing Custodia entirely.

Plain nats-py and the JetStream API: read every message, delete some, purge, delete a stream and
create it again with the same configuration, publish whatever they like. Nothing here goes
through ``events.jetstream`` or ``custody.ledger``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import nats
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StreamConfig

T = TypeVar("T")


@dataclass
class Message:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _with_client(url: str, action: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return await action(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def tamperable(config: StreamConfig) -> StreamConfig:
    """The same stream with deletes and purges allowed (what an admin's server config allows)."""
    return config.evolve(deny_delete=False, deny_purge=False)


def create_stream(url: str, config: StreamConfig) -> None:
    async def act(nc: Client) -> None:
        await nc.jetstream().add_stream(config)

    _with_client(url, act)


def dump(url: str, stream: str) -> list[Message]:
    """Every message still in ``stream``, with its headers, in sequence order."""

    async def act(nc: Client) -> list[Message]:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        out = []
        for seq in range(max(1, state.first_seq), state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            out.append(
                Message(
                    int(msg.seq or 0), str(msg.subject), bytes(msg.data or b""), msg.headers or {}
                )
            )
        return out

    return _with_client(url, act)


def delete(url: str, stream: str, *seqs: int) -> None:
    async def act(nc: Client) -> None:
        for seq in seqs:
            await nc.jetstream().delete_msg(stream, seq)

    _with_client(url, act)


def purge(url: str, stream: str) -> None:
    async def act(nc: Client) -> None:
        await nc.jetstream().purge_stream(stream)

    _with_client(url, act)


def publish(url: str, messages: list[Message]) -> None:
    """Publish as they are (minus the ``Nats-*`` write preconditions stored with them)."""

    async def act(nc: Client) -> None:
        js = nc.jetstream()
        for m in messages:
            headers = {k: v for k, v in m.headers.items() if not k.startswith("Nats-")}
            await js.publish(m.subject, m.data, headers=headers or None)

    _with_client(url, act)


def rewrite(url: str, stream: str, messages: list[Message]) -> None:
    """Delete ``stream``, create it again with its configuration, and publish ``messages``:
    sequences start from 1 again, as if this had always been the stream."""

    async def act(nc: Client) -> None:
        js = nc.jetstream()
        config = (await js.stream_info(stream)).config
        await js.delete_stream(stream)
        await js.add_stream(config)

    _with_client(url, act)
    publish(url, messages)


def flip_state_byte(data: bytes) -> bytes:
    """The same record with one byte of the last event's state changed (still a valid record)."""
    at = len(data) - 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def delete_streams(url: str, prefix: str) -> None:
    async def act(nc: Client) -> None:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name
            if name and name.startswith(prefix):
                await js.delete_stream(name)

    with contextlib.suppress(Exception):  # cleanup only
        _with_client(url, act)


def delete_stream(url: str, stream: str) -> None:
    """Drop a whole stream (what an operator's credential allows even with deny_delete)."""

    async def act(nc: Client) -> None:
        await nc.jetstream().delete_stream(stream)

    _with_client(url, act)
