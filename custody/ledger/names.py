"""Names of the ledger's streams and subjects (see the package docstring for the layout)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_APP = "custodia"
DEFAULT_ORIGIN = "custodia.iecm.mx/bitacora"
"""The checkpoint origin line: names the log (C2SP tlog-checkpoint)."""

FRONTIER_HEADER = "Custodia-Frontier"

_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True)
class LedgerNames:
    """Where the ledger of one application lives; :meth:`for_app` derives them all."""

    events_stream: str
    events_prefix: str
    checkpoints_stream: str
    checkpoints_prefix: str
    origin: str
    anchor_prefix: str = "bitacora"
    """Where the anchored head and the witnesses live in OpenBao's KV (custody.ledger.anchor)."""

    @classmethod
    def for_app(cls, app: str = DEFAULT_APP, namespace: str = "") -> LedgerNames:
        """The names ``events.jetstream`` uses for ``app`` (behind ``namespace``, if any)."""
        for value in (app, namespace) if namespace else (app,):
            if not _TOKEN.fullmatch(value):
                raise ValueError(f"{value!r}: letters, digits, '_' and '-' only")
        stream = f"{namespace}-{app}" if namespace else app
        prefix = f"{namespace}.{app}" if namespace else app
        origin = f"{DEFAULT_ORIGIN}/{namespace}" if namespace else DEFAULT_ORIGIN
        return cls(
            events_stream=f"{stream}-events",
            events_prefix=prefix,
            checkpoints_stream=f"{stream}-checkpoints",
            checkpoints_prefix=f"{prefix}.checkpoints",
            origin=origin,
            anchor_prefix=f"bitacora/{namespace}" if namespace else "bitacora",
        )

    @property
    def notes_subject(self) -> str:
        """Signed checkpoints, one per message."""
        return f"{self.checkpoints_prefix}.notes"

    @property
    def keyring_subject(self) -> str:
        """The public keyring (JSON), latest last."""
        return f"{self.checkpoints_prefix}.keyring"

    @property
    def checkpoints_subjects(self) -> list[str]:
        return [f"{self.checkpoints_prefix}.>"]

    @property
    def anchor_key(self) -> str:
        """The KV key of the anchored tree head (updated with check-and-set)."""
        return f"{self.anchor_prefix}/cabeza"

    @property
    def witness_folder(self) -> str:
        """The KV folder of the witnesses: one key per checkpoint, created once, never updated."""
        return f"{self.anchor_prefix}/testigos"

    def witness_key(self, size: int) -> str:
        return f"{self.witness_folder}/{size:020d}"

    @property
    def alerts_folder(self) -> str:
        """The KV folder of the follower's alerts (a divergence), one create-only key each."""
        return f"{self.anchor_prefix}/alertas"
