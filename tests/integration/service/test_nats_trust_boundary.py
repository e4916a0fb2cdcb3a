"""The trust boundary is enforced by NATS itself: only the service writes the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import StreamConfig
from nats.js.errors import Error as JetStreamError

from custody.service.protocol import QUEUE_GROUP
from custody.stack.servers import BaoProcess, NatsProcess
from tests.integration.service.people import (
    Accounts,
    connect_person,
    people_tokens,
    running_callout,
    start_secured_nats,
)

pytestmark = pytest.mark.integration

STREAM = "custodia_boundary"
EVENTS = "custodia.boundary.>"


@pytest.fixture(scope="module")
def secured_nats(
    tmp_path_factory: pytest.TempPathFactory, openbao: BaoProcess
) -> Iterator[tuple[NatsProcess, Accounts, BaoProcess, str]]:
    workdir: Path = tmp_path_factory.mktemp("nats-auth")
    accounts = Accounts()
    proc = start_secured_nats(workdir, accounts, accounts.render([STREAM], [EVENTS]))
    try:
        yield proc, accounts, openbao, people_tokens(openbao, ("carla",))["carla"]
    finally:
        proc.stop()


async def _connect(proc: NatsProcess, user: str, password: str, errors: list[str]) -> Client:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        proc.url, user=user, password=password, error_cb=on_error, allow_reconnect=False
    )


def test_client_cannot_write_the_ledger_but_can_send_commands(
    secured_nats: tuple[NatsProcess, Accounts, BaoProcess, str],
) -> None:
    """A client connection cannot publish an event nor touch the stream; the service's writer
    can append (the stream is made by the administrative identity); the verifier reads but
    cannot write; commands flow from client to the service's responder."""
    proc, accounts, bao, token = secured_nats
    passwords = {name: user.password for name, user in accounts.users.items()}

    async def scenario() -> None:
        errors: list[str] = []
        admin = await _connect(proc, "administrador", passwords["administrador"], errors)
        service = await _connect(proc, "servicio", passwords["servicio"], errors)
        writer = await _connect(proc, "escritor", passwords["escritor"], errors)
        async with running_callout(proc.url, accounts, bao):  # a person: carla, by her token
            client = await connect_person(proc.url, "carla", token, errors)
        verifier = await _connect(proc, "verificador", passwords["verificador"], errors)
        await admin.jetstream().add_stream(StreamConfig(name=STREAM, subjects=[EVENTS]))
        js = writer.jetstream()
        await js.publish("custodia.boundary.a", b"legit")

        # The client: a JetStream publish to an event subject is refused by the server.
        with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
            await client.jetstream(timeout=1).publish("custodia.boundary.a", b"forged", timeout=1)
        await client.publish("custodia.boundary.a", b"forged-core")
        await client.flush()
        with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
            await client.jetstream(timeout=1).purge_stream(STREAM)
        with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
            await client.jetstream(timeout=1).stream_info(STREAM)

        # The verifier: reads the ledger, cannot write or purge it.
        read = await verifier.jetstream(timeout=1).get_msg(STREAM, 1)
        assert read.data == b"legit"
        with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
            await verifier.jetstream(timeout=1).publish("custodia.boundary.b", b"forged", timeout=1)
        with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
            await verifier.jetstream(timeout=1).purge_stream(STREAM)

        info = await js.stream_info(STREAM)
        assert info.state.messages == 1
        assert any("permissions violation" in e.lower() for e in errors)

        # Commands: the client may request, the service answers.
        async def answer(msg: Msg) -> None:
            await msg.respond(b"pong:" + msg.data)

        await service.subscribe("custodia.cmd.ping", cb=answer, queue=QUEUE_GROUP)
        await service.flush()
        reply = await client.request("custodia.cmd.ping", b"1", timeout=2)
        assert reply.data == b"pong:1"
        # ...but may not listen on the command subjects (it would see other users' tokens).
        errors.clear()
        await client.subscribe("custodia.cmd.>")
        await client.flush()
        await asyncio.sleep(0.2)
        assert any("permissions violation" in e.lower() for e in errors)
        for conn in (admin, service, writer, client, verifier):
            await conn.close()

    asyncio.run(scenario())
