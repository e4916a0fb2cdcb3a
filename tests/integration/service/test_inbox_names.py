"""Two people whose user names differ only by a dot (``ana.lopez`` and ``analopez``, both valid
OpenBao user names) have inboxes of their own: one cannot read the other's replies.

A NATS subject token cannot hold a dot, so a user name is written into the inbox prefix with
its dots replaced; the replacement must not be a character a user name may hold, or two people
would share ``_INBOX.<name>.>`` and the server would deliver one's replies to the other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from custody.service import protocol
from custody.service.callout import inbox_prefix
from custody.service.commands import VaultAuthenticator
from custody.service.server import CommandService
from custody.stack.servers import BaoProcess, NatsProcess
from custody.vault.client import VaultClient
from tests.integration.service.people import (
    Accounts,
    connect_person,
    people_tokens,
    running_callout,
    start_secured_nats,
)
from tests.integration.service.test_person_identity import Errors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, openbao: BaoProcess
) -> Iterator[tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]]]:
    workdir: Path = tmp_path_factory.mktemp("nats-inboxes")
    accounts = Accounts()
    proc = start_secured_nats(workdir, accounts)
    try:
        yield proc, accounts, openbao, people_tokens(openbao, ("ana.lopez", "analopez"))
    finally:
        proc.stop()


def _whoami(call: Any) -> dict[str, str]:
    return {"usuario": call.caller.username}


def test_a_person_does_not_receive_the_replies_of_a_name_that_differs_by_a_dot(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """analopez listens on her whole inbox while ana.lopez asks the service who she is: ana.lopez
    gets her answer and analopez receives nothing (before, both inbox prefixes were
    ``_INBOX.analopez`` and the server delivered ana.lopez's reply to analopez too); the server
    refuses analopez a subscription to ana.lopez's inbox."""
    proc, accounts, bao, tokens = world

    async def scenario() -> None:
        responder = await nats.connect(
            proc.url, user="servicio", password=accounts.password("servicio")
        )
        writer = await nats.connect(
            proc.url, user="escritor", password=accounts.password("escritor")
        )
        authenticator = VaultAuthenticator(VaultClient(bao.addr, bao.root_token))
        service = CommandService({"sesion.quien": _whoami}, authenticator, person_inboxes=True)
        await _bucket(proc.url, accounts)
        await service.start(responder, writer)
        errors = Errors()
        try:
            async with running_callout(proc.url, accounts, bao):
                ana = await connect_person(proc.url, "ana.lopez", tokens["ana.lopez"])
                other = await connect_person(proc.url, "analopez", tokens["analopez"], errors)
                try:
                    seen: list[bytes] = []

                    async def collect(msg: Any) -> None:
                        seen.append(msg.data)

                    await other.subscribe(f"{inbox_prefix('analopez')}.>", cb=collect)
                    await other.subscribe(f"{inbox_prefix('ana.lopez')}.>", cb=collect)
                    await other.flush()
                    reply = await ana.request(
                        protocol.subject_for("sesion.quien"),
                        b"{}",
                        timeout=10,
                        headers={
                            protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
                            protocol.TOKEN_HEADER: tokens["ana.lopez"],
                        },
                    )
                    assert protocol.decode_reply(reply.data) == {"usuario": "ana.lopez"}
                    # The server sent the reply before answering this round trip.
                    await other.flush()
                    assert seen == []
                    await errors.wait_for(
                        f'subscription to "{inbox_prefix("ana.lopez").lower()}.>"'
                    )
                finally:
                    await ana.close()
                    await other.close()
        finally:
            await service.stop()
            await responder.close()
            await writer.close()

    asyncio.run(scenario())


async def _bucket(url: str, accounts: Accounts) -> None:
    """The idempotency bucket, made as ``custodia init`` makes it (administrative identity)."""
    from nats.js.errors import BucketNotFoundError

    from custody.service.server import IDEMPOTENCY_BUCKET, idempotency_bucket_config

    admin = await nats.connect(
        url, user="administrador", password=accounts.password("administrador")
    )
    try:
        await admin.jetstream().key_value(IDEMPOTENCY_BUCKET)
    except BucketNotFoundError:
        await admin.jetstream().create_key_value(idempotency_bucket_config(1))
    finally:
        await admin.close()
