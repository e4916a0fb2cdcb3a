"""Issue 16, finding 4: a password argument travels sealed to the service.

``personas alta`` carries the new person's initial password. The client seals it with OpenBao's
transit key ``custodia-solicitudes`` using the coadministrator's own token, bound (derived-key
context) to the command and the request id; only the service's token opens it. Whoever sees the
request body on NATS — here, the service's own responder identity — learns no password; a
password sent in the clear, or a sealed value replayed into another request, is refused and
registers nobody; only a coadministrator can seal, and the service can only open.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import nats
import nats.aio.client
import pytest

from custody import bootstrap
from custody.errors import VaultPermissionDeniedError
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
from custody.vault.client import VaultClient
from custody.vault.sealed_args import MARK, context
from custody.vault.session import login
from tests.e2e.conftest import ServiceWorld
from tests.support.secretscan import scan

pytestmark = pytest.mark.e2e

ENCRYPT = "custodia-transit/encrypt/custodia-solicitudes"
DECRYPT = "custodia-transit/decrypt/custodia-solicitudes"


def _person_args(user: str, password: Any) -> dict[str, Any]:
    return {
        "usuario": user,
        "nombre": user.title(),
        "correo": f"{user}@iecm.mx",
        "rol": "secretaria",
        "contrasena": password,
    }


async def _request_raw(
    world: ServiceWorld, user: str, command: str, args: dict[str, Any], request_id: str
) -> bytes:
    """A request sent by ``user`` exactly as given (no sealing by the client): the reply."""
    options: dict[str, Any] = {
        **world.endpoints("cliente").nats_options(),
        "token": world.token(user),
        "inbox_prefix": inbox_prefix(user),
    }
    nc = await nats.connect(**options, allow_reconnect=False)
    try:
        headers = {
            REQUEST_ID_HEADER: request_id,
            REPLY_KEY_HEADER: ReplyKey.generate().public_b64(),
            TOKEN_HEADER: world.token(user),
        }
        msg = await nc.request(
            subject_for(command), json.dumps(args).encode(), timeout=15, headers=headers
        )
        return bytes(msg.data)
    finally:
        await nc.close()


def _refused(world: ServiceWorld, args: dict[str, Any], request_id: str) -> RemoteError:
    reply = asyncio.run(_request_raw(world, "ana", "personas.alta", args, request_id))
    with pytest.raises(RemoteError) as refused:
        decode_reply(reply)
    return refused.value


def _registered(world: ServiceWorld, user: str) -> bool:
    people = world.call("ana", "personas.lista")
    return any(p.get("usuario") == user for p in people)


def _cannot_log_in(world: ServiceWorld, user: str, password: str) -> None:
    with pytest.raises(Exception) as failed:  # noqa: PT011  (OpenBao's refusal, whatever its type)
        login(world.endpoints().vault_addr, user, password, world.home / f"x-{user}.json")
    assert password not in str(failed.value)


def test_request_body_on_the_wire_holds_no_password(
    service_world: ServiceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``personas.alta`` body the command client publishes to NATS (recorded at nats-py's
    ``request``, which then sends it for real; the responder identity may subscribe only in the
    service's queue group, so it cannot take a copy without taking the request) carries the
    password only as an OpenBao transit ciphertext: the secret scanner finds it in no encoding.
    The service opens it: the new person logs in with that password."""
    world = service_world
    password = "Clave-Inicial-Sellada-7391"
    captured: list[tuple[str, bytes, dict[str, str]]] = []
    real_request = nats.aio.client.Client.request

    async def recording(self: Any, subject: str, payload: bytes = b"", **kw: Any) -> Any:
        captured.append((subject, bytes(payload), dict(kw.get("headers") or {})))
        return await real_request(self, subject, payload, **kw)

    monkeypatch.setattr(nats.aio.client.Client, "request", recording)
    world.call("ana", "personas.alta", _person_args("sellada", password))
    monkeypatch.undo()

    sent = [(body, h) for subject, body, h in captured if subject == subject_for("personas.alta")]
    assert sent
    body = json.loads(sent[0][0])
    assert set(body["contrasena"]) == {MARK}
    assert body["contrasena"][MARK].startswith("vault:v1:")
    wire = b"".join(b + json.dumps(h).encode() for b, h in sent)
    assert scan(wire, [password], where="personas.alta") == []
    session = login(world.endpoints().vault_addr, "sellada", password, world.home / "x-s.json")
    assert session.username == "sellada"


def test_password_in_clear_is_refused(service_world: ServiceWorld) -> None:
    """A ``personas.alta`` request whose ``contrasena`` is plain text is refused by the service
    (SealedArgumentError) and registers nobody: no person, no login."""
    world = service_world
    password = "Clave-En-Claro-5512"
    refused = _refused(world, _person_args("enclaro", password), str(uuid.uuid4()))
    assert refused.remote_type == "SealedArgumentError"
    assert password not in json.dumps(refused.attrs)
    assert not _registered(world, "enclaro")
    _cannot_log_in(world, "enclaro", password)


def test_sealed_value_replayed_in_another_request_is_refused(
    service_world: ServiceWorld,
) -> None:
    """A value sealed for one request id (as ana's client would) does not open in a request
    with another id: transit's derived key answers the wrong context with an error, the
    service refuses, and nobody is registered. The same value under its own id is accepted."""
    world = service_world
    password = "Clave-Repetida-8820"
    original = str(uuid.uuid4())
    ana = VaultClient(world.endpoints().vault_addr, world.token("ana"))
    sealed = ana.write(
        ENCRYPT,
        {
            "plaintext": base64.b64encode(password.encode()).decode(),
            "context": context("personas.alta", original),
        },
        operation="t",
    )
    args = _person_args("repetida", {MARK: sealed["data"]["ciphertext"]})  # type: ignore[index]

    refused = _refused(world, args, str(uuid.uuid4()))
    assert refused.remote_type == "SealedArgumentError"
    assert not _registered(world, "repetida")
    _cannot_log_in(world, "repetida", password)

    reply = asyncio.run(_request_raw(world, "ana", "personas.alta", args, original))
    decode_reply(reply)  # accepted under the id it was sealed for
    assert _registered(world, "repetida")


@pytest.mark.parametrize("user", ["luis", "sofia"])
def test_titular_and_secretaria_cannot_seal(service_world: ServiceWorld, user: str) -> None:
    """OpenBao refuses the encrypt path to a titular's and a secretaria's own token (403)."""
    world = service_world
    client = VaultClient(world.endpoints().vault_addr, world.token(user))
    with pytest.raises(VaultPermissionDeniedError):
        client.write(ENCRYPT, {"plaintext": "eA==", "context": "eA=="}, operation="t")


def test_service_opens_but_cannot_seal_and_coadmin_cannot_open(
    service_world: ServiceWorld,
) -> None:
    """The service's token may decrypt but not encrypt (403); a coadministrator's token may
    encrypt but not decrypt (403): a sealed value opens only in the service."""
    world = service_world
    addr = world.endpoints().vault_addr
    service = VaultClient(addr, bootstrap.service_token(world.settings))
    ana = VaultClient(addr, world.token("ana"))
    ctx = context("personas.alta", str(uuid.uuid4()))
    with pytest.raises(VaultPermissionDeniedError):
        service.write(ENCRYPT, {"plaintext": "eA==", "context": ctx}, operation="t")
    sealed = ana.write(ENCRYPT, {"plaintext": "eA==", "context": ctx}, operation="t")
    ciphertext = sealed["data"]["ciphertext"]  # type: ignore[index]
    with pytest.raises(VaultPermissionDeniedError):
        ana.write(DECRYPT, {"ciphertext": ciphertext, "context": ctx}, operation="t")
    opened = service.write(DECRYPT, {"ciphertext": ciphertext, "context": ctx}, operation="t")
    assert opened["data"]["plaintext"] == "eA=="  # type: ignore[index]
