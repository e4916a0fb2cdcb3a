"""Reply-subject injection (issue 16, finding 1) and the least privilege of the service's NATS
identities, mounted against real nats-server processes.

The attack: a holder of a client credential sends ``$SRV.PING``/``$SRV.INFO`` or a command
request whose reply subject is a ledger subject (the events stream, the checkpoint notes) or a
key of the idempotency bucket. Before, the service answered with its own permissions and the
answer was stored in the append-only ledger (``bitacora verificar`` failed for good). Now the
service answers only inboxes (it drops anything else before running the command), and even if it
did not, its responder identity may publish only to inboxes: the server refuses.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from structlog.testing import capture_logs

from custody.ledger import audit
from custody.ledger.follower import FollowerSettings, LedgerFollower, LocalCheckpointSigner
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import connect
from custody.runner import prepare_streams
from custody.service import protocol
from custody.service.permissions import IDEMPOTENCY_BUCKET, LEDGER_STREAMS
from custody.service.server import Call, Caller, CommandService, NotAuthenticatedError
from custody.stack.servers import BaoProcess, NatsProcess
from tests.conftest import start_test_nats
from tests.integration.ledger.world import Cuenta, CustodiaApp
from tests.integration.service.people import (
    Accounts,
    connect_person,
    people_tokens,
    running_callout,
    start_secured_nats,
)

pytestmark = pytest.mark.integration

NAMES = LedgerNames.for_app()
KV_STREAM = f"KV_{IDEMPOTENCY_BUCKET}"
# Where an attacker would like the service's answer to land.
TARGETS = [
    f"{NAMES.events_prefix}.events.forjado",
    NAMES.notes_subject,
    f"$KV.{IDEMPOTENCY_BUCKET}.forjada",
]
REFUSED = (NatsError, JetStreamError, asyncio.TimeoutError)


class Nobody:
    """Refuses every token, as OpenBao does for a made-up one (the attack needs no login:
    the error answer is what lands in the ledger)."""

    def authenticate(self, token: str) -> Caller:
        raise NotAuthenticatedError("invalid")


def _handlers() -> dict[str, Any]:
    def whoami(call: Call) -> dict[str, str]:
        return {"usuario": call.caller.username}

    return {"sesion.quien": whoami, "cuentas.lista": whoami}


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, openbao: BaoProcess
) -> Iterator[tuple[NatsProcess, Any]]:
    """A server with Custodia's accounts and auth callout, its ledger made by the administrative
    identity, 12 events written and checkpointed by the writer; mallory logged in to OpenBao."""
    workdir: Path = tmp_path_factory.mktemp("nats-reply")
    accounts = Accounts()
    users = accounts.users
    proc = start_secured_nats(workdir, accounts)
    try:

        def env(user: str) -> dict[str, str]:
            return {
                "PERSISTENCE_MODULE": "events.jetstream",
                "NATS_URL": proc.url,
                "NATS_USER": user,
                "NATS_PASSWORD": users[user].password,
            }

        admin = CustodiaApp(env=env("administrador"))
        admin.save(Cuenta("DD01-x"))
        prepare_streams(admin, 1)
        admin.close()
        writer = CustodiaApp(env=env("escritor"))
        for _ in range(11):
            writer.save(Cuenta("DD05-x"))
        writer.close()
        signer = LocalCheckpointSigner()
        conn = connect(proc.url, "escritor", users["escritor"].password)
        try:
            LedgerFollower(conn, signer, NAMES, FollowerSettings(every_events=5)).checkpoint_now()
        finally:
            conn.close()
        tokens = people_tokens(openbao, ("mallory",))
        yield proc, (accounts, signer, tokens, openbao)
    finally:
        proc.stop()


class Errors(list[str]):
    """What a connection's ``error_cb`` received, and an event set at each arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def append(self, error: str) -> None:
        super().append(error)
        self.arrived.set()


async def _connect(url: str, user: str, password: str, errors: Errors) -> Client:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        url, user=user, password=password, error_cb=on_error, allow_reconnect=False
    )


async def _refused(errors: Errors, subjects: list[str]) -> None:
    """Wait until the server has reported a publish permission violation for each subject
    (reported asynchronously, through ``error_cb``)."""

    def missing() -> list[str]:
        seen = " ".join(errors).lower()
        return [s for s in subjects if f'publish to "{s.lower()}"' not in seen]

    async def wait() -> None:
        while missing():
            errors.arrived.clear()
            await errors.arrived.wait()

    try:
        await asyncio.wait_for(wait(), 10)
    except TimeoutError:
        pytest.fail(f"no refusal by the server for {missing()}; errors: {errors}")


async def _counts(nc: Client) -> dict[str, int]:
    js = nc.jetstream(timeout=2)
    return {s: (await js.stream_info(s)).state.messages for s in [*LEDGER_STREAMS, KV_STREAM]}


async def _start_service(
    url: str, users: Mapping[str, Any] | None, token: str | None = None
) -> tuple[CommandService, tuple[Client, Client, Errors]]:
    """The command service with its two identities (or one connection with ``token`` on a
    server without permissions)."""
    errors = Errors()
    if users is None:
        responder = await nats.connect(url, token=token)
        writer = responder
    else:
        responder = await _connect(url, "servicio", users["servicio"].password, errors)
        writer = await _connect(url, "escritor", users["escritor"].password, errors)
    service = CommandService(_handlers(), Nobody(), public=frozenset({"sesion.quien"}))
    await service.start(responder, writer)
    return service, (responder, writer, errors)


async def _attack(attacker: Client, reply: str) -> None:
    """Every way to make the service publish on ``reply``."""
    for verb in ("PING", "INFO", "STATS"):
        await attacker.publish(f"$SRV.{verb}", b"", reply=reply)
        await attacker.publish(f"$SRV.{verb}.{protocol.SERVICE_NAME}", b"", reply=reply)
    for command, token in (("sesion.quien", None), ("cuentas.lista", "inventado")):
        headers = {protocol.REQUEST_ID_HEADER: str(uuid.uuid4())}
        if token:
            headers[protocol.TOKEN_HEADER] = token
        await attacker.publish(
            protocol.subject_for(command), protocol.encode({}), reply=reply, headers=headers
        )
    await attacker.flush()


async def _answered(requester: Client) -> None:
    """A legitimate request of each kind, answered: the attack's messages, sent before on the
    same subjects, have been handled (and dropped) by then."""
    await requester.request(f"$SRV.PING.{protocol.SERVICE_NAME}", b"", timeout=5)
    await requester.request(f"$SRV.INFO.{protocol.SERVICE_NAME}", b"", timeout=5)
    await requester.request(f"$SRV.STATS.{protocol.SERVICE_NAME}", b"", timeout=5)
    headers = {protocol.REQUEST_ID_HEADER: str(uuid.uuid4())}
    reply = await requester.request(
        protocol.subject_for("sesion.quien"), protocol.encode({}), timeout=5, headers=headers
    )
    assert protocol.decode_reply(reply.data) == {"usuario": "anónimo"}
    headers = {protocol.REQUEST_ID_HEADER: str(uuid.uuid4()), protocol.TOKEN_HEADER: "x"}
    await requester.request(
        protocol.subject_for("cuentas.lista"), protocol.encode({}), timeout=5, headers=headers
    )


async def _dropped(service: CommandService, expected: Counter[str]) -> Counter[str]:
    """What the service dropped, once it has dropped as many as ``expected`` (or after 30 s: a
    loaded 2-core machine once took more than 10), and then a little longer: one more would be
    a drop too many. Counted by the service itself, not read back from the logs: capturing
    structlog is process-wide and not thread-safe."""
    for _ in range(1500):  # 30 s at most
        if service.dropped.total() >= expected.total():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    return Counter(service.dropped)


def _every_drop(targets: int = 1) -> Counter[str]:
    """What :func:`_attack` makes the service drop, ``targets`` times over: 3 verbs on 2
    subjects each, and 2 commands."""
    verbs = {f"$SRV.{verb}": 2 * targets for verb in ("PING", "INFO", "STATS")}
    return Counter({**verbs, "sesion.quien": targets, "cuentas.lista": targets})


def test_service_answers_only_inboxes_even_where_the_server_would_let_it(
    tmp_path: Path,
) -> None:
    """On a server with no permissions at all (the service's code is the only defence), the
    service drops every request and every $SRV verb whose reply subject is not an inbox: it
    runs nothing, publishes nothing there, and logs the refusal. (A server of its own, with a
    token of its own: no other test's service, nor a client of an earlier server on the same
    port still reconnecting, shares the queue group.)"""
    token = secrets.token_hex(16)
    nats_server = start_test_nats(tmp_path, f'authorization {{ token: "{token}" }}\n')

    async def scenario() -> None:
        watcher = await nats.connect(nats_server.url, token=token)
        js = watcher.jetstream(timeout=2)
        stream = f"trampa-{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        service, (responder, _, _) = await _start_service(nats_server.url, None, token)
        try:
            with capture_logs() as logs:
                await _attack(watcher, f"{stream}.respuesta")
                await _answered(watcher)
                # Each verb subject is a subscription of its own (handled in its own order):
                # the legitimate requests above synchronise only the ones they share.
                dropped = await _dropped(service, _every_drop())
            assert (await js.stream_info(stream)).state.messages == 0
            assert dropped == _every_drop()
            # Each drop is logged, with the attacker's subject (cut short).
            logged = [e for e in logs if e["event"] == "respuesta_rechazada"]
            assert {e["respuesta"] for e in logged} <= {f"{stream}.respuesta"}
            assert logged, "no drop was logged"
        finally:
            await service.stop()
            await responder.close()
            await js.delete_stream(stream)
            await watcher.close()

    try:
        asyncio.run(scenario())
    finally:
        nats_server.stop()


def test_reply_injection_is_refused_by_server_and_service(
    secured: tuple[NatsProcess, Any], tmp_path: Path
) -> None:
    """With Custodia's accounts, a person (mallory, logged in) aiming the service's answers at
    the events stream,
    the checkpoint notes or a bucket key changes nothing: its $SRV publishes are refused by
    the server, its command requests are dropped by the service, the ledger's and the
    bucket's message counts stay the same and the ledger still verifies. And the responder
    identity itself cannot publish on those subjects (server refusal)."""
    proc, (accounts, signer, tokens, bao) = secured
    users = accounts.users

    async def scenario() -> None:
        errors = Errors()
        admin = await _connect(proc.url, "administrador", users["administrador"].password, Errors())
        service, (responder, writer, service_errors) = await _start_service(proc.url, users)
        async with running_callout(proc.url, accounts, bao):
            attacker = await connect_person(proc.url, "mallory", tokens["mallory"], errors)
        try:
            before = await _counts(admin)
            with capture_logs() as logs:
                for target in TARGETS:
                    await _attack(attacker, target)
                # A legitimate command from the same client is answered: the attack's requests,
                # sent before it on the same subject, have been handled by then.
                headers = {protocol.REQUEST_ID_HEADER: str(uuid.uuid4())}
                reply = await attacker.request(
                    protocol.subject_for("sesion.quien"), b"{}", timeout=5, headers=headers
                )
                assert protocol.decode_reply(reply.data) == {"usuario": "anónimo"}
                headers = {
                    protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
                    protocol.TOKEN_HEADER: "x",
                }
                await attacker.request(
                    protocol.subject_for("cuentas.lista"), b"{}", timeout=5, headers=headers
                )
            assert await _counts(admin) == before
            # The server refused the client's $SRV publishes...
            await _refused(errors, ["$SRV.PING", "$SRV.INFO", "$SRV.STATS"])
            # ...and the service dropped the command requests before running them (and logged
            # them: the capture may miss one if another thread reconfigures structlog).
            assert service.dropped == Counter(
                {"sesion.quien": len(TARGETS), "cuentas.lista": len(TARGETS)}
            )
            assert any(e["event"] == "respuesta_rechazada" for e in logs)
            # Even if the service answered, its responder identity may publish only to inboxes.
            for target in TARGETS:
                await responder.publish(target, b"forjado")
            await responder.flush()
            await _refused(service_errors, TARGETS)
            assert await _counts(admin) == before
        finally:
            await service.stop()
            for conn in (responder, writer, attacker, admin):
                await conn.close()
        verifier = connect(proc.url, "verificador", users["verificador"].password)
        try:
            assert audit.verify_online(verifier, NAMES, signer.public_keyring()).ok
        finally:
            verifier.close()

    asyncio.run(scenario())


def test_writer_and_verifier_cannot_destroy_the_ledger(secured: tuple[NatsProcess, Any]) -> None:
    """The writer appends but cannot delete, purge, re-create or change a ledger stream or the
    bucket, nor delete a message; the verifier cannot either; the responder has no JetStream
    right at all. Each refusal is the server's (a publish permission violation on the API
    subject), and the streams are intact afterwards."""
    proc, (accounts, *_) = secured
    users = accounts.users
    events, checkpoints = LEDGER_STREAMS

    async def scenario() -> None:
        admin = await _connect(proc.url, "administrador", users["administrador"].password, Errors())
        before = await _counts(admin)
        config = (await admin.jetstream().stream_info(events)).config

        async def attempt_as(user: str) -> None:
            errors = Errors()
            nc = await _connect(proc.url, user, users[user].password, errors)
            js = nc.jetstream(timeout=0.5)
            attempts = {
                f"$JS.API.STREAM.DELETE.{events}": js.delete_stream(events),
                f"$JS.API.STREAM.DELETE.{checkpoints}": js.delete_stream(checkpoints),
                f"$JS.API.STREAM.DELETE.{KV_STREAM}": js.delete_stream(KV_STREAM),
                f"$JS.API.STREAM.PURGE.{events}": js.purge_stream(events),
                f"$JS.API.STREAM.MSG.DELETE.{events}": js.delete_msg(events, 1),
                f"$JS.API.STREAM.UPDATE.{events}": js.update_stream(config),
                f"$JS.API.STREAM.CREATE.{events}-copia": js.add_stream(
                    name=f"{events}-copia", subjects=["copia.>"]
                ),
            }
            # All at once: each is refused on its own (none has a reply to wait for but the
            # client's timeout), so waiting for them one after another only adds the timeouts.
            outcomes = await asyncio.gather(*attempts.values(), return_exceptions=True)
            for subject, outcome in zip(attempts, outcomes, strict=True):
                assert isinstance(outcome, REFUSED), (user, subject, outcome)
            await _refused(errors, list(attempts))
            await nc.close()

        # Each identity on a connection of its own, at the same time.
        await asyncio.gather(*(attempt_as(u) for u in ("escritor", "verificador", "servicio")))
        assert await _counts(admin) == before
        assert (await admin.jetstream().stream_info(events)).config.subjects == config.subjects
        await admin.close()

    asyncio.run(scenario())


def test_writer_cannot_listen_to_commands_nor_answer_for_the_service(
    secured: tuple[NatsProcess, Any],
) -> None:
    """The writer identity (whose password the service's machine holds) may not subscribe to
    the command subjects, where callers' requests travel; the responder may, only in the
    service's queue group (a plain subscription, which would copy every request, is refused)."""
    proc, (accounts, *_) = secured
    users = accounts.users

    async def scenario() -> None:
        writer_errors, responder_errors = Errors(), Errors()
        writer = await _connect(proc.url, "escritor", users["escritor"].password, writer_errors)
        responder = await _connect(
            proc.url, "servicio", users["servicio"].password, responder_errors
        )
        await writer.subscribe(f"{protocol.SUBJECT_PREFIX}.>")
        await responder.subscribe(f"{protocol.SUBJECT_PREFIX}.>")
        await responder.subscribe(f"{protocol.SUBJECT_PREFIX}.>", queue=protocol.QUEUE_GROUP)
        await writer.flush()
        await responder.flush()
        for errors in (writer_errors, responder_errors):
            while not any("subscription to" in e.lower() for e in errors):
                errors.arrived.clear()
                await asyncio.wait_for(errors.arrived.wait(), 10)
        await responder.flush()  # any later refusal would have been reported by now
        assert sum("subscription to" in e.lower() for e in responder_errors) == 1
        await writer.close()
        await responder.close()

    asyncio.run(scenario())
