"""Per-person NATS identity (issue 16, finding 7 and "no shared client credential"), on a real
nats-server with the auth callout and a real OpenBao.

Each person connects with their OpenBao token; the callout checks it with OpenBao and lets the
connection send commands and read ``_INBOX.<user>.>`` only. Before, every command line shared
the ``cliente`` password, which could subscribe to ``_INBOX.>`` (read everybody's replies) and
publish ``$SRV`` requests; a request could name another person's inbox as its reply subject.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError
from structlog.testing import capture_logs

from custody.service import protocol
from custody.service.callout import inbox_prefix
from custody.service.commands import VaultAuthenticator
from custody.service.server import Call, CommandService
from custody.stack.servers import BaoProcess, NatsProcess
from custody.vault.client import VaultClient
from tests.integration.service.people import (
    Accounts,
    connect_person,
    people_tokens,
    running_callout,
    start_secured_nats,
)

pytestmark = pytest.mark.integration


class Errors(list[str]):
    """What a connection's ``error_cb`` received, and an event set at each arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def append(self, error: str) -> None:
        super().append(error)
        self.arrived.set()

    async def wait_for(self, text: str) -> None:
        """Until an error containing ``text`` (lower case) arrived (bounded: a failure)."""

        async def wait() -> None:
            while not any(text in e.lower() for e in self):
                self.arrived.clear()
                await self.arrived.wait()

        try:
            await asyncio.wait_for(wait(), 10)
        except TimeoutError:
            pytest.fail(f"no {text!r} from the server; errors: {list(self)}")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, openbao: BaoProcess
) -> Iterator[tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]]]:
    workdir: Path = tmp_path_factory.mktemp("nats-people")
    accounts = Accounts()
    proc = start_secured_nats(workdir, accounts)
    try:
        yield proc, accounts, openbao, people_tokens(openbao, ("alice", "bob", "olga"))
    finally:
        proc.stop()


def _whoami(call: Call) -> dict[str, str]:
    return {"usuario": call.caller.username}


async def _service(
    url: str,
    accounts: Accounts,
    bao: BaoProcess,
    handlers: dict[str, Any] | None = None,
    *,
    cached: bool = False,
) -> tuple[CommandService, Any]:
    """The command service as ``custodia servicio`` runs it: per-person inboxes enforced;
    ``sesion.quien`` and ``handlers``; with ``cached``, its token cache too."""
    from custody.service.server import Authenticator, CachedAuthenticator

    responder = await nats.connect(url, user="servicio", password=accounts.password("servicio"))
    writer = await nats.connect(url, user="escritor", password=accounts.password("escritor"))
    authenticator: Authenticator = VaultAuthenticator(VaultClient(bao.addr, bao.root_token))
    if cached:
        authenticator = CachedAuthenticator(authenticator)
    service = CommandService(
        {"sesion.quien": _whoami, **(handlers or {})}, authenticator, person_inboxes=True
    )
    await _bucket(url, accounts)
    await service.start(responder, writer)
    return service, (responder, writer)


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


def _headers(token: str) -> dict[str, str]:
    return {protocol.REQUEST_ID_HEADER: str(uuid.uuid4()), protocol.TOKEN_HEADER: token}


def test_a_person_reads_only_their_own_inbox_and_sends_only_commands(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """alice, connected with her token: her command is answered in her inbox; the server
    refuses her subscriptions to ``_INBOX.>`` and to bob's inbox, her ``$SRV`` and JetStream
    publishes; a request of hers whose reply subject is bob's inbox is not answered (bob
    receives nothing, the service logs the refusal)."""
    proc, accounts, bao, tokens = world

    async def scenario() -> None:
        service, connections = await _service(proc.url, accounts, bao)
        errors = Errors()
        async with running_callout(proc.url, accounts, bao):
            alice = await connect_person(proc.url, "alice", tokens["alice"], errors)
            bob = await connect_person(proc.url, "bob", tokens["bob"])
            try:
                reply = await alice.request(
                    protocol.subject_for("sesion.quien"),
                    b"{}",
                    timeout=5,
                    headers=_headers(tokens["alice"]),
                )
                assert protocol.decode_reply(reply.data) == {"usuario": "alice"}

                await alice.subscribe("_INBOX.>")
                await alice.flush()
                await errors.wait_for('subscription to "_inbox.>"')
                await alice.subscribe(f"{inbox_prefix('bob')}.>")
                await alice.flush()
                await errors.wait_for('subscription to "_inbox.bob.>"')
                for subject in ("$SRV.PING", "$SRV.INFO.custodia", "$JS.API.INFO"):
                    await alice.publish(subject, b"", reply=f"{inbox_prefix('alice')}.x")
                    await alice.flush()
                    await errors.wait_for(f'publish to "{subject.lower()}"')

                # A request of alice's, with bob's inbox as its reply subject.
                got_by_bob: list[bytes] = []

                async def on_bob(msg: Any) -> None:
                    got_by_bob.append(msg.data)

                await bob.subscribe(f"{inbox_prefix('bob')}.>", cb=on_bob)
                await bob.flush()
                with capture_logs() as logs:  # logged too (the capture is process-wide)
                    await alice.publish(
                        protocol.subject_for("sesion.quien"),
                        b"{}",
                        reply=f"{inbox_prefix('bob')}.robado",
                        headers=_headers(tokens["alice"]),
                    )
                    # Her next (legitimate) request is answered; the forged one is handled
                    # alongside (each request has a task of its own): waited for.
                    await alice.request(
                        protocol.subject_for("sesion.quien"),
                        b"{}",
                        timeout=5,
                        headers=_headers(tokens["alice"]),
                    )
                    for _ in range(500):
                        if service.dropped:
                            break
                        await asyncio.sleep(0.02)
                await bob.flush()
                assert got_by_bob == []
                assert service.dropped == Counter({"sesion.quien": 1})
                assert any(e["event"] == "respuesta_rechazada" for e in logs)
            finally:
                await alice.close()
                await bob.close()
                await service.stop()
                for conn in connections:
                    await conn.close()

    asyncio.run(scenario())


def test_bad_or_revoked_tokens_and_no_token_do_not_connect(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """The server refuses the connection (Authorization Violation) for a made-up token, no
    token at all, a shared-client style user/password that no longer exists, and olga's token
    once revoked in OpenBao (it connected a moment before)."""
    proc, accounts, bao, tokens = world

    async def refused(**options: Any) -> None:
        with pytest.raises(NatsError, match=r"(?i)authorization violation"):
            await nats.connect(proc.url, allow_reconnect=False, **options)

    async def scenario() -> None:
        async with running_callout(proc.url, accounts, bao):
            await refused(token="hvs.inventado")
            await refused()
            await refused(user="cliente", password="cualquiera")
            olga = await connect_person(proc.url, "olga", tokens["olga"])
            await olga.close()
            VaultClient(bao.addr, bao.root_token).write(
                "auth/token/revoke", {"token": tokens["olga"]}, operation="revoke-token"
            )
            await refused(token=tokens["olga"], inbox_prefix=inbox_prefix("olga"))

    asyncio.run(scenario())


def test_the_callout_cleans_names_and_bounds_the_identity_by_the_token() -> None:
    """A user name becomes one subject token (``.`` as ``~``; no ``*``, ``>`` or spaces), and
    the user JWT expires no later than the OpenBao token it was issued for."""
    from datetime import UTC, datetime, timedelta

    from custody.service.callout import AuthCallout, decode_claims, new_issuer_seed

    assert inbox_prefix("ana.b *>x") == "_INBOX.ana~bx"
    callout = AuthCallout(None, new_issuer_seed())
    expiry = datetime.now(UTC) + timedelta(seconds=90)
    claims = decode_claims(callout.user_jwt("UABC", "ana.b", expiry))
    assert claims["exp"] <= int(expiry.timestamp())
    assert claims["nats"]["sub"] == {"allow": ["_INBOX.ana~b.>"]}
    assert claims["nats"]["pub"] == {"allow": ["custodia.cmd.>"]}
    assert claims["aud"] == "CUSTODIA"


def test_a_write_with_a_revoked_token_is_refused_at_once(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """Finding 10: rosa's token is checked (and cached) by a read, then revoked in OpenBao; on
    her connection, still open, the very next command that writes is refused
    (NotAuthenticatedError) and does not run; the token cache serves reads only."""
    proc, accounts, bao, _ = world
    token = people_tokens(bao, ("rosa",))["rosa"]
    ran: list[str] = []

    def write(call: Call) -> dict[str, str]:
        ran.append(call.caller.username)
        return {"hecho": "sí"}

    async def scenario() -> None:
        service, connections = await _service(
            proc.url, accounts, bao, {"cuentas.alta": write}, cached=True
        )
        async with running_callout(proc.url, accounts, bao):
            rosa = await connect_person(proc.url, "rosa", token)
        try:
            first = await rosa.request(
                protocol.subject_for("sesion.quien"), b"{}", timeout=5, headers=_headers(token)
            )
            assert protocol.decode_reply(first.data) == {"usuario": "rosa"}  # now cached
            VaultClient(bao.addr, bao.root_token).write(
                "auth/token/revoke", {"token": token}, operation="revoke-token"
            )
            answer = await rosa.request(
                protocol.subject_for("cuentas.alta"), b"{}", timeout=5, headers=_headers(token)
            )
            with pytest.raises(protocol.RemoteError) as refused:
                protocol.decode_reply(answer.data)
            assert refused.value.remote_type == "NotAuthenticatedError"
            assert ran == []
        finally:
            await rosa.close()
            await service.stop()
            for connection in connections:
                await connection.close()

    asyncio.run(scenario())


def test_a_reveal_with_a_revoked_token_from_the_cache_is_refused_by_openbao_itself(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """Issue 21: ``revelar`` has OpenBao judge the caller's own token before any side effect
    (the capabilities on the operation's marker, asked with that token), so the service runs it
    with a token from its cache without looking the token up again first. rosa's token is
    cached by a read, then revoked: her ``revelar`` gets OpenBao's own refusal of that token
    (403), does nothing after it, and she is told NotAuthenticatedError (a dead session), not
    a missing permission. With a live token, the same refusal for a missing permission stays
    VaultPermissionDeniedError."""
    from custody.errors import VaultPermissionDeniedError

    proc, accounts, bao, _ = world
    tokens = people_tokens(bao, ("rosa", "raul"))
    marker = "custodia-acceso/DD05/revelar/x"
    refused_by_openbao: list[str] = []
    after_refusal: list[str] = []

    def reveal(call: Call) -> dict[str, str]:
        client = VaultClient(bao.addr, call.caller.token)
        try:
            answer = client.request(
                "POST",
                "sys/capabilities-self",
                json={"paths": [marker]},
                operation="authorize-revelar",
            )
        except VaultPermissionDeniedError:
            refused_by_openbao.append(call.caller.username)
            raise
        after_refusal.append(call.caller.username)  # a live token: judged, no permission
        assert "read" not in ((answer or {}).get("data") or {}).get(marker, [])
        raise VaultPermissionDeniedError("authorize-revelar", marker, "DD05-x")

    async def scenario() -> None:
        service, connections = await _service(
            proc.url, accounts, bao, {"revelar": reveal}, cached=True
        )
        async with running_callout(proc.url, accounts, bao):
            rosa = await connect_person(proc.url, "rosa", tokens["rosa"])
            raul = await connect_person(proc.url, "raul", tokens["raul"])
        try:
            for person, token in ((rosa, tokens["rosa"]), (raul, tokens["raul"])):
                first = await person.request(
                    protocol.subject_for("sesion.quien"), b"{}", timeout=5, headers=_headers(token)
                )
                assert "usuario" in protocol.decode_reply(first.data)  # now cached
            VaultClient(bao.addr, bao.root_token).write(
                "auth/token/revoke", {"token": tokens["rosa"]}, operation="revoke-token"
            )
            args = b'{"cuenta": "DD05-x", "motivo": "prueba"}'
            answers = {}
            for name, person, token in (
                ("rosa", rosa, tokens["rosa"]),
                ("raul", raul, tokens["raul"]),
            ):
                answer = await person.request(
                    protocol.subject_for("revelar"), args, timeout=5, headers=_headers(token)
                )
                with pytest.raises(protocol.RemoteError) as refused:
                    protocol.decode_reply(answer.data)
                answers[name] = refused.value.remote_type
            assert answers == {
                "rosa": "NotAuthenticatedError",
                "raul": "VaultPermissionDeniedError",
            }
            # rosa's command ran on the cached token (unless the machine took longer than the
            # cache's 5 s), and OpenBao refused it; it never got past that refusal.
            assert "rosa" not in after_refusal
            assert set(refused_by_openbao) <= {"rosa"}
            assert after_refusal == ["raul"]
        finally:
            await rosa.close()
            await raul.close()
            await service.stop()
            for connection in connections:
                await connection.close()

    asyncio.run(scenario())


def test_no_other_identity_reads_a_persons_replies(
    world: tuple[NatsProcess, Accounts, BaoProcess, dict[str, str]],
) -> None:
    """The responder, the writer, the administrator and the verifier may subscribe to
    ``_INBOX.>`` (their own inboxes) but a person's replies (``_INBOX.<user>.<nuid>.<n>``) are
    denied to them: subscribed to ``_INBOX.>`` and to ``_INBOX.bob.>``, none receives bob's
    reply, which bob does receive."""
    proc, accounts, bao, tokens = world

    async def scenario() -> None:
        service, connections = await _service(proc.url, accounts, bao)
        async with running_callout(proc.url, accounts, bao):
            bob = await connect_person(proc.url, "bob", tokens["bob"])
        others: list[Any] = []
        subscriptions: list[Any] = []
        try:
            for user in ("servicio", "escritor", "administrador", "verificador"):
                nc = await nats.connect(proc.url, user=user, password=accounts.password(user))
                others.append(nc)
                for subject in ("_INBOX.>", f"{inbox_prefix('bob')}.>"):
                    subscriptions.append(await nc.subscribe(subject))
                await nc.flush()
            reply = await bob.request(
                protocol.subject_for("sesion.quien"),
                b"{}",
                timeout=5,
                headers=_headers(tokens["bob"]),
            )
            assert reply.subject.startswith(f"{inbox_prefix('bob')}.")
            assert protocol.decode_reply(reply.data) == {"usuario": "bob"}
            for nc in others:
                await nc.flush()  # anything delivered before this is in the pending queues
            seen = []
            for sub in subscriptions:
                for _ in range(sub.pending_msgs):
                    seen.append((await sub.next_msg(timeout=1)).subject)
            assert not [s for s in seen if s.startswith(f"{inbox_prefix('bob')}.")], seen
        finally:
            for nc in [*others, bob]:
                await nc.close()
            await service.stop()
            for conn in connections:
                await conn.close()

    asyncio.run(scenario())
