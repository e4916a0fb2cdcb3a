"""Personal data of staff, protected by crypto-shredding (8.D; 9.IV, 9.XX).

Names, e-mails and phones never enter the event stream in clear: an event carries
``seal(person_id, {...})``, a transit ciphertext under the person's own key ``pii-<person-id>``
(AES-256-GCM, not exportable, ``deletion_allowed``). Projections and exports open it while the
key exists. A data-protection erasure deletes the key: every ciphertext of that person, in the
stream, in projections, in exports already made, becomes unrecoverable at once, and the ledger
still verifies because not one event changes.

An erased person's key must not come back: :meth:`PersonalDataVault.erase` leaves a metadata-only
tombstone (``<kv>/metadata/pii-borrados/<person-id>``), and :meth:`PersonalDataVault.seal`
refuses to create a key for a person with a tombstone.

Caveat for operators: the key also lives in OpenBao's own storage snapshots (raft snapshots,
backups); those must expire within the retention the data-protection notice promises.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from custody.errors import (
    InvalidPersonIdError,
    PersonalDataErasedError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    VaultServerError,
)
from custody.vault.client import VaultClient
from custody.vault.layout import ERASED
from events.errors import VaultError

log = structlog.get_logger()

_PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def pii_key_name(person_id: str) -> str:
    """The transit key of one person's personal data: ``pii-<person-id>``."""
    if not isinstance(person_id, str) or not _PERSON_ID.match(person_id):
        raise InvalidPersonIdError(str(person_id))
    return f"pii-{person_id}"


class PersonalDataVault:
    """Seal, open and erase one person's personal data (service token)."""

    def __init__(self, client: VaultClient) -> None:
        self._client = client
        self._transit = client.mounts.transit
        self._tombstones = f"{client.mounts.kv}/metadata/{ERASED}"
        self._known: set[str] = set()

    def seal(self, person_id: str, data: Mapping[str, str]) -> str:
        """Encrypt ``data`` under the person's key (created on first use); the ciphertext."""
        key = pii_key_name(person_id)
        if key not in self._known:
            self._ensure_key(person_id, key)
        plaintext = json.dumps(dict(data), sort_keys=True, ensure_ascii=False).encode("utf-8")
        try:
            body = self._client.write(
                f"{self._transit}/encrypt/{key}",
                {"plaintext": base64.b64encode(plaintext).decode("ascii")},
                operation="seal-personal-data",
                secret_body=True,
            )
        except (VaultInvalidRequestError, VaultPermissionDeniedError):
            # A key deleted meanwhile: transit would need "create" to upsert it, which the
            # service policy does not grant on encrypt/, so it is refused either way.
            body = None
        ciphertext = ((body or {}).get("data") or {}).get("ciphertext")
        if not ciphertext:
            self._known.discard(key)
            if self._erased(person_id):
                raise PersonalDataErasedError(person_id)
            raise VaultServerError("seal-personal-data", f"{self._transit}/encrypt/{key}", None)
        return str(ciphertext)

    def open(self, person_id: str, ciphertext: str) -> dict[str, str]:
        """Decrypt what :meth:`seal` made; :class:`PersonalDataErasedError` once erased."""
        key = pii_key_name(person_id)
        error: VaultError | None = None
        body = None
        try:
            body = self._client.write(
                f"{self._transit}/decrypt/{key}",
                {"ciphertext": ciphertext},
                operation="open-personal-data",
            )
        except (VaultInvalidRequestError, VaultPermissionDeniedError) as exc:
            error = exc
        plaintext = ((body or {}).get("data") or {}).get("plaintext")
        if plaintext is None:
            if not self._key_exists(key):
                raise PersonalDataErasedError(person_id)
            raise error or VaultServerError("open-personal-data", f"{self._transit}/decrypt", None)
        value = json.loads(base64.b64decode(plaintext))
        return {str(k): str(v) for k, v in value.items()}

    def erase(self, person_id: str) -> bool:
        """Delete the person's key for good (a data-protection erasure); True if one existed.

        The tombstone is written first, so a crash cannot leave a deleted key that a later
        :meth:`seal` would silently recreate.
        """
        key = pii_key_name(person_id)
        self._client.write(
            f"{self._tombstones}/{person_id}",
            {"custom_metadata": {"erased_at": datetime.now(UTC).isoformat(timespec="seconds")}},
            operation="erase-personal-data",
        )
        self._known.discard(key)
        if not self._key_exists(key):
            return False
        self._client.write(
            f"{self._transit}/keys/{key}/config",
            {"deletion_allowed": True},
            operation="erase-personal-data",
        )
        self._client.delete(f"{self._transit}/keys/{key}", operation="erase-personal-data")
        log.info("custody.personal_data.erased", person_id=person_id)
        return True

    def _key_exists(self, key: str) -> bool:
        try:
            self._client.read(f"{self._transit}/keys/{key}", operation="personal-data-key")
        except VaultNotFoundError:
            return False
        return True

    def _erased(self, person_id: str) -> bool:
        try:
            self._client.read(f"{self._tombstones}/{person_id}", operation="personal-data-key")
        except VaultNotFoundError:
            return False
        return True

    def _ensure_key(self, person_id: str, key: str) -> None:
        if not self._key_exists(key):
            if self._erased(person_id):
                raise PersonalDataErasedError(person_id)
            self._client.write(
                f"{self._transit}/keys/{key}",
                {"type": "aes256-gcm96", "exportable": False, "allow_plaintext_backup": False},
                operation="create-personal-data-key",
            )
            # Set explicitly, so erasure never depends on a later config change being allowed.
            self._client.write(
                f"{self._transit}/keys/{key}/config",
                {"deletion_allowed": True},
                operation="create-personal-data-key",
            )
        self._known.add(key)
