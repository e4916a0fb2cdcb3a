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
``alertas/<anchored size, 20 digits>-<fingerprint>``
    Each time the follower refuses to sign (``ledger.follower.diverged``), why: the kind of
    divergence, the first wrong entry when known, the signed head it contradicts (size, root)
    and the tree the stream gave. Create-only as well, so the alarm outlives the service and
    whoever stopped it. The key derives from what was contradicted (kind, entry, head), not
    from the time: a follower restarted on the same forged history finds its alert there
    already and writes no second one. ``verificar`` lists them; the service reads them with
    its own token (read-only) and opens one incident per alert (:mod:`custody.ledger.alerts`).

Nothing here is secret: a checkpoint is public data (size, root, signature).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from custody.errors import VaultCasConflictError, VaultNotFoundError, VaultPermissionDeniedError
from custody.ledger.errors import AnchorConflictError
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import decode_frontier, encode_frontier
from custody.vault.client import VaultClient
from events.checkpoint import CheckpointError, SignedCheckpoint

__all__ = [
    "AnchoredHead",
    "AnchoredRecords",
    "Divergence",
    "DivergenceKind",
    "FollowerAlert",
    "VaultAnchor",
    "read_alerts",
    "read_anchored",
]

log = structlog.get_logger()


#: How the ledger departs from what was signed (the names of :data:`events.domain.incident.
#: LEDGER_DIVERGENCES`): entries rewritten, the stream shorter than what was signed, an entry
#: missing, another instance's checkpoint contradicted, the anchored head unusable.
DivergenceKind = Literal[
    "reescrita", "truncada", "entrada_faltante", "bifurcada", "cabeza_invalida", "otra"
]


def _b64(value: bytes | None) -> str | None:
    return base64.b64encode(value).decode("ascii") if value is not None else None


@dataclass(frozen=True, slots=True)
class Divergence:
    """What the follower found when it refused to sign: nothing secret (tree heads are public).

    ``anchored_*`` is the signed head the stream contradicts (the one anchored in OpenBao when
    known, else the stream's last checkpoint; 0/None if none); ``observed_*`` the tree the
    follower had computed from the stream; ``entry`` the first wrong entry when known."""

    kind: DivergenceKind
    reason: str
    entry: int | None
    anchored_size: int
    anchored_root: bytes | None
    observed_size: int
    observed_root: bytes | None

    @property
    def alert_id(self) -> str:
        """The alert's key: the same for the same contradiction, whenever it is found again."""
        basis = f"{self.kind}|{self.entry}|{self.anchored_size}|{_b64(self.anchored_root)}"
        digest = hashlib.sha256(basis.encode()).hexdigest()[:16]
        return f"{self.anchored_size:020d}-{digest}"

    def to_record(self, when: datetime) -> dict[str, Any]:
        return {
            "fecha": when.isoformat(),
            "motivo": self.reason,
            "tamano": self.observed_size,
            "tipo": self.kind,
            "entrada": self.entry,
            "cabeza_tamano": self.anchored_size,
            "cabeza_raiz": _b64(self.anchored_root),
            "observado_tamano": self.observed_size,
            "observado_raiz": _b64(self.observed_root),
        }


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

    def alert(self, divergence: Divergence) -> str | None:
        """Record that the follower refused to sign, once per contradiction: the alert's id, or
        None if that alert exists already (found again after a restart)."""
        alert_id = divergence.alert_id
        key = f"{self.names.alerts_folder}/{alert_id}"
        payload = {"options": {"cas": 0}, "data": divergence.to_record(datetime.now(UTC))}
        try:
            self._client.write(self._data(key), payload, operation="ledger-alert")
        except (VaultCasConflictError, VaultPermissionDeniedError):
            # It exists: create-only (cas=0), and this token has no update on it.
            log.info("ledger.alert.exists", alert=alert_id)
            return None
        return alert_id


def _record(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "tamano": signed.size,
        "raiz": base64.b64encode(signed.root).decode("ascii"),
        "punto_de_control": signed.to_bytes().decode(),
    }


@dataclass(frozen=True, slots=True)
class FollowerAlert:
    """The follower refused to sign at ``when`` (``reason``, its tree's ``size``); what it
    found (:class:`Divergence`, roots base64) and the alert's key ``id`` under ``alertas/``.
    Alerts written before the kind was recorded read as ``otra``."""

    when: str
    reason: str
    size: int
    id: str = ""
    kind: str = "otra"
    entry: int | None = None
    anchored_size: int = 0
    anchored_root: str | None = None
    observed_size: int = 0
    observed_root: str | None = None


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
    return AnchoredRecords(head, tuple(witnesses), read_alerts(client, names))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_alerts(
    client: VaultClient, names: LedgerNames, *, skip: frozenset[str] = frozenset()
) -> tuple[FollowerAlert, ...]:
    """The follower's alerts, in key order (the ones in ``skip`` are not read), with
    ``client``: a person's session, or the service's token (read-only there)."""
    kv = client.mounts.kv
    folder = names.alerts_folder
    alerts = []
    for key in sorted(client.list(f"{kv}/metadata/{folder}", operation="ledger-alert-list")):
        if key.endswith("/") or key in skip:
            continue
        try:
            body = client.read(f"{kv}/data/{folder}/{key}", operation="ledger-alert-read")
        except VaultNotFoundError:
            continue
        data = (body.get("data") or {}).get("data")
        if not isinstance(data, dict):
            continue
        alerts.append(
            FollowerAlert(
                str(data.get("fecha", key)),
                str(data.get("motivo", "")),
                _int(data.get("tamano")) or 0,
                id=key,
                kind=str(data.get("tipo") or "otra"),
                entry=_int(data.get("entrada")),
                anchored_size=_int(data.get("cabeza_tamano")) or 0,
                anchored_root=_opt_text(data.get("cabeza_raiz")),
                observed_size=_int(data.get("observado_tamano")) or _int(data.get("tamano")) or 0,
                observed_root=_opt_text(data.get("observado_raiz")),
            )
        )
    return tuple(alerts)
