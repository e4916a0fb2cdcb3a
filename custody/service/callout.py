"""NATS auth callout: each person reaches NATS with an identity bound to their OpenBao login.

There is no shared client credential. A person's command line connects with an OpenBao token
as the NATS auth token — a request token made for that one request (custody.vault.session), never
the
session token; nats-server hands the connection to this callout (it runs inside
``custodia servicio``, as the user ``autenticador`` of the ``AUTH`` account), which checks the
token with OpenBao and answers with a user JWT, signed by the callout's issuer key, that places
the connection in the ``CUSTODIA`` account with exactly these rights:

    publish    custodia.cmd.>            (command requests, nothing else: no $SRV, $JS, $KV)
    subscribe  _INBOX.<user>.>           (its own inbox: nobody reads another person's replies)

and an expiry no later than the token's. A bad, expired or revoked token does not connect.
The service's own identities (``servicio``, ``escritor``, ``administrador``, ``verificador``)
are ``auth_users``: they keep their passwords and bypass the callout.

The JWTs are encoded by hand (NOTES-nats-auth.md): header ``{"typ":"JWT","alg":"ed25519-nkey"}``,
base64url without padding, an Ed25519 signature with the issuer's nkey seed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from typing import Any

import structlog

from custody.service.permissions import (
    ACCOUNT,
    AUTH_ACCOUNT,
    CALLOUT_USER,
    FIRST_LOGIN_COMMAND,
    first_login_name,
    inbox_prefix,
    subject_name,
)
from custody.service.protocol import SUBJECT_PREFIX
from custody.service.server import NotAuthenticatedError

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
CALLOUT_QUEUE = "custodia-autenticador"
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
__all__ = ["AUTH_ACCOUNT", "CALLOUT_USER", "AuthCallout", "inbox_prefix", "subject_name"]

log = structlog.get_logger("custodia.autenticador")


def new_issuer_seed() -> str:
    """A fresh account nkey seed (``SA…``): signs the callout's answers."""
    import nkeys

    return str(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT).decode())


def issuer_public_key(seed: str) -> str:
    """The public account key (``A…``) nats-server checks the callout's answers with."""
    import nkeys

    return str(nkeys.from_seed(seed.encode()).public_key.decode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(claims: dict[str, Any], seed: str) -> str:
    """A JWT signed with an nkey seed, as nats-server expects."""
    import nkeys

    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = nkeys.from_seed(seed.encode()).sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{_b64(signature)}"


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (the server's request: only the server publishes on the callout's
    subject in the AUTH account, so its signature is not checked here)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(body))
    if not isinstance(claims, dict):
        raise ValueError("not a JWT")
    return claims


def user_permissions(username: str, *, first_login: bool = False) -> dict[str, Any]:
    """A person's rights on NATS: send commands, read their own inbox. A first-login token's
    connection (issue 18) may send one command, ``segundo_factor.inscribir``, and read the
    inbox of its own name (:func:`first_login_name`), which no person's connection has."""
    if first_login:
        return {
            "pub": {"allow": [f"{SUBJECT_PREFIX}.{FIRST_LOGIN_COMMAND}"]},
            "sub": {"allow": [f"{inbox_prefix(first_login_name(username))}.>"]},
        }
    return {
        "pub": {"allow": [f"{SUBJECT_PREFIX}.>"]},
        "sub": {"allow": [f"{inbox_prefix(username)}.>"]},
    }


class AuthCallout:
    """Answers nats-server's authorization requests (``$SYS.REQ.USER.AUTH``)."""

    def __init__(self, authenticator: Any, issuer_seed: str, *, account: str = ACCOUNT) -> None:
        self.authenticator = authenticator
        self._seed = issuer_seed
        self.issuer = issuer_public_key(issuer_seed)
        self.account = account
        self._subscription: Any = None

    def __repr__(self) -> str:
        return f"AuthCallout({self.issuer!r})"

    async def start(self, nc: Any) -> None:
        """Serve the requests on ``nc`` (the ``autenticador`` connection), in a queue group: any
        instance of the service may answer for any server of the cluster."""
        self._subscription = await nc.subscribe(
            CALLOUT_SUBJECT, queue=CALLOUT_QUEUE, cb=self._handle
        )
        await nc.flush()

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _handle(self, msg: Any) -> None:
        try:
            request = decode_claims(msg.data.decode())
            nats = request["nats"]
            user_nkey = str(nats["user_nkey"])
            server_id = str(nats["server_id"]["id"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("autenticacion_malformada")
            return
        token = (nats.get("connect_opts") or {}).get("auth_token")
        answer: dict[str, Any]
        try:
            caller = await self._authenticate(token)
            answer = {
                "jwt": self.user_jwt(
                    user_nkey,
                    caller.username,
                    caller.expires_at,
                    first_login=bool(getattr(caller, "first_login", False)),
                )
            }
            log.info("conexion_autorizada", usuario=caller.username)
        except Exception as exc:  # any failure is a refusal (never the token in the log)
            answer = {"error": "no autorizado"}
            log.info("conexion_rechazada", error=type(exc).__name__)
        if msg.reply:
            await msg.respond(self.response_jwt(user_nkey, server_id, answer).encode())

    async def _authenticate(self, token: Any) -> Any:
        if not isinstance(token, str) or not token:
            raise NotAuthenticatedError("missing")
        loop = asyncio.get_running_loop()
        # Always checked with OpenBao; a CachedAuthenticator shared with the service remembers
        # it, so the request that follows on this connection is not checked twice (a request
        # token has few uses, and each check spends one).
        check = getattr(self.authenticator, "fresh", self.authenticator.authenticate)
        return await loop.run_in_executor(None, check, token)

    def user_jwt(
        self, user_nkey: str, username: str, expires_at: Any = None, *, first_login: bool = False
    ) -> str:
        """The person's user JWT: placed in the CUSTODIA account, with their rights."""
        if not subject_name(username):
            raise ValueError("empty user name")
        now = int(time.time())
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "iat": now,
            "iss": self.issuer,
            "sub": user_nkey,
            "aud": self.account,
            "name": first_login_name(username) if first_login else username,
            "nats": {
                **user_permissions(username, first_login=first_login),
                "subs": -1,
                "data": -1,
                "payload": -1,
                "type": "user",
                "version": 2,
            },
        }
        if expires_at is not None:
            claims["exp"] = max(now + 1, int(expires_at.timestamp()))
        return encode_jwt(claims, self._seed)

    def response_jwt(self, user_nkey: str, server_id: str, answer: dict[str, Any]) -> str:
        claims = {
            "jti": uuid.uuid4().hex,
            "iat": int(time.time()),
            "iss": self.issuer,
            "sub": user_nkey,
            "aud": server_id,
            "nats": {**answer, "type": "authorization_response", "version": 2},
        }
        return encode_jwt(claims, self._seed)
