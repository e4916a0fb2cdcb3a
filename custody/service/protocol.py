"""The wire protocol between the ``custodia`` CLI and ``custodia servicio`` over NATS.

A request is a NATS request on ``custodia.cmd.<command>`` (``custodia.cmd.rotar.iniciar``)::

    headers  Custodia-Token        the caller's request token (custody.vault.session; never in the
    body)
             Custodia-Request-Id   an idempotency key (UUID) chosen by the client; a retry of a
                                   request whose reply was lost carries the same key
             Custodia-Reply-Key    the client's ephemeral X25519 public key (base64), to which
                                   sensitive reply fields are sealed
    body     JSON object: the command's arguments (at most MAX_REQUEST_BYTES)

A reply is JSON: ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"type": ..., "attrs":
{...}}}`` plus the NATS micro error headers. Sensitive values (a wrapping token, a staged
password) travel only inside ``{"sealed": "<base64>"}``: ChaCha20-Poly1305 under a key agreed
(X25519 + HKDF-SHA256) between an ephemeral service key and the client's ephemeral key, so
nobody who can read NATS traffic, reply inboxes included, learns them.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from events.errors import CustodiaError

if TYPE_CHECKING:  # imported where used: importing the wire module stays cheap
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

SUBJECT_PREFIX = "custodia.cmd"
SERVICE_NAME = "custodia"
QUEUE_GROUP = "custodia-servicio"
TOKEN_HEADER = "Custodia-Token"  # noqa: S105  # a header name, not a secret
REQUEST_ID_HEADER = "Custodia-Request-Id"
REPLY_KEY_HEADER = "Custodia-Reply-Key"
MAX_REQUEST_BYTES = 64 * 1024
MAX_TEXT = 4000

_COMMAND = re.compile(r"^[a-z][a-z0-9_-]{0,30}(\.[a-z][a-z0-9_-]{0,30}){0,2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_HKDF_INFO = b"custodia reply v1"
SEALED_FIELDS = frozenset({"contrasena", "envoltorio", "otpauth"})  # reply fields: only sealed


class ProtocolError(CustodiaError):
    """A request or reply does not follow the protocol; ``problem`` says how."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class RemoteError(CustodiaError):
    """An error raised in the service, carried back to the client by type name and facts."""

    def __init__(
        self, remote_type: str, attrs: dict[str, Any], chain: list[str] | None = None
    ) -> None:
        super().__init__(remote_type)
        self.remote_type = remote_type
        self.remote_chain = chain or [remote_type]
        self.attrs = attrs
        for key, value in attrs.items():
            if not hasattr(CustodiaError, key) and key.isidentifier():
                setattr(self, key, value)


def subject_for(command: str) -> str:
    if not _COMMAND.fullmatch(command):
        raise ProtocolError(f"invalid command name {command!r}")
    return f"{SUBJECT_PREFIX}.{command}"


def command_of(subject: str) -> str:
    prefix = SUBJECT_PREFIX + "."
    if not subject.startswith(prefix):
        raise ProtocolError("subject outside the command space")
    command = subject[len(prefix) :]
    if not _COMMAND.fullmatch(command):
        raise ProtocolError("invalid command name")
    return command


def valid_request_id(value: str | None) -> bool:
    # fullmatch: ``$`` alone would also accept a trailing newline.
    return bool(value and _REQUEST_ID.fullmatch(value))


def valid_reply_key(value: str | None) -> bool:
    """Whether ``value`` is a reply key :func:`seal` can use: base64 of an X25519 public key
    that yields a shared secret (low-order points do not). Checked before a command runs, so a
    bad key cannot make a recorded command fail afterwards."""
    if not value or len(value) > 64:
        return False
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    try:
        raw = base64.b64decode(value, validate=True)
        if len(raw) != 32:
            return False
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        return False
    return True


def decode_args(data: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or :class:`ProtocolError`."""
    if len(data) > MAX_REQUEST_BYTES:
        raise ProtocolError("request too large")
    try:
        value = json.loads(data.decode("utf-8")) if data else {}
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("request body is not UTF-8 JSON") from None
    except RecursionError:
        raise ProtocolError("request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ProtocolError("request body is not a JSON object")
    try:  # JSON escapes can smuggle in lone surrogates, which are not text
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("request body is not valid Unicode") from None
    return value


def encode(value: Any) -> bytes:
    # backslashreplace: a lone surrogate (echoed from a request) becomes its JSON escape, so
    # encoding a reply cannot fail.
    return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")


def ok_reply(data: Any) -> bytes:
    return encode({"ok": True, "data": data})


def error_reply(error_type: str, attrs: dict[str, Any], chain: list[str] | None = None) -> bytes:
    """An error reply: the class name, its ancestors' names (for the client's message lookup)
    and the error's public facts."""
    body = {"type": error_type, "chain": chain or [error_type], "attrs": attrs}
    return encode({"ok": False, "error": body})


def error_chain(error: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(error).__mro__ if issubclass(cls, CustodiaError)]


def error_attrs(error: BaseException) -> dict[str, Any]:
    """The facts of an error that may cross the wire: plain public attributes only."""
    attrs: dict[str, Any] = {}
    for key, value in vars(error).items():
        if key.startswith("_") or key in {"args", "log"}:
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            attrs[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
            attrs[key] = list(value)
        else:
            attrs[key] = str(value)
    return attrs


def decode_reply(data: bytes) -> Any:
    """The ``data`` of a reply, or the remote error raised as :class:`RemoteError`."""
    try:
        reply = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("reply is not JSON") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ProtocolError("reply has no ok field")
    if reply["ok"]:
        out = reply.get("data")
        if isinstance(out, dict) and any(
            not isinstance(out[k], dict) or set(out[k]) != {"sealed"}
            for k in SEALED_FIELDS & out.keys()
        ):
            raise ProtocolError("secret reply field not sealed")
        return out
    error = reply.get("error") or {}
    chain = [str(name) for name in error.get("chain") or []]
    raise RemoteError(
        str(error.get("type", "CustodiaError")), dict(error.get("attrs") or {}), chain
    )


# -- sealing sensitive reply fields --------------------------------------------------------


@dataclass
class ReplyKey:
    """The client's ephemeral key pair for one request."""

    private: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> ReplyKey:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return cls(X25519PrivateKey.generate())

    def public_b64(self) -> str:
        # public_bytes_raw, not public_bytes(Encoding.Raw, …): the serialization package costs
        # a command line more than the rest of its cryptography (issue 17, the thin client).
        raw = self.private.public_key().public_bytes_raw()
        return base64.b64encode(raw).decode()

    def open(self, sealed: dict[str, Any]) -> Any:
        """Decrypt a ``{"sealed": ...}`` value made by :func:`seal` for this key."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        try:
            blob = base64.b64decode(sealed["sealed"])
            peer = X25519PublicKey.from_public_bytes(blob[:32])
            nonce, ciphertext = blob[32:44], blob[44:]
            key = _derive(self.private.exchange(peer), blob[:32])
            plain = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _HKDF_INFO)
        except (KeyError, ValueError, TypeError, InvalidTag):
            raise ProtocolError("sealed reply field cannot be opened") from None
        return json.loads(plain)


def seal(value: Any, client_key_b64: str) -> dict[str, str]:
    """Encrypt ``value`` (JSON-able) so only the holder of the client's private key reads it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    try:
        peer = X25519PublicKey.from_public_bytes(base64.b64decode(client_key_b64, validate=True))
    except ValueError:
        raise ProtocolError("invalid reply key") from None
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = _derive(ephemeral.exchange(peer), eph_pub)
    nonce = os.urandom(12)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, json.dumps(value).encode(), _HKDF_INFO)
    return {"sealed": base64.b64encode(eph_pub + nonce + ciphertext).decode()}


def _derive(shared: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(shared)
