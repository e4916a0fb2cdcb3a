"""The ledger's history anchored outside NATS, in OpenBao's KV v2 (issue 16, findings 3 and 8).

Two things live under ``<kv>/data/bitacora/`` (``bitacora/<namespace>/`` with a namespace):

``cabeza``
    The last signed tree head: the checkpoint (the exact signed note), its size, root and
    compact-range frontier. Written only with check-and-set (``cas`` = the version read), so two
    followers agree on one head; the follower signs nothing that is not a consistent extension
    of it (:mod:`custody.ledger.follower`). Deleting and re-creating the events stream, or
    dropping the checkpoints stream, does not touch it.
``testigos/<size, 20 digits>``
    Every checkpoint, once: written with ``cas=0`` by a token whose policy
    (``custodia-firmante``) grants ``create`` but not ``update`` nor ``delete`` on that folder,
    so the signer cannot rewrite or remove a witness, the server refuses it. The Secretaría
    Ejecutiva and the coadministrators read them (their policies: ``read``, ``list``), and
    ``custodia bitacora verificar`` checks the ledger against every one of them.
``alertas/<UTC time>``
    Each time the follower refuses to sign (``ledger.follower.diverged``), why: create-only as
    well, so the alarm outlives the service and whoever stopped it. ``verificar`` lists them.

Nothing here is secret: a checkpoint is public data (size, root, signature).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from custody.errors import VaultCasConflictError, VaultNotFoundError
from custody.ledger.errors import AnchorConflictError
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import decode_frontier, encode_frontier
from custody.vault import VaultClient
from events.checkpoint import CheckpointError, SignedCheckpoint

__all__ = ["AnchoredHead", "AnchoredRecords", "FollowerAlert", "VaultAnchor", "read_anchored"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class AnchoredHead:
    """The anchored head: its checkpoint, frontier (if stored) and KV version (for CAS)."""

    checkpoint: SignedCheckpoint
    frontier: tuple[bytes, ...] | None
    version: int


class VaultAnchor:
    """The head and the witnesses of one ledger in KV v2, through the signer's token."""

    def __init__(self, client: VaultClient, names: LedgerNames) -> None:
        self._client = client
        self.names = names

    def __repr__(self) -> str:
        return f"VaultAnchor({self.names.anchor_key!r})"

    def _data(self, key: str) -> str:
        return f"{self._client.mounts.kv}/data/{key}"

    def head(self) -> AnchoredHead | None:
        """The anchored head, or None if nothing was ever anchored.

        A head that cannot be parsed raises :class:`events.checkpoint.CheckpointError`.
        """
        try:
            body = self._client.read(self._data(self.names.anchor_key), operation="ledger-anchor")
        except VaultNotFoundError:
            return None
        outer = body.get("data") or {}
        data = outer.get("data") or {}
        version = int((outer.get("metadata") or {}).get("version") or 0)
        signed = SignedCheckpoint.from_bytes(str(data.get("punto_de_control", "")).encode())
        frontier = decode_frontier(data.get("frontera"))
        return AnchoredHead(signed, tuple(frontier) if frontier is not None else None, version)

    def advance(
        self, signed: SignedCheckpoint, frontier: Sequence[bytes], expected_version: int
    ) -> int:
        """Anchor ``signed`` if the head is still ``expected_version`` (0: none yet); the new
        version. :class:`AnchorConflictError` if another writer moved it first."""
        payload = {
            "options": {"cas": expected_version},
            "data": _record(signed) | {"frontera": encode_frontier(tuple(frontier))},
        }
        try:
            body = self._client.write(
                self._data(self.names.anchor_key), payload, operation="ledger-anchor"
            )
        except VaultCasConflictError:
            raise AnchorConflictError(expected_version) from None
        return int(((body or {}).get("data") or {}).get("version") or expected_version + 1)

    def witness(self, signed: SignedCheckpoint) -> bool:
        """Store ``signed`` as the witness of its size; False if that size already has one."""
        payload = {"options": {"cas": 0}, "data": _record(signed)}
        try:
            self._client.write(
                self._data(self.names.witness_key(signed.size)), payload, operation="ledger-witness"
            )
        except VaultCasConflictError:
            log.info("ledger.witness.exists", size=signed.size)
            return False
        return True

    def alert(self, reason: str, size: int) -> None:
        """Record that the follower refused to sign (``reason``; its tree had ``size`` entries)."""
        now = datetime.now(UTC)
        key = f"{self.names.alerts_folder}/{now.strftime('%Y%m%dT%H%M%S%fZ')}"
        payload = {
            "options": {"cas": 0},
            "data": {"fecha": now.isoformat(), "motivo": reason, "tamano": size},
        }
        self._client.write(self._data(key), payload, operation="ledger-alert")


def _record(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "tamano": signed.size,
        "raiz": base64.b64encode(signed.root).decode("ascii"),
        "punto_de_control": signed.to_bytes().decode(),
    }


@dataclass(frozen=True, slots=True)
class FollowerAlert:
    """The follower refused to sign at ``when`` (``reason``, its tree's ``size``)."""

    when: str
    reason: str
    size: int


@dataclass(frozen=True, slots=True)
class AnchoredRecords:
    """What OpenBao holds for one ledger: the head and the witnesses (raw signed notes, so a
    damaged one is reported by verification), witnesses in order of size."""

    head: bytes | None
    witnesses: tuple[bytes, ...]
    alerts: tuple[FollowerAlert, ...] = ()

    @property
    def checkpoints(self) -> tuple[bytes, ...]:
        return ((self.head,) if self.head is not None else ()) + self.witnesses

    @property
    def largest(self) -> int:
        """The largest size any of them claims (0 if none parses)."""
        sizes = [0]
        for raw in self.checkpoints:
            try:
                sizes.append(SignedCheckpoint.from_bytes(raw).size)
            except CheckpointError:
                continue
        return max(sizes)


def read_anchored(client: VaultClient, names: LedgerNames) -> AnchoredRecords:
    """The anchored head and every witness, read with ``client`` (a person's own session)."""
    kv = client.mounts.kv

    def fields(key: str) -> dict[str, Any] | None:
        try:
            body = client.read(f"{kv}/data/{key}", operation="ledger-witness-read")
        except VaultNotFoundError:
            return None
        data = (body.get("data") or {}).get("data")
        return data if isinstance(data, dict) else {}

    def note(key: str) -> bytes | None:
        data = fields(key)
        return None if data is None else str(data.get("punto_de_control", "")).encode()

    head = note(names.anchor_key)
    keys = client.list(f"{kv}/metadata/{names.witness_folder}", operation="ledger-witness-list")
    witnesses = []
    for key in sorted(k for k in keys if k.isdigit()):
        raw = note(f"{names.witness_folder}/{key}")
        if raw is not None:
            witnesses.append(raw)
    alerts = []
    folder = names.alerts_folder
    for key in sorted(client.list(f"{kv}/metadata/{folder}", operation="ledger-alert-list")):
        data = None if key.endswith("/") else fields(f"{folder}/{key}")
        if data is not None:
            size = data.get("tamano")
            alerts.append(
                FollowerAlert(
                    str(data.get("fecha", key)),
                    str(data.get("motivo", "")),
                    size if isinstance(size, int) else 0,
                )
            )
    return AnchoredRecords(head, tuple(witnesses), tuple(alerts))
