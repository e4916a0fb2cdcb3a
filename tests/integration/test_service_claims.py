"""The idempotency claim and the handlers that run alongside it, on a real NATS server.

A handler marked ``claim_overlapping`` starts while its request id is being claimed (its reads
need not wait) and waits in ``call.proceed()`` before its first side effect. These tests prove
the claim still decides: a retry of a done request gets the recorded reply and the handler's
side effect does not happen again; a duplicate sent while the first is running is told "in
progress" and does nothing; an unmarked handler does not start before its claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import nats
import pytest

from custody.service import protocol
from custody.service.server import Call, Caller, CommandService, claim_overlapping

pytestmark = pytest.mark.integration


class Anyone:
    """Every token is a valid caller named after it (authentication is not under test)."""

    def authenticate(self, token: str) -> Caller:
        return Caller(token, "entity-" + token, (), token=token)


class Recorder:
    """A handler's reads and side effects, by request id."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.effects: list[str] = []
        self.release = threading.Event()
        self.acted = threading.Event()
        self.lock = threading.Lock()
        self.district = threading.Lock()

    def handler(self, call: Call) -> dict[str, Any]:
        # Like a command on one district: the whole command under one lock, so a duplicate
        # waits behind the original to even start reading.
        with self.district:
            self.reads.append(call.request_id)
            call.proceed()
            with self.lock:
                self.effects.append(call.request_id)
                done = len(self.effects)
            self.acted.set()
            if call.args.get("esperar"):
                self.release.wait(10)
            return {"hechos": done}

    async def reads_reach(self, count: int) -> None:
        """Wait (a bounded time) until ``count`` handler runs have started reading."""
        for _ in range(200):
            if len(self.reads) >= count:
                return
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_service(nats_url: str) -> AsyncIterator[tuple[Any, Recorder, Recorder]]:
    overlapping, plain = Recorder(), Recorder()
    suffix = uuid.uuid4().hex[:8]
    handlers: dict[str, Callable[[Call], Any]] = {
        f"prueba.solapada{suffix}": claim_overlapping(overlapping.handler),
        f"prueba.simple{suffix}": plain.handler,
    }
    svc = CommandService(handlers, Anyone())
    nc = await nats.connect(nats_url)
    await svc.start(nc)
    client = await nats.connect(nats_url)
    client.suffix = suffix  # type: ignore[attr-defined]
    try:
        yield client, overlapping, plain
    finally:
        overlapping.release.set()
        plain.release.set()
        await client.close()
        await svc.stop()
        await nc.close()


async def _send(client: Any, command: str, request_id: str, **args: Any) -> Any:
    reply = await client.request(
        protocol.subject_for(f"{command}{client.suffix}"),
        protocol.encode(args),
        timeout=10,
        headers={protocol.TOKEN_HEADER: "ana", protocol.REQUEST_ID_HEADER: request_id},
    )
    try:
        return protocol.decode_reply(reply.data)
    except protocol.RemoteError as error:
        return error.remote_type


Scenario = Callable[[Any, Recorder, Recorder], Coroutine[Any, Any, None]]


def run(nats_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        async with running_service(nats_url) as (client, overlapping, plain):
            await scenario(client, overlapping, plain)

    asyncio.run(main())


def test_a_retry_of_a_done_request_does_not_act_again(nats_url: str) -> None:
    run(nats_url, _retry_of_done)


def test_a_duplicate_while_running_is_in_progress_and_does_nothing(nats_url: str) -> None:
    run(nats_url, _duplicate_while_running)


def test_an_unmarked_handler_starts_only_once_claimed(nats_url: str) -> None:
    run(nats_url, _unmarked)


async def _retry_of_done(client: Any, overlapping: Recorder, _: Recorder) -> None:
    request_id = str(uuid.uuid4())
    first = await _send(client, "prueba.solapada", request_id)
    second = await _send(client, "prueba.solapada", request_id)
    assert first == second == {"hechos": 1}
    await overlapping.reads_reach(2)
    assert overlapping.reads == [request_id, request_id]  # the retry's reads ran...
    assert overlapping.effects == [request_id]  # ...but it stopped before acting
    third = await _send(client, "prueba.solapada", str(uuid.uuid4()))
    assert third == {"hechos": 2}


async def _duplicate_while_running(client: Any, overlapping: Recorder, _: Recorder) -> None:
    request_id = str(uuid.uuid4())
    running = asyncio.ensure_future(_send(client, "prueba.solapada", request_id, esperar=True))
    assert await asyncio.to_thread(overlapping.acted.wait, 10)
    duplicate = await _send(client, "prueba.solapada", request_id, esperar=True)
    assert duplicate == "RequestInProgressError"
    assert not running.done()  # answered at once, not after the original (holding the lock)
    overlapping.release.set()
    assert await running == {"hechos": 1}
    await overlapping.reads_reach(2)  # the duplicate's handler got the lock, read, and stopped
    assert overlapping.reads == [request_id, request_id]
    assert overlapping.effects == [request_id]


async def _unmarked(client: Any, _: Recorder, plain: Recorder) -> None:
    request_id = str(uuid.uuid4())
    assert await _send(client, "prueba.simple", request_id) == {"hechos": 1}
    assert await _send(client, "prueba.simple", request_id) == {"hechos": 1}
    assert plain.reads == [request_id]  # the retry never reached the handler
    assert plain.effects == [request_id]
