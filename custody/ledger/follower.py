"""The ledger follower: Merkle tree of the events stream, signed checkpoints on their own stream.

Runs inside ``custodia servicio`` (:meth:`LedgerFollower.start` / :meth:`~LedgerFollower.stop`,
a daemon thread), or step by step with :meth:`LedgerFollower.checkpoint_now`.

How it works
    It reads every entry of the events stream in sequence order (batched direct gets), appends
    its leaf hash to a :class:`~events.merkle.CompactRange`, and publishes a signed checkpoint
    every ``every_events`` entries, once no entry arrived for ``quiet_seconds`` (about a second
    after the last write), or after ``every_seconds`` of steady writes; and the tail when it
    stops (service stop, SIGTERM). Checkpoint sizes fall exactly on multiples of
    ``every_events`` past the previous checkpoint when catching up.

Anchored outside NATS (issue 16)
    With an anchor (:class:`custody.ledger.anchor.VaultAnchor`), every checkpoint first moves
    the head anchored in OpenBao KV with check-and-set, then is stored as a witness there (a
    key the signer may create but never update), then published on the checkpoints stream.
    The follower never signs a tree that is not a consistent extension of the anchored head:
    on start and whenever another instance moved it, the anchored root must be reproduced by
    the stream at the anchored size (from the stored frontier plus the entries after it, or
    recomputed when the tree reaches that size). Deleting and re-creating the events stream
    with a rewritten entry, dropping the checkpoints stream and restarting therefore ends in
    ``ledger.follower.diverged``, not in a re-signed forgery; a stream shorter than the
    anchored head likewise.

No forks, even with several service instances
    Each checkpoint is published with ``Nats-Expected-Last-Subject-Sequence`` set to the stream
    sequence of the latest checkpoint the follower knows, and only if its tree is larger. A
    follower that loses the race (API error 10071) reads the winner's checkpoint and checks it
    against its own tree: equal size, equal root; a smaller one, by extending the winner's
    frontier with the entries in between; a larger one, when its own tree reaches that size.
    Stored checkpoints are therefore strictly increasing in size, one history.

Restart
    The compact-range frontier travels with each checkpoint (header ``Custodia-Frontier``,
    outside the signed note). On start the follower resumes from the latest checkpoint whose
    signature holds and whose frontier reproduces its signed root, after re-reading the entries
    under the frontier's last perfect subtree (a cheap check that the tail was not rewritten);
    without a usable frontier it recomputes the tree from entry 1 and compares.

Refusal to sign a tampered history
    A hole in the sequences, an entry missing under a checkpoint, or a checkpoint on the stream
    that its tree contradicts makes the follower *diverged*: it logs
    ``ledger.follower.diverged`` and signs nothing more until restarted (verification tells
    what happened). With an anchor it also leaves an alert in OpenBao saying what it found
    (:class:`custody.ledger.anchor.Divergence`), once per contradiction, retried until OpenBao
    takes it; the service makes each alert an incident (:mod:`custody.ledger.alerts`).
    A checkpoint on the stream whose signature does not verify is logged and skipped: the
    follower keeps signing its own, correct tree (on restart, from the last checkpoint that
    does verify, after recomputing the tree up to it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from custody.ledger.anchor import AnchoredHead, Divergence, DivergenceKind
from custody.ledger.errors import AnchorConflictError, LedgerDivergedError
from custody.ledger.names import FRONTIER_HEADER, LedgerNames
from custody.ledger.nats_io import (
    EXPECTED_SUBJECT_SEQ,
    WRONG_LAST_SEQUENCE,
    StoredNote,
    decode_frontier,
    encode_frontier,
    ensure_checkpoints_stream,
    last_note,
    read_entries,
    read_subject,
    stream_exists,
    stream_holds_every_entry,
    stream_last_sequence,
)
from events.checkpoint import (
    Checkpoint,
    CheckpointError,
    Ed25519Signer,
    MalformedCheckpointError,
    PublicKeyring,
    SignedCheckpoint,
    UnknownKeyError,
)
from events.errors import CustodiaError, EventStoreError
from events.jetstream.connection import (
    Connection,
    NoAnswerError,
    NoRespondersError,
    NotSentError,
    RawMessage,
)
from events.jetstream.errors import (
    ConnectionClosedError,
    EventStoreUnavailableError,
    JetStreamAPIError,
)
from events.leaves import leaf_bytes
from events.merkle import CompactRange

__all__ = [
    "CheckpointSigner",
    "FollowerSettings",
    "FollowerStatus",
    "HeadAnchor",
    "LedgerFollower",
    "LocalCheckpointSigner",
    "keyring_json",
]

log = structlog.get_logger()

_sha256 = hashlib.sha256
_TAIL_CHECK_MAX = 4096  # entries re-read on resume to check the frontier's last subtree


class CheckpointSigner(Protocol):
    """Signs checkpoints, knows the public keys
    (:class:`custody.ledger.transit_signer.TransitSigner`)."""

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint: ...

    def public_keyring(self, *, refresh: bool = False) -> PublicKeyring: ...


class HeadAnchor(Protocol):
    """Where the signed tree head is anchored outside NATS (:mod:`custody.ledger.anchor`)."""

    def head(self) -> AnchoredHead | None: ...

    def advance(
        self, signed: SignedCheckpoint, frontier: Sequence[bytes], expected_version: int
    ) -> int: ...

    def witness(self, signed: SignedCheckpoint) -> bool: ...

    def alert(self, divergence: Divergence) -> str | None: ...


class LocalCheckpointSigner:
    """An in-memory :class:`events.checkpoint.Ed25519Signer` as a signer (tests, benchmarks)."""

    def __init__(self, signer: Ed25519Signer | None = None, key_name: str = "bitacora") -> None:
        self.signer = signer or Ed25519Signer(key_name)

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        return self.signer.sign_checkpoint(checkpoint)

    def public_keyring(self, *, refresh: bool = False) -> PublicKeyring:
        return self.signer.public_keyring()


def keyring_json(keyring: PublicKeyring) -> bytes:
    """The canonical JSON of a keyring, as published on the keyring subject."""
    return json.dumps(keyring.to_json(), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class FollowerSettings:
    """When to checkpoint, how often to poll, how the checkpoint stream is created."""

    every_events: int = 1000
    every_seconds: float = 10.0
    quiet_seconds: float = 1.0
    poll_seconds: float = 0.25
    read_batch: int = 1000
    replicas: int = 1
    create_stream: bool = True
    request_timeout: float = 5.0
    # How often a running follower checks that the stream still holds every entry (one
    # stream-info request): an entry deleted from the signed range is otherwise not read again
    # until a restart.
    integrity_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.every_events < 1 or min(self.every_seconds, self.quiet_seconds) <= 0:
            raise ValueError("every_events >= 1; every_seconds and quiet_seconds > 0")
        if self.poll_seconds <= 0:
            raise ValueError("poll_seconds > 0")


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    """What the follower knows: its tree size, the latest checkpoint, whether it diverged, the
    size of the head anchored in OpenBao, and how many steps (polls) it has completed."""

    size: int
    checkpoint: SignedCheckpoint | None
    diverged: str | None
    published: int
    running: bool
    anchored: int = 0
    steps: int = 0


class LedgerFollower:
    """Follows the events stream and publishes signed checkpoints (module docstring)."""

    def __init__(
        self,
        conn: Connection,
        signer: CheckpointSigner,
        names: LedgerNames | None = None,
        settings: FollowerSettings | None = None,
        anchor: HeadAnchor | None = None,
    ) -> None:
        self._conn = conn
        self._signer = signer
        self._anchor = anchor
        self._anchored: SignedCheckpoint | None = None  # the head anchored outside NATS
        self._anchor_version = 0
        self._anchor_pending: SignedCheckpoint | None = None  # checked when the tree reaches it
        self._last_growth = time.monotonic()
        self._steps = 0
        self.names = names or LedgerNames.for_app()
        self.settings = settings or FollowerSettings()
        self._compact: CompactRange | None = None
        self._checkpoint: SignedCheckpoint | None = None
        self._checkpoint_seq = 0
        self._expect: SignedCheckpoint | None = None
        self._keyring_seq: int | None = None
        self._published_keyring: PublicKeyring | None = None
        self._last_publish = time.monotonic()
        self._last_integrity = time.monotonic()
        self._diverged: str | None = None
        self._unsent_alert: Divergence | None = None  # retried until OpenBao has it
        self._published = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Follow in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="custodia-ledger", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following (a checkpoint being published completes first), then sign the tail:
        entries written since the last checkpoint do not stay unsigned while the service is
        down (finding 8)."""
        self._stopping.set()
        if self._thread is None:
            return
        self._thread.join(timeout)
        self._thread = None
        if self._diverged is not None:
            return
        try:
            with self._lock:
                self._stopping.clear()  # the catch-up reads to the end of the stream
                try:
                    self._step(force=True)
                finally:
                    self._stopping.set()
            log.info("ledger.follower.stopped", size=self._covered())
        except LedgerDivergedError:
            pass  # logged
        except Exception as exc:  # the service is stopping: say so, do not fail the stop
            log.warning("ledger.follower.tail_unsigned", error=type(exc).__name__)

    def __enter__(self) -> LedgerFollower:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def checkpoint_now(self) -> SignedCheckpoint | None:
        """Catch up with the stream and sign its current tree if it grew; the latest checkpoint.

        Raises :class:`LedgerDivergedError` if the stream contradicts what was signed.
        """
        with self._lock:
            self._step(force=True)
            return self._checkpoint

    def status(self) -> FollowerStatus:
        return FollowerStatus(
            size=self._compact.size if self._compact else 0,
            checkpoint=self._checkpoint,
            diverged=self._diverged,
            published=self._published,
            running=self._thread is not None and self._thread.is_alive(),
            anchored=self._anchored.size if self._anchored else 0,
            steps=self._steps,
        )

    def _run(self) -> None:
        backoff = self.settings.poll_seconds
        while not self._stopping.is_set():
            try:
                with self._lock:
                    self._step(force=False)
                    self._steps += 1
                backoff = self.settings.poll_seconds
            except LedgerDivergedError:
                backoff = max(backoff, 5.0)  # already logged; nothing more is signed
            except ConnectionClosedError:
                return
            except CustodiaError as exc:
                log.warning("ledger.follower.retry", error=type(exc).__name__, detail=str(exc))
                backoff = min(max(backoff * 2, 0.5), 30.0)
            except Exception:
                log.exception("ledger.follower.failed")
                backoff = min(max(backoff * 2, 0.5), 30.0)
            self._stopping.wait(backoff)

    # -- one step --------------------------------------------------------------------------

    def _step(self, force: bool) -> None:
        if self._diverged is not None:
            if self._unsent_alert is not None:
                self._send_alert(self._unsent_alert)
            raise LedgerDivergedError(self._diverged)
        if self._compact is None:
            self._resume()
        elif time.monotonic() - self._last_integrity >= self.settings.integrity_seconds:
            self._last_integrity = time.monotonic()
            if not stream_holds_every_entry(self._conn, self.names.events_stream):
                # An entry vanished while running: resume as after a restart, which reads the
                # tree again from entry 1 and names the missing entry (or signs nothing more).
                log.warning("ledger.follower.entry_missing_while_running")
                self._compact = None
                self._resume()
        before = self._tree().size
        self._catch_up()
        compact = self._tree()
        now = time.monotonic()
        if compact.size > before:
            self._last_growth = now
        pending = self._anchor_pending
        if pending is not None and not self._stopping.is_set():
            raise self._diverge(
                f"the stream ends at entry {compact.size}, the head anchored in OpenBao "
                f"covers {pending.size}",
                compact.size + 1,
                kind="truncada",
                against=pending,
            )
        covered = self._covered()
        settings = self.settings
        if compact.size > covered and (
            force
            or compact.size - covered >= settings.every_events
            or now - self._last_growth >= settings.quiet_seconds
            or now - self._last_publish >= settings.every_seconds
        ):
            self._publish()

    def _covered(self) -> int:
        """The largest size already signed: the stream's checkpoint or the anchored head."""
        sizes = [0]
        if self._checkpoint is not None:
            sizes.append(self._checkpoint.size)
        if self._anchored is not None:
            sizes.append(self._anchored.size)
        return max(sizes)

    def _tree(self) -> CompactRange:
        assert self._compact is not None
        return self._compact

    def _diverge(
        self,
        reason: str,
        sequence: int | None = None,
        *,
        kind: DivergenceKind = "otra",
        against: SignedCheckpoint | None = None,
        observed: CompactRange | None = None,
    ) -> LedgerDivergedError:
        """Stop signing; log it and leave an alert in OpenBao: ``kind`` of divergence, the first
        wrong ``sequence`` when known, the signed head it contradicts (``against``: by default
        the anchored head, else the last checkpoint) and the tree the stream gave."""
        self._diverged = reason
        head = against or self._anchor_pending or self._anchored or self._checkpoint
        tree = observed if observed is not None else self._compact
        divergence = Divergence(
            kind=kind,
            reason=reason,
            entry=sequence,
            anchored_size=head.size if head is not None else 0,
            anchored_root=head.root if head is not None else None,
            observed_size=tree.size if tree is not None else 0,
            observed_root=tree.root() if tree is not None and tree.size else None,
        )
        log.error(
            "ledger.follower.diverged",
            reason=reason,
            kind=kind,
            entry=sequence,
            anchored_size=divergence.anchored_size,
            observed_size=divergence.observed_size,
            stream=self.names.events_stream,
        )
        self._send_alert(divergence)
        return LedgerDivergedError(reason, sequence)

    def _send_alert(self, divergence: Divergence) -> None:
        """The alert in OpenBao, visible to the Secretaría Ejecutiva and made an incident by the
        service; if OpenBao cannot take it now, the next step tries again."""
        self._unsent_alert = None
        if self._anchor is None:
            return
        try:
            alert_id = self._anchor.alert(divergence)
        except Exception as exc:
            self._unsent_alert = divergence
            log.warning("ledger.follower.alert_failed", error=type(exc).__name__)
            return
        log.warning("ledger.follower.alerted", alert=alert_id)

    # -- resuming --------------------------------------------------------------------------

    def _resume(self) -> None:
        self._resume_from_stream()
        if self._anchor is not None:
            self._check_anchor(self._read_head())

    def _read_head(self) -> AnchoredHead | None:
        assert self._anchor is not None
        try:
            return self._anchor.head()
        except CheckpointError as exc:
            raise self._diverge(
                f"the head anchored in OpenBao is unreadable: {exc}", kind="cabeza_invalida"
            ) from None

    def _check_anchor(self, head: AnchoredHead | None) -> None:
        """The tree must be a consistent extension of the anchored head (or reach it later)."""
        if head is None:
            return
        signed = head.checkpoint
        try:
            signed.verify(self._signer.public_keyring(refresh=True), origin=self.names.origin)
        except CheckpointError as exc:
            raise self._diverge(
                f"the head anchored in OpenBao does not verify: {type(exc).__name__}",
                kind="cabeza_invalida",
                against=signed,
            ) from None
        self._anchor_version = max(self._anchor_version, head.version)
        compact = self._tree()
        if signed.size > compact.size:
            self._anchor_pending = signed  # checked when the tree reaches its size
            return
        if signed.size == compact.size:
            consistent = compact.root() == signed.root
        else:  # a consistency check: the anchored tree, extended by the entries after it
            theirs = self._compact_from(signed, head.frontier)
            if theirs is not None:
                self._read_tree(theirs, compact.size, start=signed.size + 1)
                consistent = theirs.root() == compact.root()
            else:
                consistent = self._read_tree(CompactRange(), signed.size).root() == signed.root
        if not consistent:
            raise self._diverge(
                f"the stream does not extend the head anchored in OpenBao (size {signed.size}): "
                "the history it signed was rewritten",
                kind="reescrita",
                against=signed,
            )
        self._anchor_reached(signed)

    def _anchor_reached(self, signed: SignedCheckpoint) -> None:
        self._anchor_pending = None
        if self._anchored is None or signed.size >= self._anchored.size:
            self._anchored = signed

    def _check_anchor_pending(self) -> None:
        pending = self._anchor_pending
        compact = self._tree()
        if pending is None or compact.size != pending.size:
            return
        if compact.root() != pending.root:
            raise self._diverge(
                f"entries 1..{pending.size} do not give the root anchored in OpenBao: "
                "the history it signed was rewritten",
                kind="reescrita",
                against=pending,
            )
        self._anchor_reached(pending)

    def _resume_from_stream(self) -> None:
        names = self.names
        if self.settings.create_stream and not stream_exists(self._conn, names.checkpoints_stream):
            self._checkpoints_stream_missing()
        stored = last_note(self._conn, names.checkpoints_stream, names.notes_subject)
        if stored is None:
            self._compact = CompactRange()
            return
        self._checkpoint_seq = stored.sequence  # the next checkpoint follows it, whatever it is
        frontier = stored.frontier
        signed = self._verified(stored)
        if signed is None:  # not ours: resume from the last one that is, recomputing the tree
            signed, frontier = self._last_valid(), None
        if signed is None:
            self._compact = CompactRange()
            return
        last_seq = stream_last_sequence(self._conn, names.events_stream)
        if last_seq < signed.size:
            raise self._diverge(
                f"the stream ends at entry {last_seq}, the last checkpoint covers {signed.size}",
                last_seq + 1,
                kind="truncada",
                against=signed,
            )
        # An entry gone from the signed range (deleted, or dropped by the server after its file
        # was edited while stopped) is not on the path from the frontier: then the tree is read
        # again from entry 1, which names the missing entry.
        whole = stream_holds_every_entry(self._conn, names.events_stream)
        compact = self._from_frontier(signed, frontier) if whole else None
        if compact is None:
            compact = self._read_tree(CompactRange(), signed.size)
            if compact.root() != signed.root:
                raise self._diverge(
                    f"entries 1..{signed.size} do not give the signed root",
                    kind="reescrita",
                    against=signed,
                    observed=compact,
                )
        else:
            self._check_tail(compact, signed.size)
        self._compact = compact
        self._checkpoint = signed
        log.info("ledger.follower.resumed", size=signed.size, checkpoint_seq=stored.sequence)

    def _checkpoints_stream_missing(self) -> None:
        """No checkpoints stream. On a new ledger ``init`` makes it (the service's NATS identity
        may not create streams; this is tried for setups where it may). Once OpenBao anchors a
        signed head, a missing stream is tampering: the entries are checked against the anchor at
        once (a rewritten or cut history is named as such); an intact history resumes on a
        re-created stream where this identity may create one, and diverges where it may not."""
        head = self._read_head() if self._anchor is not None else None
        if head is None:
            ensure_checkpoints_stream(self._conn, self.names, replicas=self.settings.replicas)
            return
        try:  # where this identity may create it, an empty stream: nothing is signed below
            ensure_checkpoints_stream(self._conn, self.names, replicas=self.settings.replicas)
            created = True
        except Exception as exc:
            log.warning("ledger.follower.checkpoints_stream_missing", error=type(exc).__name__)
            created = False
        signed = head.checkpoint
        last_seq = stream_last_sequence(self._conn, self.names.events_stream)
        if last_seq < signed.size:
            raise self._diverge(
                f"the stream ends at entry {last_seq}, the head anchored in OpenBao covers "
                f"{signed.size}",
                last_seq + 1,
                kind="truncada",
                against=signed,
            )
        compact = self._read_tree(CompactRange(), signed.size)
        if compact.root() != signed.root:
            raise self._diverge(
                f"entries 1..{signed.size} do not give the root anchored in OpenBao: "
                "the history it signed was rewritten",
                kind="reescrita",
                against=signed,
                observed=compact,
            )
        if not created:
            raise self._diverge(
                f"the checkpoints stream is gone, though the head anchored in OpenBao covers "
                f"{signed.size} entries",
                kind="otra",
                against=signed,
            )

    def _verified(self, stored: StoredNote) -> SignedCheckpoint | None:
        """The stored note if it parses, is for this log and its signature holds; else None."""
        try:
            signed = SignedCheckpoint.from_bytes(stored.data)
            try:
                signed.verify(self._signer.public_keyring(), origin=self.names.origin)
            except UnknownKeyError:
                signed.verify(self._signer.public_keyring(refresh=True), origin=self.names.origin)
        except CheckpointError as exc:
            log.error(
                "ledger.follower.bad_checkpoint",
                checkpoint_seq=stored.sequence,
                error=type(exc).__name__,
            )
            return None
        return signed

    def _last_valid(self) -> SignedCheckpoint | None:
        """The last stored checkpoint whose signature holds (scanning back from the end)."""
        names = self.names
        notes = read_subject(self._conn, names.checkpoints_stream, names.notes_subject)
        for seq, data in reversed(notes):
            signed = self._verified(StoredNote(seq, data, None))
            if signed is not None:
                return signed
        return None

    @staticmethod
    def _from_frontier(signed: SignedCheckpoint, text: str | None) -> CompactRange | None:
        return LedgerFollower._compact_from(signed, decode_frontier(text))

    @staticmethod
    def _compact_from(
        signed: SignedCheckpoint, frontier: Sequence[bytes] | None
    ) -> CompactRange | None:
        """The compact range of ``signed`` from a frontier, if it reproduces the signed root."""
        if frontier is None:
            return None
        try:
            compact = CompactRange.from_frontier(signed.size, list(frontier))
        except ValueError:
            return None
        return compact if compact.root() == signed.root else None

    def _check_tail(self, compact: CompactRange, size: int) -> None:
        """Recompute the frontier's last perfect subtree from the stream (if small enough)."""
        width = size & -size
        if width == 0 or width > _TAIL_CHECK_MAX:
            return
        tail = self._read_tree(CompactRange(), size, start=size - width + 1)
        if tail.frontier != compact.frontier[-1:]:
            raise self._diverge(
                f"entries {size - width + 1}..{size} differ from what the last checkpoint signed",
                size - width + 1,
                kind="reescrita",
                against=self._checkpoint,
            )

    def _read_tree(self, compact: CompactRange, stop: int, start: int = 1) -> CompactRange:
        """``compact`` (covering ``start - 1`` leaves of some range) extended up to ``stop``."""
        expected = start
        for batch in read_entries(
            self._conn, self.names.events_stream, start=start, stop=stop, batch=self._batch()
        ):
            expected = self._hash_into(compact, batch, expected)
        if expected != stop + 1:
            raise self._diverge(
                f"entry {expected} is missing from the stream", expected, kind="entrada_faltante"
            )
        return compact

    def _hash_into(self, compact: CompactRange, batch: list[RawMessage], expected: int) -> int:
        hashes = []
        for seq, subject, data in batch:
            if seq != expected:
                raise self._diverge(
                    f"entry {expected} is missing from the stream",
                    expected,
                    kind="entrada_faltante",
                )
            hashes.append(_sha256(b"\x00" + leaf_bytes(subject, data)).digest())
            expected += 1
        compact.extend(hashes)
        return expected

    def _batch(self) -> int:
        return self.settings.read_batch

    # -- following -------------------------------------------------------------------------

    def _catch_up(self) -> None:
        compact = self._tree()
        for batch in read_entries(
            self._conn, self.names.events_stream, start=compact.size + 1, batch=self._batch()
        ):
            self._append(batch)
            if self._stopping.is_set():
                return

    def _append(self, batch: Sequence[RawMessage]) -> None:
        compact = self._tree()
        expected = compact.size + 1
        hashes: list[bytes] = []
        for seq, subject, data in batch:
            if seq != expected:
                break
            hashes.append(_sha256(b"\x00" + leaf_bytes(subject, data)).digest())
            expected += 1
        every = self.settings.every_events
        pos = 0
        while pos < len(hashes):
            take = len(hashes) - pos
            covered = self._covered()
            take = min(take, max(1, covered + every - compact.size))
            for due in (self._expect, self._anchor_pending):
                if due is not None and due.size > compact.size:
                    take = min(take, due.size - compact.size)
            compact.extend(hashes[pos : pos + take])
            pos += take
            self._check_expected()
            self._check_anchor_pending()
            if compact.size - self._covered() >= every:
                self._publish()
        if len(hashes) < len(batch):
            raise self._diverge(
                f"entry {expected} is missing from the stream", expected, kind="entrada_faltante"
            )

    def _check_expected(self) -> None:
        expect = self._expect
        compact = self._tree()
        if expect is None or compact.size != expect.size:
            return
        self._expect = None
        if compact.root() != expect.root:
            raise self._diverge(
                f"entries 1..{expect.size} do not give the root another instance signed",
                kind="bifurcada",
                against=expect,
            )

    # -- publishing ------------------------------------------------------------------------

    def _publish(self) -> None:
        compact = self._tree()
        if self._anchor_pending is not None or compact.size <= self._covered():
            return  # never sign below (or beside) what is anchored: it is checked, not re-signed
        checkpoint = Checkpoint(self.names.origin, compact.size, compact.root(), datetime.now(UTC))
        signed = self._signer.sign_checkpoint(checkpoint)
        if self._anchor is not None and not self._anchor_checkpoint(signed):
            return
        self._publish_keyring()
        frontier = encode_frontier(compact.frontier)
        for _ in range(3):
            headers = {EXPECTED_SUBJECT_SEQ: str(self._checkpoint_seq), FRONTIER_HEADER: frontier}
            reply = self._request(self.names.notes_subject, signed.to_bytes(), headers)
            if reply is None:  # no answer: it may have landed; look
                self._adopt_latest(mine=signed)
                return
            error = reply.get("error")
            if not isinstance(error, dict):
                self._published_ok(signed, int(reply.get("seq") or 0))
                return
            code = int(error.get("err_code", 0))
            if code not in WRONG_LAST_SEQUENCE:
                raise JetStreamAPIError(code, str(error.get("description", "")))
            log.info("ledger.checkpoint.lost_race", size=compact.size)
            self._adopt_latest()
            if self._anchor is None or (self._checkpoint and self._checkpoint.size >= signed.size):
                return
            # Anchored by this instance, so the stream must carry it too: after the other's.

    def _anchor_checkpoint(self, signed: SignedCheckpoint) -> bool:
        """Move the anchored head to ``signed`` (check-and-set), then store its witness. False if
        another instance moved the head first: its head is checked against this tree instead."""
        anchor = self._anchor
        assert anchor is not None
        compact = self._tree()
        try:
            self._anchor_version = anchor.advance(signed, compact.frontier, self._anchor_version)
        except AnchorConflictError:
            log.info("ledger.anchor.lost_race", size=signed.size)
            self._check_anchor(self._read_head())
            self._last_publish = time.monotonic()
            return False
        self._anchored = signed
        try:
            anchor.witness(signed)
        except CustodiaError as exc:  # the head moved: publish anyway, the next one is witnessed
            log.warning("ledger.witness.failed", size=signed.size, error=type(exc).__name__)
        log.info("ledger.anchor.advanced", size=signed.size, version=self._anchor_version)
        return True

    def _published_ok(self, signed: SignedCheckpoint, seq: int) -> None:
        self._checkpoint = signed
        self._checkpoint_seq = seq
        self._last_publish = time.monotonic()
        self._published += 1
        log.info(
            "ledger.checkpoint.published",
            size=signed.size,
            checkpoint_seq=seq,
            key_version=signed.key_version,
        )

    def _request(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """The JetStream acknowledgement (or error); None if the outcome is unknown."""
        conn = self._conn
        try:
            return conn.run(conn.request(subject, payload, headers, self.settings.request_timeout))
        except NoAnswerError:
            return None
        except (NotSentError, NoRespondersError):
            raise EventStoreUnavailableError(f"could not publish on {subject}") from None

    def _adopt_latest(self, mine: SignedCheckpoint | None = None) -> None:
        """Take the stream's latest checkpoint as the base, after checking it against our tree."""
        names = self.names
        stored = last_note(self._conn, names.checkpoints_stream, names.notes_subject)
        if stored is None:
            return
        if mine is not None and stored.data == mine.to_bytes():
            self._published_ok(mine, stored.sequence)
            return
        self._checkpoint_seq = stored.sequence
        other = self._verified(stored)
        if other is None:
            return  # logged; our next checkpoint follows it on the stream and is correct
        compact = self._tree()
        if other.size == compact.size:
            if other.root != compact.root():
                raise self._diverge(
                    f"another instance signed another root for size {other.size}",
                    kind="bifurcada",
                    against=other,
                )
        elif other.size > compact.size:
            self._expect = other  # checked when the tree reaches its size
        else:
            theirs = self._from_frontier(other, stored.frontier)
            if theirs is None:
                log.warning("ledger.follower.unchecked_checkpoint", size=other.size)
            else:
                self._read_tree(theirs, compact.size, start=other.size + 1)
                if theirs.root() != compact.root():
                    raise self._diverge(
                        f"the checkpoint of size {other.size} another instance signed does not "
                        f"extend to this tree of size {compact.size}",
                        kind="bifurcada",
                        against=other,
                    )
        self._checkpoint = other
        self._last_publish = time.monotonic()

    def _publish_keyring(self) -> None:
        """Publish the public keyring if it changed (first run, or after a rotation)."""
        keyring = self._signer.public_keyring()
        if keyring == self._published_keyring:
            return
        names = self.names
        for _ in range(3):
            if self._keyring_seq is None:
                stored = last_note(self._conn, names.checkpoints_stream, names.keyring_subject)
                self._keyring_seq = stored.sequence if stored else 0
                if stored is not None and _parse_keyring(stored.data) == keyring:
                    self._published_keyring = keyring
                    return
            headers = {EXPECTED_SUBJECT_SEQ: str(self._keyring_seq)}
            reply = self._request(names.keyring_subject, keyring_json(keyring), headers)
            if reply is not None and not isinstance(reply.get("error"), dict):
                self._keyring_seq = int(reply.get("seq") or 0)
                self._published_keyring = keyring
                log.info("ledger.keyring.published", versions=list(keyring.versions))
                return
            self._keyring_seq = None  # lost a race or no answer: look again
        raise EventStoreError("could not publish the ledger's public keyring")


def _parse_keyring(data: bytes) -> PublicKeyring | None:
    try:
        doc = json.loads(data)
        return PublicKeyring.from_json(doc) if isinstance(doc, dict) else None
    except (ValueError, MalformedCheckpointError):
        return None
