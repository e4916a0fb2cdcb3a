"""The tamper-evident ledger on JetStream: follower, signed checkpoints, verification, proofs.

The pure core lives in ``events`` (:mod:`events.merkle`, :mod:`events.checkpoint`,
:mod:`events.ledger_verify`, :mod:`events.leaves`); this package binds it to Custodia's
streams. Everything a reader needs to re-derive a root by hand is here.

Streams and subjects (``custodia`` is the application name; ``<ns>-`` / ``<ns>.`` prefix them
when ``NATS_NAMESPACE`` is set, as in :mod:`events.jetstream`)
    ``custodia-events``        subjects ``custodia.events.<aggregate>`` and
                               ``custodia.tracking.<app>``: the ledger itself, written only by
                               the event store.
    ``custodia-checkpoints``   subjects ``custodia.checkpoints.>``, written only by the follower:
        ``custodia.checkpoints.notes``    one signed checkpoint per message, the body being the
                                          exact C2SP signed note; header ``Custodia-Frontier``
                                          (outside the signature) holds the compact-range
                                          frontier, base64 of the concatenated hashes.
        ``custodia.checkpoints.keyring``  the public keyring (all versions of the transit key)
                                          as JSON, republished after each rotation.

Outside NATS (:mod:`custody.ledger.anchor`)
    OpenBao KV v2 keeps the last signed tree head (``bitacora/cabeza``, check-and-set) and every
    checkpoint once (``bitacora/testigos/<size>``, create-only for the follower's token
    ``custodia-firmante``). The follower signs only consistent extensions of the head;
    ``custodia bitacora verificar`` with a Secretaría Ejecutiva or coadministrator session
    checks the ledger against both, so deleting and re-creating the streams is detected.
    When the follower refuses to sign it leaves a create-only alert there
    (``bitacora/alertas/<id>``); the service reads the alerts with its own token and records
    each as the institution's incident (``bitacora_alterada``, :mod:`custody.ledger.alerts`).

Ledger entries ("eventos" on the command line)
    Entry ``n`` is the message with stream sequence ``n``; it is leaf ``n - 1`` of the Merkle
    tree (RFC 9162), and the ``notification_id`` of :mod:`events.ledger_verify`. Sequences run
    1, 2, 3... with no holes (the stream denies delete and purge). One entry is one *record* of
    :mod:`events.jetstream.records`: the events of one aggregate from one save (each event has
    its own eventsourcing notification id, ``first_id`` onwards) or a tracking record.
    ``custodia bitacora prueba --notificacion ID`` maps a notification id to its entry.

Leaf bytes (:func:`events.leaves.leaf_bytes`, the one function used by the follower,
the verifier, bundles and proofs)::

    leaf = 0x01 | u16 len(subject) | u32 len(data) | subject | data      (big-endian)

``subject`` is the message subject as stored, ``data`` its exact body. No header is included:
the only headers Custodia writes are write preconditions (``Nats-Expected-*``) and batch
markers, which say nothing about the event; a header that ever carries meaning starts leaf
format 2. The leaf hash is ``SHA-256(0x00 || leaf)`` (:func:`events.merkle.leaf_hash`).

Besides the Merkle checks, verification decodes every record
(:class:`events.leaves.RecordChecker`): notification ids must chain from one entry to
the next and each aggregate's versions must follow on, which names the exact entry where
events were reordered or inserted even between two checkpoints.
"""

from __future__ import annotations

from custody.ledger.names import DEFAULT_ORIGIN, LedgerNames
from events.leaves import (
    LEAF_FORMAT,
    RecordChecker,
    RecordProblem,
    RecordProblemKind,
    leaf_bytes,
    parse_leaf,
)

__all__ = [
    "DEFAULT_ORIGIN",
    "LEAF_FORMAT",
    "LedgerNames",
    "RecordChecker",
    "RecordProblem",
    "RecordProblemKind",
    "leaf_bytes",
    "parse_leaf",
]
