"""Issue 16, "no long-lived secret crosses the wire": a request carries a request token, never
the session token.

The command line keeps the person's OpenBao session token on their machine (it is sent to
OpenBao only). For each request it makes a child token through the token role
``custodia-solicitud`` — a TTL of seconds, a handful of uses, unable to make tokens — and sends
that in the NATS connect (checked by the auth callout) and in the request header (checked by the
service); once the reply is in, it revokes it. Before this change the session token itself
travelled with every request and every NATS connect: whoever copied it off the wire (finding 4)
could act as the person for the rest of their working day.

Every refusal below is OpenBao's or nats-server's own answer, on the real servers of the e2e
service world.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import nats
import nats.aio.client
import pytest
import requests
from nats.errors import Error as NatsError

from custody.service.callout import inbox_prefix
from custody.service.protocol import (
    REPLY_KEY_HEADER,
    REQUEST_ID_HEADER,
    TOKEN_HEADER,
    RemoteError,
    ReplyKey,
    decode_reply,
    subject_for,
)
from custody.vault.client import Mounts
from custody.vault.layout import (
    REQUEST_TOKEN_MAX_TTL,
    REQUEST_TOKEN_MAX_USES,
    REQUEST_TOKEN_ROLE,
    AccountRef,
)
from custody.vault.session import request_token
from tests.e2e.conftest import ServiceWorld, run_custodia
from tests.support.secretscan import scan

pytestmark = pytest.mark.e2e

ROLE_PATH = f"auth/token/create/{REQUEST_TOKEN_ROLE}"
ACCOUNT = AccountRef.parse("DD05-x")


def _bao(world: ServiceWorld, method: str, path: str, token: str, body: Any = None) -> Any:
    """One raw HTTP call to OpenBao: ``(status, errors or data)`` exactly as the server said."""
    answer = requests.request(
        method,
        f"{world.endpoints().vault_addr}/v1/{path}",
        headers={"X-Vault-Token": token},
        json=body,
        timeout=30,
    )
    try:
        decoded = answer.json()
    except ValueError:
        decoded = {}
    return answer.status_code, decoded or {}


def _root_lookup(world: ServiceWorld, root: str, token: str) -> dict[str, Any] | None:
    """What OpenBao says of ``token`` asked with the root token (spends none of its uses);
    None if OpenBao no longer knows it (revoked, used up or expired)."""
    status, body = _bao(world, "POST", "auth/token/lookup", root, {"token": token})
    return body.get("data") if status == 200 else None


@pytest.fixture
def wiretap(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """What the command client puts on the NATS wire, recorded at nats-py (which then sends it
    for real): the ``token`` of each NATS connect and the headers and body of each request."""
    seen: list[tuple[str, bytes]] = []
    real_connect = nats.connect
    real_request = nats.aio.client.Client.request

    async def connect(*args: Any, **kw: Any) -> Any:
        seen.append(("connect", str(kw.get("token") or "").encode()))
        return await real_connect(*args, **kw)

    async def request(self: Any, subject: str, payload: bytes = b"", **kw: Any) -> Any:
        seen.append((subject, json.dumps(kw.get("headers") or {}).encode() + bytes(payload)))
        return await real_request(self, subject, payload, **kw)

    monkeypatch.setattr(nats, "connect", connect)
    monkeypatch.setattr(nats.aio.client.Client, "request", request)
    return seen


def _captured_tokens(seen: list[tuple[str, bytes]]) -> set[str]:
    tokens = {data.decode() for what, data in seen if what == "connect" and data}
    for what, data in seen:
        if what != "connect":
            headers = json.loads(data[: data.index(b"}") + 1])
            tokens.add(headers[TOKEN_HEADER])
    return tokens


async def _raw_request(
    world: ServiceWorld, user: str, token: str, commands: list[tuple[str, dict[str, Any]]]
) -> list[bytes | Exception]:
    """``commands`` sent one after another on ONE connection made with ``token``, each with
    ``token`` in its header; each reply's bytes (or the connect's refusal)."""
    options: dict[str, Any] = {
        **world.endpoints("cliente").nats_options(),
        "token": token,
        "inbox_prefix": inbox_prefix(user),
    }
    nc = await nats.connect(**options, allow_reconnect=False)
    out: list[bytes | Exception] = []
    try:
        for command, args in commands:
            headers = {
                REQUEST_ID_HEADER: str(uuid.uuid4()),
                REPLY_KEY_HEADER: ReplyKey.generate().public_b64(),
                TOKEN_HEADER: token,
            }
            msg = await nc.request(
                subject_for(command), json.dumps(args).encode(), timeout=30, headers=headers
            )
            out.append(bytes(msg.data))
    finally:
        await nc.close()
    return out


async def _nats_refuses(world: ServiceWorld, user: str, token: str) -> bool:
    options: dict[str, Any] = {
        **world.endpoints("cliente").nats_options(),
        "token": token,
        "inbox_prefix": inbox_prefix(user),
    }
    try:
        nc = await nats.connect(**options, allow_reconnect=False)
    except NatsError as exc:
        return "authorization violation" in str(exc).lower()
    await nc.close()
    return False


def test_an_eavesdropper_gets_only_a_dead_request_token(
    service_world: ServiceWorld, wiretap: list[tuple[str, bytes]]
) -> None:
    """bety reveals DD05-x, then asks who she is. Everything her command line put on NATS (each
    connect's token, each request's headers and body) is recorded. Her session token is in none
    of it, in any encoding; what was captured are request tokens, one per request, other than
    the session token. Once the commands are answered each captured token is dead in OpenBao's
    eyes: ``lookup-self`` and a read of DD05-x's metadata get 403, making a token with it is
    refused, and nats-server refuses a connection with it (Authorization Violation). Before:
    the captured token was the session token, still valid for hours."""
    world = service_world
    session = world.token("bety")
    world.call("bety", "revelar", {"cuenta": "DD05-x", "motivo": "publicar"})
    world.call("bety", "sesion.quien")

    assert scan(wiretap, [session], where="wire[bety]") == []
    captured = _captured_tokens(wiretap)
    assert len(captured) == 2  # one request token per request, the same in connect and header
    assert session not in captured
    for token in captured:
        assert _bao(world, "GET", "auth/token/lookup-self", token)[0] == 403
        for read in (ACCOUNT.metadata_path(Mounts()), ACCOUNT.data_path(Mounts())):
            assert _bao(world, "GET", read, token)[0] == 403
        assert _bao(world, "POST", ROLE_PATH, token, {"ttl": "60s"})[0] in (400, 403)
        assert _bao(world, "POST", "auth/token/create", token, {"ttl": "60s"})[0] in (400, 403)
        assert asyncio.run(_nats_refuses(world, "bety", token))
    # The session itself still works: only what crossed the wire is dead.
    assert _bao(world, "GET", "auth/token/lookup-self", session)[0] == 200


def test_a_request_token_is_short_few_uses_and_cannot_make_tokens(
    service_world: ServiceWorld,
) -> None:
    """A request token made from bety's session (as her command line makes it) is, by OpenBao's
    own lookup: a child of her session (not an orphan), of her entity, not renewable, with at
    most ``REQUEST_TOKEN_MAX_TTL`` seconds and the uses asked for. With it OpenBao refuses to
    make any token ("restricted use token cannot generate child tokens"). Asking the role for
    unlimited uses and an hour gets the role's bounds instead: OpenBao enforces them, not the
    client."""
    world = service_world
    root = str(world.root_vault()._token)
    session = world.token("bety")
    addr = world.endpoints().vault_addr
    token = request_token(addr, session, uses=9, ttl=60)
    info = _root_lookup(world, root, token)
    assert info is not None
    parent = _root_lookup(world, root, session)
    assert parent is not None
    assert info["orphan"] is False
    assert info["entity_id"] == parent["entity_id"]
    assert info["renewable"] is False
    assert info["num_uses"] == 9
    assert 0 < info["ttl"] <= 60
    assert info["path"] == ROLE_PATH

    status, body = _bao(world, "POST", ROLE_PATH, token, {"ttl": "60s", "num_uses": 1})
    assert status == 400
    assert "restricted use token cannot generate child tokens" in " ".join(body["errors"])
    assert _bao(world, "POST", "auth/token/create", token, {"ttl": "60s"})[0] in (400, 403)

    status, body = _bao(world, "POST", ROLE_PATH, session, {"ttl": "1h", "num_uses": 0})
    assert status == 200
    greedy = body["auth"]
    assert greedy["num_uses"] == REQUEST_TOKEN_MAX_USES
    assert 0 < greedy["lease_duration"] <= REQUEST_TOKEN_MAX_TTL


def test_peoples_policy_refuses_making_tokens_directly(service_world: ServiceWorld) -> None:
    """bety's session (a designated administrator) and ana's (a coadministrator) may make
    tokens only through the role: ``auth/token/create`` and ``create-orphan`` answer 403
    (permission denied); a child with a policy the session lacks answers 400."""
    world = service_world
    for user in ("bety", "ana"):
        session = world.token(user)
        for path in ("auth/token/create", "auth/token/create-orphan"):
            status, body = _bao(world, "POST", path, session, {"ttl": "60s"})
            assert status == 403, (user, path)
            assert "permission denied" in " ".join(body.get("errors", []))
    status, body = _bao(
        world, "POST", ROLE_PATH, world.token("bety"), {"policies": ["custodia-coadministrador"]}
    )
    assert status == 400
    assert "subset" in " ".join(body["errors"])


def test_a_request_token_cannot_name_someone_else(service_world: ServiceWorld) -> None:
    """bety asks for a request token whose metadata claims ``username: ana``, or whose display
    name is ana's: OpenBao refuses (the default policy bounds the role's parameters; a forged
    name would also mislead OpenBao's audit log). Her plain request token is named bety by the
    service (by her entity's login), and the auth callout put her connection in bety's inbox
    (ana's would not have received the reply)."""
    world = service_world
    for named in ({"meta": {"username": "ana"}}, {"display_name": "userpass-ana"}):
        status, _ = _bao(
            world, "POST", ROLE_PATH, world.token("bety"), {"ttl": "60s", "num_uses": 5, **named}
        )
        assert status == 403, named
    status, body = _bao(
        world, "POST", ROLE_PATH, world.token("bety"), {"ttl": "60s", "num_uses": 5}
    )
    assert status == 200
    token = body["auth"]["client_token"]
    [reply] = asyncio.run(_raw_request(world, "bety", token, [("sesion.quien", {})]))
    assert isinstance(reply, bytes)
    assert decode_reply(reply)["usuario"] == "bety"


def test_closing_the_session_revokes_its_request_tokens_and_writes_stop_at_once(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """bety logs in again (a session file of her own for this test) and makes a request token
    with uses to spare. On one connection with it, ``sesion.quien`` works (the service has now
    checked and cached it); then ``custodia sesion cerrar`` (the real executable) revokes her
    session, and with it OpenBao revokes the request token: the next command on that same, still
    open connection — a reveal, which writes — is refused (NotAuthenticatedError) and adds
    nothing to the ledger."""
    world = service_world
    path = tmp_path / "sesion-bety.json"
    session = world.login("bety", path)
    token = request_token(world.endpoints().vault_addr, session.token, uses=12, ttl=60)

    async def scenario() -> tuple[bytes, bytes, int, int]:
        options: dict[str, Any] = {
            **world.endpoints("cliente").nats_options(),
            "token": token,
            "inbox_prefix": inbox_prefix("bety"),
        }
        nc = await nats.connect(**options, allow_reconnect=False)

        async def send(command: str, args: dict[str, Any]) -> bytes:
            headers = {
                REQUEST_ID_HEADER: str(uuid.uuid4()),
                REPLY_KEY_HEADER: ReplyKey.generate().public_b64(),
                TOKEN_HEADER: token,
            }
            msg = await nc.request(
                subject_for(command), json.dumps(args).encode(), timeout=30, headers=headers
            )
            return bytes(msg.data)

        try:
            first = await send("sesion.quien", {})
            closed = await asyncio.to_thread(
                run_custodia,
                "sesion",
                "cerrar",
                home=world.home,
                env={"CUSTODIA_SESION": str(path)},
            )
            assert closed.returncode == 0, closed.stderr
            before = await asyncio.to_thread(world.ledger_messages)
            second = await send("revelar", {"cuenta": "DD05-x", "motivo": "tras cerrar"})
            after = await asyncio.to_thread(world.ledger_messages)
        finally:
            await nc.close()
        return first, second, before, after

    first, second, before, after = asyncio.run(scenario())
    assert decode_reply(first)["usuario"] == "bety"
    with pytest.raises(RemoteError) as refused:
        decode_reply(second)
    assert refused.value.remote_type == "NotAuthenticatedError"
    assert after == before
    assert not path.exists()
    assert _bao(world, "GET", "auth/token/lookup-self", token)[0] == 403
