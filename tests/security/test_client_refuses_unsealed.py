"""The command client takes a secret only sealed to its own key: a reply whose secret field
travels in clear (a responder that is not the service, or a service that stopped sealing) is
refused, so the CLI never shows — and never teaches anyone to expect — an unsealed secret."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from custody.bootstrap import Endpoints
from custody.service.client import CommandClient
from custody.service.protocol import ProtocolError, ReplyKey, seal

pytestmark = pytest.mark.integration


class Responder:
    """A responder on ``custodia.cmd.>`` of a real NATS server answering with ``data``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.data: Any = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _serve(self) -> Any:
        nc = await nats.connect(self.url)

        async def answer(msg: Any) -> None:
            data = self.data
            if data == "seal-for-requester":
                data = {"envoltorio": seal("s.token", msg.headers["Custodia-Reply-Key"])}
            await msg.respond(json.dumps({"ok": True, "data": data}).encode())

        await nc.subscribe("custodia.cmd.>", cb=answer)
        await nc.flush()
        return nc

    def __enter__(self) -> Responder:
        self.thread.start()
        self.nc = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def responder(nats_url: str) -> Iterator[Responder]:
    with Responder(nats_url) as r:
        yield r


def _client(nats_url: str) -> CommandClient:
    # No session (there is no OpenBao here to make a request token): the reply is the point.
    return CommandClient(Endpoints(nats_url, "http://127.0.0.1:9"), None, timeout=10)


@pytest.mark.parametrize(
    "data",
    [
        {"cuenta": "DD05-x", "envoltorio": "s.unsealed-token"},
        {"cuenta": "DD05-x", "version": 2, "contrasena": "unsealed-password"},
        {"cuenta": "DD05-x", "envoltorio": {"sealed": "x", "clear": "s.token"}},
        {"cuenta": "DD05-x", "envoltorio": 12345678},
    ],
    ids=["token", "password", "sealed-plus-clear", "number"],
)
def test_an_unsealed_secret_field_is_refused(
    responder: Responder, nats_url: str, data: dict[str, Any]
) -> None:
    """A reply with ``envoltorio`` or ``contrasena`` not as ``{"sealed": ...}`` raises
    ProtocolError in the client instead of handing the value over."""
    responder.data = data
    with pytest.raises(ProtocolError, match="not sealed"):
        _client(nats_url).call("revelar", {"cuenta": "DD05-x", "motivo": "x"}, retries=0)


def test_a_sealed_secret_field_opens(responder: Responder, nats_url: str) -> None:
    """The control: the same reply sealed to the requester's key opens to the secret."""
    responder.data = "seal-for-requester"
    assert _client(nats_url).call("revelar", {"cuenta": "DD05-x"}, retries=0) == {
        "envoltorio": "s.token"
    }
    assert ReplyKey.generate().public_b64()
