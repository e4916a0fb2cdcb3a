"""The ledger follower: Merkle tree of the events stream, signed checkpoints on their own stream.

Runs inside ``custodia servicio`` (:meth:`LedgerFollower.start` / :meth:`~LedgerFollower.stop`,
a daemon thread), or step by step with :meth:`LedgerFollower.checkpoint_now`.

How it works
    It reads every entry of the events stream in sequence order (batched direct gets), appends
    its leaf hash to a :class:`~events.merkle.CompactRange`, and publishes a signed checkpoint
    every ``every_events`` entries, or after ``every_seconds`` if the tree grew. Checkpoint sizes
    fall exactly on multiples of ``every_events`` past the previous checkpoint when catching up.

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
    what happened). A checkpoint on the stream whose signature does not verify is logged and
    skipped: the follower keeps signing its own, correct tree (on restart, from the last
    checkpoint that does verify, after recomputing the tree up to it).
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

from custody.ledger.errors import LedgerDivergedError
from custody.ledger.leaves import leaf_bytes
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
from events.merkle import CompactRange

__all__ = [
    "CheckpointSigner",
    "FollowerSettings",
    "FollowerStatus",
    "LedgerFollower",
    "LocalCheckpointSigner",
    "keyring_json",
]

log = structlog.get_logger()

_sha256 = hashlib.sha256
_TAIL_CHECK_MAX = 4096  # entries re-read on resume to check the frontier's last subtree


class CheckpointSigner(Protocol):
    """Signs checkpoints, knows the public keys (:class:`custody.transit_signer.TransitSigner`)."""

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint: ...

    def public_keyring(self, *, refresh: bool = False) -> PublicKeyring: ...


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
    poll_seconds: float = 0.5
    read_batch: int = 1000
    replicas: int = 1
    create_stream: bool = True
    request_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.every_events < 1 or self.every_seconds <= 0 or self.poll_seconds <= 0:
            raise ValueError("every_events >= 1; every_seconds and poll_seconds > 0")


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    """What the follower knows: its tree size, the latest checkpoint, whether it diverged."""

    size: int
    checkpoint: SignedCheckpoint | None
    diverged: str | None
    published: int
    running: bool


class LedgerFollower:
    """Follows the events stream and publishes signed checkpoints (module docstring)."""

    def __init__(
        self,
        conn: Connection,
        signer: CheckpointSigner,
        names: LedgerNames | None = None,
        settings: FollowerSettings | None = None,
    ) -> None:
        self._conn = conn
        self._signer = signer
        self.names = names or LedgerNames.for_app()
        self.settings = settings or FollowerSettings()
        self._compact: CompactRange | None = None
        self._checkpoint: SignedCheckpoint | None = None
        self._checkpoint_seq = 0
        self._expect: SignedCheckpoint | None = None
        self._keyring_seq: int | None = None
        self._published_keyring: PublicKeyring | None = None
        self._last_publish = time.monotonic()
        self._diverged: str | None = None
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
        """Stop following (a checkpoint being published completes first)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

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
        )

    def _run(self) -> None:
        backoff = self.settings.poll_seconds
        while not self._stopping.is_set():
            try:
                with self._lock:
                    self._step(force=False)
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
            raise LedgerDivergedError(self._diverged)
        if self._compact is None:
            self._resume()
        self._catch_up()
        compact = self._tree()
        covered = self._checkpoint.size if self._checkpoint else 0
        if compact.size > covered and (
            force
            or compact.size - covered >= self.settings.every_events
            or time.monotonic() - self._last_publish >= self.settings.every_seconds
        ):
            self._publish()

    def _tree(self) -> CompactRange:
        assert self._compact is not None
        return self._compact

    def _diverge(self, reason: str, sequence: int | None = None) -> LedgerDivergedError:
        self._diverged = reason
        log.error(
            "ledger.follower.diverged",
            reason=reason,
            entry=sequence,
            stream=self.names.events_stream,
        )
        return LedgerDivergedError(reason, sequence)

    # -- resuming --------------------------------------------------------------------------

    def _resume(self) -> None:
        names = self.names
        if self.settings.create_stream:
            ensure_checkpoints_stream(self._conn, names, replicas=self.settings.replicas)
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
            )
        compact = self._from_frontier(signed, frontier)
        if compact is None:
            compact = self._read_tree(CompactRange(), signed.size)
            if compact.root() != signed.root:
                raise self._diverge(f"entries 1..{signed.size} do not give the signed root")
        else:
            self._check_tail(compact, signed.size)
        self._compact = compact
        self._checkpoint = signed
        log.info("ledger.follower.resumed", size=signed.size, checkpoint_seq=stored.sequence)

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
        frontier = decode_frontier(text)
        if frontier is None:
            return None
        try:
            compact = CompactRange.from_frontier(signed.size, frontier)
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
            )

    def _read_tree(self, compact: CompactRange, stop: int, start: int = 1) -> CompactRange:
        """``compact`` (covering ``start - 1`` leaves of some range) extended up to ``stop``."""
        expected = start
        for batch in read_entries(
            self._conn, self.names.events_stream, start=start, stop=stop, batch=self._batch()
        ):
            expected = self._hash_into(compact, batch, expected)
        if expected != stop + 1:
            raise self._diverge(f"entry {expected} is missing from the stream", expected)
        return compact

    def _hash_into(self, compact: CompactRange, batch: list[RawMessage], expected: int) -> int:
        hashes = []
        for seq, subject, data in batch:
            if seq != expected:
                raise self._diverge(f"entry {expected} is missing from the stream", expected)
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
            covered = self._checkpoint.size if self._checkpoint else 0
            take = min(take, max(1, covered + every - compact.size))
            if self._expect is not None and self._expect.size > compact.size:
                take = min(take, self._expect.size - compact.size)
            compact.extend(hashes[pos : pos + take])
            pos += take
            self._check_expected()
            covered = self._checkpoint.size if self._checkpoint else 0
            if compact.size - covered >= every:
                self._publish()
        if len(hashes) < len(batch):
            raise self._diverge(f"entry {expected} is missing from the stream", expected)

    def _check_expected(self) -> None:
        expect = self._expect
        compact = self._tree()
        if expect is None or compact.size != expect.size:
            return
        self._expect = None
        if compact.root() != expect.root:
            raise self._diverge(
                f"entries 1..{expect.size} do not give the root another instance signed"
            )

    # -- publishing ------------------------------------------------------------------------

    def _publish(self) -> None:
        compact = self._tree()
        checkpoint = Checkpoint(self.names.origin, compact.size, compact.root(), datetime.now(UTC))
        signed = self._signer.sign_checkpoint(checkpoint)
        self._publish_keyring()
        headers = {
            EXPECTED_SUBJECT_SEQ: str(self._checkpoint_seq),
            FRONTIER_HEADER: encode_frontier(compact.frontier),
        }
        reply = self._request(self.names.notes_subject, signed.to_bytes(), headers)
        if reply is None:  # no answer: it may have landed; look
            self._adopt_latest(mine=signed)
            return
        error = reply.get("error")
        if isinstance(error, dict):
            code = int(error.get("err_code", 0))
            if code in WRONG_LAST_SEQUENCE:
                log.info("ledger.checkpoint.lost_race", size=compact.size)
                self._adopt_latest()
                return
            raise JetStreamAPIError(code, str(error.get("description", "")))
        self._published_ok(signed, int(reply.get("seq") or 0))

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
                raise self._diverge(f"another instance signed another root for size {other.size}")
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
                        f"extend to this tree of size {compact.size}"
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
