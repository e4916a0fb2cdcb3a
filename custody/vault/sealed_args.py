"""Password arguments travel sealed to the service (issue 16, finding 4).

A password argument of a request (today ``personas.alta --contrasena``) never crosses NATS in
the clear: the client encrypts it with OpenBao's transit key ``custodia-solicitudes`` using the
CALLER's own token (only coadministrators may: their policy grants ``encrypt`` on that key) and
sends ``{"sellado_openbao": "vault:v1:…"}`` in its place. The service decrypts it with its own
token (it may decrypt, never encrypt) before the handler sees the arguments, and refuses a
password argument sent in the clear.

The key is a derived key: each value is sealed under the context ``<command>\\0<request id>``,
so a sealed value lifted from one request does not open in another request (another request
id) nor another command. A retry of the same request (same id) carries the same value, as it
should. The key is not exportable, so no service instance holds it: any instance can open.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from custody.service.spec import (
    SEALED_ARGUMENTS as SEALED_ARGUMENTS,  # each command's spec: light, the client reads it
)
from custody.vault.layout import REQUEST_KEY
from events.domain import ValidationError

if TYPE_CHECKING:
    from custody.vault.client import VaultClient

MARK = "sellado_openbao"
MAX_SEALED = 2048  # characters of a transit ciphertext (a password is at most 256)


class SealedArgumentError(ValidationError):
    """A password argument came in the clear, or its sealed value does not open for this
    request (another request's, another command's, or not sealed by OpenBao); ``field`` names
    the argument (a malformed argument, as the protocol sees it)."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(argument, problem)


def context(command: str, request_id: str) -> str:
    """The transit context binding a sealed value to one request of one command."""
    return base64.b64encode(f"{command}\x00{request_id}".encode()).decode("ascii")


def seal_arguments(
    vault: VaultClient, command: str, request_id: str, args: Mapping[str, Any]
) -> dict[str, Any]:
    """``args`` with each password argument of ``command`` sealed with ``vault``'s token (the
    caller's own); arguments that are absent or not text are left for the service to refuse."""
    out = dict(args)
    for name in SEALED_ARGUMENTS.get(command, frozenset()):
        value = out.get(name)
        if not isinstance(value, str) or not value:
            continue
        body = vault.write(
            f"{vault.mounts.transit}/encrypt/{REQUEST_KEY}",
            {
                "plaintext": base64.b64encode(value.encode("utf-8")).decode("ascii"),
                "context": context(command, request_id),
            },
            operation="seal-argument",
            secret_body=True,
        )
        ciphertext = ((body or {}).get("data") or {}).get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext:
            raise SealedArgumentError(name, "OpenBao did not seal the argument")
        out[name] = {MARK: ciphertext}
    return out


def open_arguments(
    vault: VaultClient, command: str, request_id: str, args: Mapping[str, Any]
) -> Mapping[str, Any]:
    """``args`` with each sealed password argument opened with ``vault``'s token (the
    service's); :class:`SealedArgumentError` for one sent in the clear or that does not open."""
    from custody.errors import VaultInvalidRequestError

    names = SEALED_ARGUMENTS.get(command, frozenset()) & set(args)
    if not names:
        return args
    out = dict(args)
    for name in sorted(names):
        value = out[name]
        if value is None or value == "":
            continue  # absent: the handler decides whether it is required
        if not isinstance(value, dict) or set(value) != {MARK}:
            raise SealedArgumentError(name, "a password argument must travel sealed")
        ciphertext = value[MARK]
        if (
            not isinstance(ciphertext, str)
            or not ciphertext.startswith("vault:v")
            or len(ciphertext) > MAX_SEALED
        ):
            raise SealedArgumentError(name, "not a sealed value")
        try:
            body = vault.write(
                f"{vault.mounts.transit}/decrypt/{REQUEST_KEY}",
                {"ciphertext": ciphertext, "context": context(command, request_id)},
                operation="open-argument",
            )
        except VaultInvalidRequestError:
            # Transit's answer to a value sealed under another context (request, command).
            raise SealedArgumentError(name, "the sealed value is not this request's") from None
        plaintext = ((body or {}).get("data") or {}).get("plaintext")
        if not isinstance(plaintext, str):
            raise SealedArgumentError(name, "the sealed value did not open")
        try:
            out[name] = base64.b64decode(plaintext, validate=True).decode("utf-8")
        except ValueError:
            raise SealedArgumentError(name, "the sealed value did not open") from None
    return out
