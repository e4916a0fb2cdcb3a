"""The command client when the NATS server it is connected to dies mid-request.

nats-py leaves a request pending on a closed connection until its timeout, although the reply
can no longer arrive. The client must instead notice the loss at once and send the request
again (same request id) through another member, or say that NATS is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from custody.bootstrap import Endpoints
from custody.service import protocol
from custody.service.client import CommandClient, ServiceUnavailableError
from custody.stack.record import pid_alive
from custody.stack.servers import NatsProcess, terminate
from tests.conftest import start_test_nats

pytestmark = pytest.mark.integration

T = TypeVar("T")
TIMEOUT = 60.0  # far longer than any answer below may take


class Responders:
    """A responder on each of several independent NATS servers, on their own event loop.

    The first delivery of a request id is held (never answered) and reported; any later
    delivery of the same id, on whichever server, is answered."""

    def __init__(self, urls: list[str]) -> None:
        self.held = threading.Event()
        self.held_on: str | None = None
        self.answered_on: list[str] = []
        self._seen: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._connections = [self._run(self._listen(url)) for url in urls]

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _listen(self, url: str) -> Client:
        nc = await nats.connect(url, allow_reconnect=False)

        async def on_request(msg: Msg) -> None:
            request_id = (msg.headers or {}).get(protocol.REQUEST_ID_HEADER, "")
            if request_id not in self._seen:
                self._seen.add(request_id)
                self.held_on = url
                self.held.set()
                return
            self.answered_on.append(url)
            await msg.respond(protocol.ok_reply({"respondido_por": url}))

        await nc.subscribe(protocol.subject_for("revelar"), cb=on_request)
        await nc.flush()
        return nc

    def close(self) -> None:
        async def close_all() -> None:
            for nc in self._connections:
                if not nc.is_closed:
                    await nc.close()

        self._run(close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[NatsProcess]]:
    servers = [start_test_nats(tmp_path / name) for name in ("a", "b")]
    try:
        yield servers
    finally:
        for server in servers:
            if pid_alive(server.pid):
                terminate(server.pid)


def _kill_where_held(responders: Responders, servers: list[NatsProcess]) -> NatsProcess:
    assert responders.held.wait(30), "the request never reached a responder"
    victim = next(s for s in servers if s.url == responders.held_on)
    os.kill(victim.pid, signal.SIGKILL)
    return victim


def test_a_request_lost_with_its_server_is_sent_again_through_another_at_once(
    two_servers: list[NatsProcess],
) -> None:
    urls = [s.url for s in two_servers]
    responders = Responders(urls)
    try:
        client = CommandClient(
            Endpoints(",".join(urls), "http://127.0.0.1:1"), None, timeout=TIMEOUT
        )
        outcome: dict[str, object] = {}

        def call() -> None:
            started = time.monotonic()
            outcome["reply"] = client.call("revelar", {"cuenta": "DD01-x"})
            outcome["took"] = time.monotonic() - started

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        victim = _kill_where_held(responders, two_servers)
        caller.join(TIMEOUT + 10)
        survivor = next(s.url for s in two_servers if s is not victim)
        # Answered by the surviving server's responder, to the same request id, long before the
        # timeout the first attempt would otherwise have waited for.
        assert outcome["reply"] == {"respondido_por": survivor}
        assert responders.answered_on == [survivor]
        assert client.retries == 1
        assert float(outcome["took"]) < TIMEOUT / 4  # type: ignore[arg-type]
    finally:
        responders.close()


def test_a_request_lost_with_the_only_server_fails_at_once_as_unreachable(
    two_servers: list[NatsProcess],
) -> None:
    only = two_servers[0]
    responders = Responders([only.url])
    try:
        client = CommandClient(Endpoints(only.url, "http://127.0.0.1:1"), None, timeout=TIMEOUT)
        failure: list[BaseException] = []
        took: list[float] = []

        def call() -> None:
            started = time.monotonic()
            try:
                client.call("revelar", {"cuenta": "DD01-x"})
            except ServiceUnavailableError as exc:
                failure.append(exc)
            took.append(time.monotonic() - started)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        _kill_where_held(responders, two_servers)
        caller.join(TIMEOUT + 10)
        assert len(failure) == 1
        assert isinstance(failure[0], ServiceUnavailableError)
        assert failure[0].reason.startswith("nats: ")  # unreachable, not "timeout"
        assert took[0] < TIMEOUT / 4
        assert responders.answered_on == []
    finally:
        responders.close()
