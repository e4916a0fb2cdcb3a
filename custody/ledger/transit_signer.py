"""Checkpoint signatures by OpenBao/Vault transit: the ledger's private key never leaves it.

The key is ``<transit>/keys/custodia-ledger`` (ed25519, not exportable; created by
:func:`custody.vault.layout.ensure_layout`). Transit signs the checkpoint body as is and answers
``vault:v<N>:<base64>``; the version ``N`` goes into the signed note's key name, so after a
rotation (``<transit>/keys/custodia-ledger/rotate``) new checkpoints name the new version and
old ones keep verifying with the old public key: reading the key returns every version's public
part, and none is ever removed (Custodia never sets ``min_decryption_version``).

Needs a token allowed ``update`` on ``<transit>/sign/custodia-ledger`` and ``read`` on
``<transit>/keys/custodia-ledger``: the ledger follower's own token (policy
``custodia-firmante``, :mod:`custody.ledger.service`); the service's token cannot sign.
"""

from __future__ import annotations

import base64
import threading

from custody.errors import VaultServerError
from custody.vault.client import VaultClient
from custody.vault.layout import LEDGER_KEY
from events.checkpoint import (
    Checkpoint,
    MalformedCheckpointError,
    PublicKeyring,
    SignedCheckpoint,
    UnknownKeyError,
    parse_transit_signature,
    sign_checkpoint,
)

__all__ = ["TransitSigner", "fetch_public_keyring"]


def fetch_public_keyring(client: VaultClient, key_name: str = LEDGER_KEY) -> PublicKeyring:
    """Every version's public key of the transit key ``key_name``."""
    path = f"{client.mounts.transit}/keys/{key_name}"
    body = client.read(path, operation="ledger-public-key")
    data = body.get("data") or {}
    keys = data.get("keys")
    if data.get("type") != "ed25519" or not isinstance(keys, dict):
        raise VaultServerError("ledger-public-key", path, None)
    try:
        return PublicKeyring.from_transit(key_name, keys)
    except MalformedCheckpointError:
        raise VaultServerError("ledger-public-key", path, None) from None


class TransitSigner:
    """A :class:`events.checkpoint.Signer` backed by transit, with a cached public keyring."""

    def __init__(self, client: VaultClient, key_name: str = LEDGER_KEY) -> None:
        self._client = client
        self._key_name = key_name
        self._keyring: PublicKeyring | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransitSigner({self._client!r}, {self._key_name!r})"

    @property
    def key_name(self) -> str:
        return self._key_name

    def sign(self, message: bytes) -> tuple[int, bytes]:
        """Sign ``message`` with the key's latest version: ``(version, 64-byte signature)``."""
        path = f"{self._client.mounts.transit}/sign/{self._key_name}"
        body = self._client.write(
            path,
            {"input": base64.b64encode(message).decode("ascii")},
            operation="ledger-sign",
        )
        signature = ((body or {}).get("data") or {}).get("signature")
        if not isinstance(signature, str):
            raise VaultServerError("ledger-sign", path, None)
        try:
            return parse_transit_signature(signature)
        except MalformedCheckpointError:
            raise VaultServerError("ledger-sign", path, None) from None

    def public_keyring(self, *, refresh: bool = False) -> PublicKeyring:
        """The public keyring, read from transit once and again after a rotation."""
        with self._lock:
            if self._keyring is None or refresh:
                self._keyring = fetch_public_keyring(self._client, self._key_name)
            return self._keyring

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        """Sign and check the signature; a version unknown to the cache refreshes it once."""
        try:
            return sign_checkpoint(checkpoint, self, self.public_keyring())
        except UnknownKeyError:
            return sign_checkpoint(checkpoint, self, self.public_keyring(refresh=True))
