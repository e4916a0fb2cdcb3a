"""R7 on the wire: whoever listens on NATS with an identity a person holds learns no secret.

Each person reaches NATS with an identity of their own (their OpenBao token, checked by the
service's auth callout: publish on the command subjects, subscribe to their own inbox only);
the Secretaría's verifier has ``verificador``. Each identity is given an eavesdropper that
subscribes to everything it may — ``>`` first, then the subjects its permissions might allow,
its own inbox included — while a full flow runs: a rotation (the staged password comes back),
a reveal (a wrapping token), a 2FA code (another wrapping token, then a code) and a new person
with a password. The captured traffic holds none of those secrets in any encoding, and every
secret field of every captured reply is sealed to its requester's key — even on the
requester's own inbox, as a second connection of the same person hears it.

To add an identity, add an :class:`Identity` to ``IDENTITIES``: how to connect as it, what it
may subscribe to besides ``LISTEN``, and which secret reply fields it must hear.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
import pytest

from custody.service.callout import inbox_prefix
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from tests.e2e.conftest import SERVICE_PASSWORD, ServiceWorld
from tests.support.secretscan import scan

pytestmark = pytest.mark.e2e

# Reply fields that carry a secret, by the protocol's own description (custody/service/protocol.py):
# written out here, not imported, so a change there cannot silently shrink the check.
SECRET_FIELDS = {"contrasena", "envoltorio"}
# What an eavesdropper tries to subscribe to, widest first.
LISTEN = [">", "_INBOX.>", "custodia.>", "custodia.cmd.>", "$JS.>", "$SRV.>", "$KV.>"]
TOTP_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # tests/e2e/conftest.py: totp_uri


@dataclass(frozen=True)
class Identity:
    """A NATS identity a person can hold, and how to connect as it."""

    name: str
    connect_options: Callable[[ServiceWorld], dict[str, Any]]
    # Subjects it may subscribe to besides LISTEN (a person's own inbox).
    own: Callable[[ServiceWorld], list[str]] = lambda _w: []
    # Replies it must hear during the flow, by secret field: {"contrasena": 1, ...}.
    hears: dict[str, int] | None = None


def _person(user: str) -> Callable[[ServiceWorld], dict[str, Any]]:
    def options(world: ServiceWorld) -> dict[str, Any]:
        return {
            **world.endpoints("cliente").nats_options(),
            "token": world.token(user),
            "inbox_prefix": inbox_prefix(user),
        }

    return options


def _own_inbox(user: str) -> Callable[[ServiceWorld], list[str]]:
    return lambda _w: [f"{inbox_prefix(user)}.>"]


def _bystander(world: ServiceWorld) -> dict[str, Any]:
    """sofia, of the Secretaría Ejecutiva: a person with nothing to do with the flow."""
    if not world.session_file("sofia").exists():
        world.add_person("sofia", "secretaria")
    return _person("sofia")(world)


IDENTITIES = [
    # Another person: only their own inbox, where nothing of the flow arrives.
    Identity("otra_persona", _bystander, _own_inbox("sofia")),
    Identity("verificador", lambda w: w.endpoints("verificador").nats_options()),
    # The requesters themselves, on a second connection: their replies, sealed.
    Identity("misma_persona_ana", _person("ana"), _own_inbox("ana"), {"contrasena": 1}),
    Identity("misma_persona_bety", _person("bety"), _own_inbox("bety"), {"envoltorio": 2}),
]

_people = itertools.count()


@dataclass
class Capture:
    messages: list[tuple[str, dict[str, str], bytes]]
    refused: list[str]  # the server's own permission errors, as received


async def _listen(options: dict[str, Any], own: list[str]) -> tuple[Any, Capture]:
    capture = Capture([], [])

    async def on_error(exc: Exception) -> None:
        capture.refused.append(str(exc))

    async def on_message(msg: Any) -> None:
        capture.messages.append((msg.subject, dict(msg.headers or {}), msg.data or b""))

    nc = await nats.connect(**options, allow_reconnect=False, error_cb=on_error)
    for subject in [*LISTEN, *own]:
        await nc.subscribe(subject, cb=on_message)
    await nc.flush()
    return nc, capture


def _heard(capture: Capture, wanted: dict[str, int]) -> bool:
    replies = _replies(capture)
    return all(sum(field in r for r in replies) >= n for field, n in wanted.items())


def _replies(capture: Capture) -> list[dict[str, Any]]:
    out = []
    for _subject, _headers, data in capture.messages:
        try:
            body = json.loads(data)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("ok") is True and isinstance(body.get("data"), dict):
            out.append(body["data"])
    return out


def _run_flow(world: ServiceWorld, person: str) -> tuple[list[str], int]:
    """A rotation, a reveal, a 2FA code, a new person with a password; the secrets of it all
    and the number of commands sent."""
    vault = Credentials(VaultClient(world.endpoints().vault_addr))
    staged = world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
    world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
    revealed = world.call("bety", "revelar", {"cuenta": "DD05-x", "motivo": "publicar"})
    password = vault.unwrap(revealed["envoltorio"], "DD05-x").password
    assert password == staged["contrasena"]
    code = world.call("bety", "codigo", {"cuenta": "DD05-x", "motivo": "entrar"})
    totp = vault.unwrap_totp(code["envoltorio"], "DD05-x").code
    new_password = SERVICE_PASSWORD.format(person)
    world.call(
        "ana",
        "personas.alta",
        {
            "usuario": person,
            "nombre": person.title(),
            "correo": f"{person}@iecm.mx",
            "rol": "administrador",
            "distrito": "DD07",
            "contrasena": new_password,
        },
    )
    secrets = [
        staged["contrasena"],
        revealed["envoltorio"],
        code["envoltorio"],
        totp,
        TOTP_SEED,
        new_password,
        world.token("ana"),
        world.token("bety"),
    ]
    return secrets, 5


@pytest.mark.parametrize("identity", IDENTITIES, ids=lambda i: i.name)
def test_an_eavesdropper_learns_no_secret(service_world: ServiceWorld, identity: Identity) -> None:
    """Listening with ``identity`` on everything NATS lets it read during a full flow: no
    password, wrapping token, TOTP code or seed, nor session token appears in any captured
    message, raw or encoded, whole or in part; every secret field of a captured reply is a
    ``{"sealed": ...}`` value; the subjects it may not read were refused by NATS itself."""
    person = f"oyente{next(_people)}"

    async def scenario() -> tuple[Capture, list[str]]:
        options = await asyncio.to_thread(identity.connect_options, service_world)
        nc, capture = await _listen(options, identity.own(service_world))
        try:
            secrets, _sent = await asyncio.to_thread(_run_flow, service_world, person)
            if identity.hears:  # wait for the replies to reach the listener too
                deadline = asyncio.get_running_loop().time() + 60
                while not _heard(capture, identity.hears):
                    assert asyncio.get_running_loop().time() < deadline, len(capture.messages)
                    await asyncio.sleep(0.05)
            await nc.flush()
        finally:
            await nc.close()
        return capture, secrets

    capture, secrets = asyncio.run(scenario())

    # NATS refused the wide subscriptions (the proof is the server's own error).
    refused = {e.lower() for e in capture.refused}  # nats-py lower-cases the server's -ERR
    assert 'nats: permissions violation for subscription to ">"' in refused
    assert 'nats: permissions violation for subscription to "custodia.cmd.>"' in refused
    # The listener did hear the flow, so finding nothing below means something.
    replies = _replies(capture)
    assert _heard(capture, identity.hears or {})
    if not identity.hears:  # nobody else's replies reach it
        assert replies == []
    for reply in replies:
        for key in SECRET_FIELDS & reply.keys():
            sealed = isinstance(reply[key], dict) and set(reply[key]) == {"sealed"}
            assert sealed, f"{key} travelled unsealed"  # (the value itself is not printed)
    traffic = [(s, h, d) for s, h, d in capture.messages]
    assert scan(traffic, secrets, where=f"wire[{identity.name}]") == []
