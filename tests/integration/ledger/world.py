"""A small but real ledger: an eventsourcing application on ``events.jetstream`` whose events
stream is ``<ns>-custodia-events``, followed by a :class:`LedgerFollower` signing with transit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from custody.ledger import audit
from custody.ledger.anchor import AnchoredRecords, VaultAnchor, read_anchored
from custody.ledger.audit import LedgerVerdict
from custody.ledger.follower import CheckpointSigner, FollowerSettings, LedgerFollower
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import checkpoints_stream_config, connect
from custody.vault.client import VaultClient
from events.checkpoint import PublicKeyring, SignedCheckpoint
from events.jetstream.connection import Connection
from tests.integration.ledger import insider


class Cuenta(Aggregate):
    """An account whose password gets rotated: enough to produce real records."""

    @event("Registrada")
    def __init__(self, nombre: str) -> None:
        self.nombre = nombre
        self.rotaciones = 0

    @event("Rotada")
    def rotar(self, motivo: str) -> None:
        self.rotaciones += 1


class CustodiaApp(Application[UUID]):
    name = "custodia"


def events_stream_config(names: LedgerNames) -> StreamConfig:
    """The events stream as the event store creates it, but deletes and purges allowed."""
    return insider.tamperable(
        StreamConfig(
            name=names.events_stream,
            subjects=[f"{names.events_prefix}.events.>", f"{names.events_prefix}.tracking.>"],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            storage=StorageType.FILE,
            allow_direct=True,
            allow_atomic=True,
        )
    )


@dataclass
class LedgerWorld:
    url: str
    namespace: str
    signer: CheckpointSigner
    keyring_source: Any  # () -> PublicKeyring: the auditor's own copy of the public key
    anchor_client: VaultClient | None = None  # the follower's token: head and witnesses in KV
    reader_client: VaultClient | None = None  # a reader of them (the Secretaría Ejecutiva's)
    names: LedgerNames = field(init=False)
    app: CustodiaApp = field(init=False)
    conn: Connection = field(init=False)
    accounts: list[UUID] = field(default_factory=list)
    saves: int = 0

    def __post_init__(self) -> None:
        self.names = LedgerNames.for_app("custodia", self.namespace)
        insider.create_stream(self.url, events_stream_config(self.names))
        insider.create_stream(self.url, insider.tamperable(checkpoints_stream_config(self.names)))
        env = {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": self.url,
            "NATS_NAMESPACE": self.namespace,
        }
        self.app = CustodiaApp(env=env)
        self.conn = connect(self.url)

    def close(self) -> None:
        self.app.close()
        self.conn.close()

    @property
    def keyring(self) -> PublicKeyring:
        keyring: PublicKeyring = self.keyring_source()
        return keyring

    def write(self, saves: int) -> None:
        """``saves`` saves, one entry each: new accounts and rotations, some of two events."""
        for _ in range(saves):
            i = self.saves
            self.saves += 1
            if i % 4 == 0 or not self.accounts:
                cuenta = Cuenta(f"DD{len(self.accounts) % 33 + 1:02d}-x")
                if i % 8 == 0:
                    cuenta.rotar("alta")  # two events in one record
                self.accounts.append(cuenta.id)
            else:
                cuenta = self.app.repository.get(self.accounts[i % len(self.accounts)])
                cuenta.rotar("vacaciones")
                if i % 3 == 0:
                    cuenta.rotar("regreso")
            self.app.save(cuenta)

    @property
    def anchor(self) -> VaultAnchor | None:
        return VaultAnchor(self.anchor_client, self.names) if self.anchor_client else None

    def follower(
        self, every: int = 10, *, anchored: bool = True, **settings: Any
    ) -> LedgerFollower:
        """A follower of this ledger; ``anchored=False``: without the anchor (the old code)."""
        return LedgerFollower(
            self.conn,
            self.signer,
            self.names,
            FollowerSettings(every_events=every, **settings),
            anchor=self.anchor if anchored else None,
        )

    def anchored(self) -> AnchoredRecords:
        """The head and witnesses OpenBao keeps, as the Secretaría Ejecutiva reads them."""
        assert self.reader_client is not None
        return read_anchored(self.reader_client, self.names)

    def build(self, entries: int = 50, every: int = 10) -> SignedCheckpoint:
        """Write ``entries`` entries and sign a checkpoint every ``every`` of them."""
        self.write(entries)
        checkpoint = self.follower(every).checkpoint_now()
        assert checkpoint is not None
        return checkpoint

    def verify(self, **kwargs: Any) -> LedgerVerdict:
        return audit.verify_online(self.conn, self.names, self.keyring, **kwargs)

    def export(self, path: Path) -> Path:
        audit.export_bundle(self.conn, self.names, path)
        return path

    def verify_offline(self, path: Path, **kwargs: Any) -> LedgerVerdict:
        return audit.verify_bundle_file(path, self.keyring, **kwargs)

    def entries(self) -> list[insider.Message]:
        return insider.dump(self.url, self.names.events_stream)

    def notes(self) -> list[insider.Message]:
        return [
            m
            for m in insider.dump(self.url, self.names.checkpoints_stream)
            if m.subject == self.names.notes_subject
        ]
