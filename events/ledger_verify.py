"""Verification of the ledger against its signed checkpoints; witness; offline bundles and proofs.

Pure: no NATS, no Vault, no terminal. Everything works on ``(notification_id, leaf_bytes)`` pairs
in notification order and on signed checkpoints (:mod:`events.checkpoint`).

How a verdict names the first bad position
------------------------------------------
- Notification ids are JetStream stream sequences and must run 1, 2, 3... A deleted message leaves
  a hole: :attr:`ProblemKind.GAP` names the first missing id exactly (and the last of the hole).
- An altered, reordered or inserted event changes the Merkle root of every checkpoint at or after
  it. A checkpoint commits to each leaf only through its root, so from the roots alone the fault
  is localised to the interval between the last checkpoint that matches and the first that does
  not: ids ``(last good size, bad size]`` (:attr:`ProblemKind.ROOT_MISMATCH`, ``first_id`` and
  ``last_id``). Denser checkpoints narrow it: the witness's checkpoints may be passed in as well.
  This assumes all signed checkpoints describe one history, which the next rules check.
- To name the exact event, pass ``reference_leaf_hashes``: the leaf hashes of an earlier good copy
  (e.g. :meth:`Bundle.leaf_hashes` of an earlier export, or a witness's copy). They are trusted only
  up to a size where a validly signed checkpoint has their root; below that, the first index where
  the ledger's leaf hash differs is the first bad event (``notification_id``).
- A signed checkpoint whose root does not match while a later (or equal-size) signed checkpoint
  does match is not evidence against the events but against that checkpoint: it is reported as
  :attr:`ProblemKind.INCONSISTENT_CHECKPOINTS` (a replaced or forked checkpoint), naming both.
  Its interval is bounded by the last matching checkpoint of the *same* source: a witness
  checkpoint contradicted by a re-signed ledger names where the rewritten past begins.
- Checkpoints are also checked in the order they were stored: size never goes back and one size
  has one root; a replayed or swapped checkpoint breaks that. (Time is not checked for order: a
  clock stepping back is not tampering.)

Only the first mismatching checkpoint of each run of mismatches is reported: the later ones follow
from it. Problems are listed in the order a reader of the log meets them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol, Self

from events.checkpoint import (
    BadSignatureError,
    CheckpointError,
    MalformedCheckpointError,
    PublicKeyring,
    SignedCheckpoint,
    UnknownKeyError,
    WrongOriginError,
)
from events.merkle import (
    HASH_SIZE,
    CompactRange,
    InvalidProofError,
    LedgerError,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "BUNDLE_FORMAT",
    "EVENT_PROOF_FORMAT",
    "WITNESS_FORMAT",
    "Bundle",
    "BundleError",
    "ConsistencyProver",
    "EventProof",
    "Problem",
    "ProblemKind",
    "ProgressCallback",
    "VerificationReport",
    "Witness",
    "WitnessConflictError",
    "leaf_hashes",
    "prove_event",
    "verify_bundle",
    "verify_leaf_hashes",
    "verify_ledger",
    "write_bundle",
]

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``progress(events done, total or None)`` every batch and at the end."""

CheckpointSource = Literal["ledger", "witness", "anchor"]
"""Where a checkpoint comes from: the ledger's own stream, a witness file, or the head and
witnesses anchored outside the ledger (OpenBao)."""

_BATCH = 4096
_sha256 = hashlib.sha256


class BundleError(LedgerError):
    """A bundle file is damaged or not a bundle; ``reason`` says what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WitnessConflictError(LedgerError):
    """A new checkpoint contradicts one the witness has seen: the log's past was rewritten."""

    def __init__(self, seen: SignedCheckpoint, new: SignedCheckpoint, reason: str) -> None:
        super().__init__(
            f"checkpoint of size {new.size} contradicts the one of size {seen.size} "
            f"seen on {seen.timestamp.isoformat()}: {reason}"
        )
        self.seen = seen
        self.new = new
        self.reason = reason


class ProblemKind(StrEnum):
    """What is wrong; see :class:`Problem` for the fields each kind fills."""

    GAP = "gap"
    """Notification ids skip: ``first_id``..``last_id`` are missing (a deleted message)."""
    OUT_OF_ORDER = "out_of_order"
    """A notification id repeats or goes back (``notification_id``)."""
    MISSING_EVENT = "missing_event"
    """The store reports ids up to ``last_id`` but the log read ends before ``first_id``."""
    ROOT_MISMATCH = "root_mismatch"
    """The recomputed root differs from a signed checkpoint's: an event in ``first_id``..
    ``last_id`` was altered, reordered, inserted or removed (``notification_id`` if known)."""
    TRUNCATED = "truncated"
    """A signed checkpoint commits to more events than the log holds; ``first_id`` is missing."""
    BAD_SIGNATURE = "bad_signature"
    """The checkpoint's signature does not verify with the key version it names."""
    UNKNOWN_KEY = "unknown_key"
    """The checkpoint names a key name or version the keyring lacks."""
    MALFORMED_CHECKPOINT = "malformed_checkpoint"
    """The stored checkpoint is not a canonical signed note."""
    WRONG_ORIGIN = "wrong_origin"
    """The checkpoint belongs to another log."""
    INCONSISTENT_CHECKPOINTS = "inconsistent_checkpoints"
    """Two validly signed checkpoints contradict each other (``other_checkpoint_index``)."""
    SHORTER_THAN_REFERENCE = "shorter_than_reference"
    """The reference copy holds ``last_id`` events, the log fewer: from ``first_id`` on they are
    missing (a tail deleted, or the stream re-created shorter)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. Ids are notification ids (stream sequences); tree indices are 0-based.

    ``notification_id`` and ``tree_index`` name the first bad event when it is known exactly;
    ``first_id``..``last_id`` (inclusive) is the range it must lie in, which for a root mismatch
    is the events between tree sizes ``last_good_size`` and ``checkpoint_size``.
    """

    kind: ProblemKind
    detail: str
    notification_id: int | None = None
    first_id: int | None = None
    last_id: int | None = None
    tree_index: int | None = None
    checkpoint_index: int | None = None
    checkpoint_source: CheckpointSource = "ledger"
    checkpoint_size: int | None = None
    other_checkpoint_index: int | None = None
    other_checkpoint_source: CheckpointSource | None = None
    last_good_size: int | None = None
    expected_root: bytes | None = None
    computed_root: bytes | None = None


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The verdict: ``ok`` when no problem was found."""

    ok: bool
    events_checked: int
    checkpoints_checked: int
    checkpoints_verified: int
    tree_size: int
    root: bytes
    last_notification_id: int
    last_verified_checkpoint: SignedCheckpoint | None
    problems: tuple[Problem, ...]
    problems_omitted: int = 0

    @property
    def problem(self) -> Problem | None:
        """The first problem met reading the log, if any."""
        return self.problems[0] if self.problems else None


@dataclass(slots=True)
class _Entry:
    source: CheckpointSource
    index: int
    signed: SignedCheckpoint | None
    problem: Problem | None = None


def _parse_checkpoint(raw: SignedCheckpoint | bytes) -> SignedCheckpoint:
    return raw if isinstance(raw, SignedCheckpoint) else SignedCheckpoint.from_bytes(raw)


def _short(root: bytes) -> str:
    return base64.b64encode(root).decode("ascii")[:12]


class _Verifier:
    """State of one verification pass; see :func:`verify_ledger`."""

    def __init__(
        self,
        checkpoints: Sequence[SignedCheckpoint | bytes],
        witness_checkpoints: Sequence[SignedCheckpoint | bytes],
        keyring: PublicKeyring,
        origin: str | None,
        reference: bytes | None,
        max_problems: int,
        anchored_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
    ) -> None:
        self.keyring = keyring
        self.origin = origin
        self.reference = reference
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.omitted = 0
        self.compact = CompactRange()
        self.count = 0
        self.expected_id = 1
        self.last_id = 0
        self.last_good: _Entry | None = None
        # Largest matching checkpoint (tree size, last id in it), overall and per source.
        self.good: dict[str, tuple[int, int]] = {
            "any": (0, 0),
            "ledger": (0, 0),
            "witness": (0, 0),
            "anchor": (0, 0),
        }
        self.checked = 0
        self.verified = 0
        # Open run of mismatches: (problem index, its checkpoint, same-source good bound).
        self.run: tuple[int, _Entry, tuple[int, int]] | None = None
        self.first_diff: tuple[int, int] | None = None  # (tree index, notification id)
        self.trusted: list[_Entry] = []
        self.pending = self._prepare(checkpoints, witness_checkpoints, anchored_checkpoints)
        self.next = 0

    # -- checkpoints, statically -------------------------------------------------------------

    def _prepare(
        self,
        checkpoints: Sequence[SignedCheckpoint | bytes],
        witness: Sequence[SignedCheckpoint | bytes],
        anchored: Sequence[SignedCheckpoint | bytes],
    ) -> list[_Entry]:
        entries: list[_Entry] = []
        sources: tuple[tuple[CheckpointSource, Sequence[SignedCheckpoint | bytes]], ...] = (
            ("ledger", checkpoints),
            ("witness", witness),
            ("anchor", anchored),
        )
        for source, items in sources:
            previous: _Entry | None = None
            for index, raw in enumerate(items):
                entry = self._static_check(source, index, raw, previous)
                if entry is None:
                    continue
                entries.append(entry)
                if entry.problem is None:
                    self.trusted.append(entry)
                    if source == "ledger":
                        previous = entry
        entries.sort(key=lambda e: (e.signed.size if e.signed else 0, e.source != "ledger"))
        return entries

    def _static_check(
        self,
        source: CheckpointSource,
        index: int,
        raw: SignedCheckpoint | bytes,
        previous: _Entry | None,
    ) -> _Entry | None:
        where = f"{source} checkpoint #{index}"
        try:
            signed = _parse_checkpoint(raw)
        except MalformedCheckpointError as exc:
            self.checked += 1
            self._add(
                Problem(
                    ProblemKind.MALFORMED_CHECKPOINT,
                    f"{where} is malformed: {exc.reason}",
                    checkpoint_index=index,
                    checkpoint_source=source,
                )
            )
            return None
        entry = _Entry(source, index, signed)

        def problem(kind: ProblemKind, detail: str) -> Problem:
            return Problem(
                kind,
                f"{where}{detail}",
                checkpoint_index=index,
                checkpoint_source=source,
                checkpoint_size=signed.size,
            )

        if self.origin is None:
            self.origin = signed.origin
        try:
            signed.verify(self.keyring, origin=self.origin)
        except WrongOriginError as exc:
            entry.problem = problem(
                ProblemKind.WRONG_ORIGIN, f" is for log {exc.origin!r}, not {exc.expected!r}"
            )
            return entry
        except UnknownKeyError as exc:
            entry.problem = problem(
                ProblemKind.UNKNOWN_KEY,
                f" is signed with {exc.key_name}:v{exc.key_version}, not in the keyring",
            )
            return entry
        except BadSignatureError as exc:
            entry.problem = problem(
                ProblemKind.BAD_SIGNATURE,
                f": signature does not verify with {exc.key_name}:v{exc.key_version}",
            )
            return entry
        if previous is not None and previous.signed is not None:
            before = previous.signed
            reason = None
            if signed.size < before.size:
                reason = f"its size {signed.size} is below the previous {before.size}"
            elif signed.size == before.size and signed.root != before.root:
                reason = f"it has another root for the same size {signed.size}"
            if reason is not None:
                entry.problem = dataclasses.replace(
                    problem(
                        ProblemKind.INCONSISTENT_CHECKPOINTS,
                        f" does not follow checkpoint #{previous.index}: {reason}",
                    ),
                    other_checkpoint_index=previous.index,
                    other_checkpoint_source="ledger",
                )
        return entry

    # -- recording ---------------------------------------------------------------------------

    def _add(self, problem: Problem) -> int:
        if len(self.problems) >= self.max_problems:
            self.omitted += 1
            return -1
        self.problems.append(problem)
        return len(self.problems) - 1

    # -- the log -----------------------------------------------------------------------------

    def check_due(self) -> None:
        """Check every pending checkpoint whose size is the current tree size."""
        pending = self.pending
        root: bytes | None = None
        before = dict(self.good)  # bounds strictly below this size
        while self.next < len(pending):
            entry = pending[self.next]
            assert entry.signed is not None
            if entry.signed.size != self.count:
                break
            self.next += 1
            self.checked += 1
            if entry.problem is not None:
                self._add(entry.problem)
                continue
            if root is None:
                root = self.compact.root()
            self._check_root(entry, root, before)

    def _check_root(self, entry: _Entry, root: bytes, before: dict[str, tuple[int, int]]) -> None:
        signed = entry.signed
        assert signed is not None
        if root == signed.root:
            self.verified += 1
            if self.run is not None:
                self._close_run(entry)
            self.last_good = entry
            self.good["any"] = self.good[entry.source] = (signed.size, self.last_id)
            return
        if self.run is not None:
            return  # follows from the open run's first mismatch
        # A witness checkpoint is bounded by its own source: matching ledger checkpoints may be
        # re-signed over a rewritten past (see _close_run), even when no later one closes the run.
        good, good_id = before["any" if entry.source == "ledger" else entry.source]
        problem = Problem(
            ProblemKind.ROOT_MISMATCH,
            f"{entry.source} checkpoint #{entry.index} (size {signed.size}) has root "
            f"{_short(signed.root)}..., the log gives {_short(root)}...: an event in ids "
            f"{good_id + 1}..{self.last_id} differs from what was signed",
            first_id=good_id + 1,
            last_id=self.last_id,
            checkpoint_index=entry.index,
            checkpoint_source=entry.source,
            checkpoint_size=signed.size,
            last_good_size=good,
            expected_root=signed.root,
            computed_root=root,
        )
        self.run = (self._add(problem), entry, before[entry.source])

    def _close_run(self, matching: _Entry) -> None:
        """A signed checkpoint matches again: the run's first checkpoint is the odd one out."""
        assert self.run is not None
        assert matching.signed is not None
        at, bad, (good, good_id) = self.run
        self.run = None
        if at < 0:
            return
        old = self.problems[at]
        # Two signed histories: the bad checkpoint's own source bounds where they part ways.
        self.problems[at] = dataclasses.replace(
            old,
            kind=ProblemKind.INCONSISTENT_CHECKPOINTS,
            detail=(
                f"{bad.source} checkpoint #{bad.index} (size {old.checkpoint_size}) contradicts "
                f"{matching.source} checkpoint #{matching.index} (size {matching.signed.size}), "
                f"which matches the log: a replaced checkpoint, or a past rewritten in ids "
                f"{good_id + 1}..{old.last_id}"
            ),
            first_id=good_id + 1,
            last_good_size=good,
            other_checkpoint_index=matching.index,
            other_checkpoint_source=matching.source,
        )

    def advance(self, ids: list[int], hashes: list[bytes]) -> None:
        """Append contiguous-by-position leaves, checking checkpoints at their sizes."""
        pos, n = 0, len(hashes)
        pending = self.pending
        while pos < n:
            take = n - pos
            if self.next < len(pending):
                signed = pending[self.next].signed
                assert signed is not None
                take = min(take, signed.size - self.count)
            self.compact.extend(hashes[pos : pos + take])
            self.count += take
            pos += take
            self.last_id = ids[pos - 1]
            self.check_due()

    def compare_reference(self, start: int, ids: list[int], hashes: list[bytes]) -> None:
        """Record the first tree index whose leaf hash differs from the reference."""
        ref = self.reference
        if ref is None or self.first_diff is not None or start * HASH_SIZE >= len(ref):
            return
        upto = min(len(hashes), len(ref) // HASH_SIZE - start)
        if b"".join(hashes[:upto]) == ref[start * HASH_SIZE : (start + upto) * HASH_SIZE]:
            return
        for i in range(upto):
            at = (start + i) * HASH_SIZE
            if hashes[i] != ref[at : at + HASH_SIZE]:
                self.first_diff = (start + i, ids[i])
                return

    def feed(self, batch: list[tuple[int, bytes]]) -> None:
        self.feed_hashes([e[0] for e in batch], leaf_hash_list(batch))

    def feed_hashes(self, ids: list[int], hashes: list[bytes]) -> None:
        """Feed leaves already hashed: ``hashes[i]`` is ``H(0x00 || leaf)`` of entry ``ids[i]``."""
        if not ids:
            return
        self.compare_reference(self.count, ids, hashes)
        expected = self.expected_id
        if (
            ids[0] == expected
            and ids[-1] == expected + len(ids) - 1
            and ids == list(range(expected, expected + len(ids)))
        ):
            self.advance(ids, hashes)
            self.expected_id = ids[-1] + 1
            return
        start = 0
        for i, nid in enumerate(ids):
            if nid == self.expected_id:
                self.expected_id += 1
                continue
            if i > start:
                self.advance(ids[start:i], hashes[start:i])
            start = i
            self._id_anomaly(nid)
        self.advance(ids[start:], hashes[start:])

    def _id_anomaly(self, nid: int) -> None:
        if nid > self.expected_id:
            first, last = self.expected_id, nid - 1
            what = f"id {first}" if first == last else f"ids {first}..{last}"
            self._add(
                Problem(
                    ProblemKind.GAP,
                    f"event {what} missing: the log goes from id {first - 1} to {nid}",
                    notification_id=first,
                    first_id=first,
                    last_id=last,
                    tree_index=self.count,
                )
            )
            self.expected_id = nid + 1
        else:
            self._add(
                Problem(
                    ProblemKind.OUT_OF_ORDER,
                    f"id {nid} comes after id {self.expected_id - 1}",
                    notification_id=nid,
                    tree_index=self.count,
                )
            )

    def finish(self, expected_last_id: int | None) -> None:
        if expected_last_id is not None and self.expected_id <= expected_last_id:
            first = self.expected_id
            self._add(
                Problem(
                    ProblemKind.MISSING_EVENT,
                    f"the store reports ids up to {expected_last_id}, the log ends at {first - 1}",
                    notification_id=first,
                    first_id=first,
                    last_id=expected_last_id,
                    tree_index=self.count,
                )
            )
        truncated = False
        for entry in self.pending[self.next :]:
            assert entry.signed is not None
            self.checked += 1
            if entry.problem is not None:
                self._add(entry.problem)
            elif not truncated:
                truncated = True
                self._add(
                    Problem(
                        ProblemKind.TRUNCATED,
                        f"{entry.source} checkpoint #{entry.index} commits to "
                        f"{entry.signed.size} events, the log has {self.count}: "
                        f"events from id {self.last_id + 1} on are missing",
                        notification_id=self.last_id + 1,
                        first_id=self.last_id + 1,
                        tree_index=self.count,
                        checkpoint_index=entry.index,
                        checkpoint_source=entry.source,
                        checkpoint_size=entry.signed.size,
                        last_good_size=self.good["any"][0],
                    )
                )
        self.next = len(self.pending)
        held = len(self.reference or b"") // HASH_SIZE
        if held > self.count:
            # An unsigned copy cannot prove what the missing events were, but it can prove that
            # the log once held more of them (finding 8: a tail that vanished).
            self._add(
                Problem(
                    ProblemKind.SHORTER_THAN_REFERENCE,
                    f"the reference copy holds {held} events, the log {self.count}: events from "
                    f"id {self.last_id + 1} on are missing",
                    notification_id=self.last_id + 1,
                    first_id=self.last_id + 1,
                    last_id=held,
                    tree_index=self.count,
                )
            )
        if self.run is not None and self.run[0] >= 0:
            self._pinpoint(self.run[0])

    def _pinpoint(self, at: int) -> None:
        """Name the exact first bad event of a root mismatch from authenticated reference hashes."""
        if self.first_diff is None or self.reference is None:
            return
        index, nid = self.first_diff
        problem = self.problems[at]
        if problem.last_good_size is None or index < problem.last_good_size:
            return
        authority = _authenticate(self.reference, self.trusted, above=index)
        if authority is None or authority.signed is None:
            return
        self.problems[at] = dataclasses.replace(
            problem,
            notification_id=nid,
            tree_index=index,
            detail=(
                f"{problem.detail}; event id {nid} (tree index {index}) differs from the copy "
                f"authenticated by {authority.source} checkpoint #{authority.index} "
                f"(size {authority.signed.size})"
            ),
        )


def _authenticate(reference: bytes, trusted: list[_Entry], *, above: int) -> _Entry | None:
    """A signed checkpoint of size > ``above`` whose root the reference hashes reproduce."""
    available = len(reference) // HASH_SIZE
    targets = sorted(
        (e for e in trusted if e.signed and above < e.signed.size <= available),
        key=lambda e: e.signed.size if e.signed else 0,
    )
    compact = CompactRange()
    for entry in targets:
        assert entry.signed is not None
        start, end = compact.size * HASH_SIZE, entry.signed.size * HASH_SIZE
        compact.extend([reference[i : i + HASH_SIZE] for i in range(start, end, HASH_SIZE)])
        if compact.root() == entry.signed.root:
            return entry
    return None


def verify_ledger(
    events: Iterable[tuple[int, bytes]],
    checkpoints: Sequence[SignedCheckpoint | bytes],
    keyring: PublicKeyring,
    *,
    origin: str | None = None,
    expected_last_id: int | None = None,
    witness_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
    reference_leaf_hashes: bytes | None = None,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    max_problems: int = 100,
    anchored_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
) -> VerificationReport:
    """Recompute the Merkle tree of ``events`` and check every checkpoint against it.

    ``events`` are ``(notification id, exact stored bytes)`` in stream order; ``checkpoints`` are in
    the order they were stored (signed objects, or raw notes so a malformed one is reported).
    ``origin`` defaults to the first checkpoint's. ``expected_last_id`` is the store's own last
    sequence, to catch a deleted tail no checkpoint covers yet. ``witness_checkpoints`` are
    checked against the log too (not for order), and so are ``anchored_checkpoints`` (the head
    and witnesses kept in OpenBao, source ``"anchor"``): one larger than the log reports it
    truncated. See the module docstring for ``reference_leaf_hashes``; a reference holding more
    events than the log is reported too. Every checkpoint whose root matches is consistent with
    all the others that match, since all are roots of the one recomputed tree (RFC 9162 §2.1.4).
    """

    def batches() -> Iterator[tuple[list[int], list[bytes]]]:
        it = iter(events)
        while batch := list(islice(it, _BATCH)):
            yield [e[0] for e in batch], leaf_hash_list(batch)

    return verify_leaf_hashes(
        batches(),
        checkpoints,
        keyring,
        origin=origin,
        expected_last_id=expected_last_id,
        witness_checkpoints=witness_checkpoints,
        reference_leaf_hashes=reference_leaf_hashes,
        total=total,
        progress=progress,
        max_problems=max_problems,
        anchored_checkpoints=anchored_checkpoints,
    )


def leaf_hash_list(events: list[tuple[int, bytes]]) -> list[bytes]:
    """``H(0x00 || leaf)`` of each ``(notification id, leaf bytes)``."""
    sha, prefix = _sha256, b"\x00"
    return [sha(prefix + e[1]).digest() for e in events]


def verify_leaf_hashes(
    batches: Iterable[tuple[list[int], list[bytes]]],
    checkpoints: Sequence[SignedCheckpoint | bytes],
    keyring: PublicKeyring,
    *,
    origin: str | None = None,
    expected_last_id: int | None = None,
    witness_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
    reference_leaf_hashes: bytes | None = None,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    max_problems: int = 100,
    anchored_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
) -> VerificationReport:
    """:func:`verify_ledger` over leaves hashed by the caller, in batches of
    ``(notification ids, leaf hashes)`` (for a caller that hashes while it reads each entry)."""
    verifier = _Verifier(
        checkpoints,
        witness_checkpoints,
        keyring,
        origin,
        reference_leaf_hashes,
        max_problems,
        anchored_checkpoints,
    )
    verifier.check_due()
    for ids, hashes in batches:
        verifier.feed_hashes(ids, hashes)
        if progress is not None:
            progress(verifier.count, total)
    verifier.finish(expected_last_id)
    if progress is not None:
        progress(verifier.count, total)
    good = verifier.last_good
    return VerificationReport(
        ok=not verifier.problems and not verifier.omitted,
        events_checked=verifier.count,
        checkpoints_checked=verifier.checked,
        checkpoints_verified=verifier.verified,
        tree_size=verifier.count,
        root=verifier.compact.root(),
        last_notification_id=verifier.last_id,
        last_verified_checkpoint=good.signed if good else None,
        problems=tuple(verifier.problems),
        problems_omitted=verifier.omitted,
    )


def leaf_hashes(events: Iterable[tuple[int, bytes]]) -> bytes:
    """Packed leaf hashes of ``events``, 32 bytes each: a reference for :func:`verify_ledger`."""
    sha, prefix = _sha256, b"\x00"
    return b"".join(sha(prefix + data).digest() for _, data in events)


# -- witness -----------------------------------------------------------------------------------


class ConsistencyProver(Protocol):
    """Anything that proves the tree at one size is a prefix of it at another (RFC 9162 §2.1.4).

    :class:`events.merkle.MerkleTree` is one; a remote log could be another.
    """

    @property
    def size(self) -> int: ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


WITNESS_FORMAT = "custodia-witness"


class Witness:
    """The checkpoints one party (the Secretaría Ejecutiva) has seen, kept in a small JSON file.

    A new checkpoint is accepted only if it is consistent with every stored one (RFC 9162 §2.1.4
    proofs from the log); a log that rewrote its past cannot produce those proofs. The file is
    ``{"format": "custodia-witness", "version": 1, "origin": ..., "checkpoints": [<signed note
    text>, ...]}``, sorted by size, written atomically. Stored checkpoints are re-verified on load.
    """

    def __init__(self, path: Path, keyring: PublicKeyring, origin: str) -> None:
        self.path = path
        self.keyring = keyring
        self.origin = origin
        self._seen: list[SignedCheckpoint] = []
        if path.exists():
            self._load()

    @property
    def checkpoints(self) -> tuple[SignedCheckpoint, ...]:
        """Stored checkpoints, by size."""
        return tuple(self._seen)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            if data.get("format") != WITNESS_FORMAT or data.get("version") != 1:
                raise ValueError("not a custodia witness file, version 1")
            if data.get("origin") != self.origin:
                raise ValueError(f"the file is for log {data.get('origin')!r}")
            seen = [SignedCheckpoint.from_text(t) for t in data["checkpoints"]]
            for signed in seen:
                signed.verify(self.keyring, origin=self.origin)
        except RecursionError:  # JSON nested beyond what the parser follows
            raise LedgerError(f"witness file {self.path}: nested too deeply") from None
        except (ValueError, KeyError, TypeError, AttributeError, CheckpointError) as exc:
            raise LedgerError(f"witness file {self.path}: {exc}") from None
        self._seen = sorted(seen, key=lambda s: s.size)

    def _save(self) -> None:
        data = {
            "format": WITNESS_FORMAT,
            "version": 1,
            "origin": self.origin,
            "checkpoints": [s.to_text() for s in self._seen],
        }
        _atomic_write(self.path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())

    def check(self, new: SignedCheckpoint, prover: ConsistencyProver) -> None:
        """Raise unless ``new`` is validly signed, for this log, and consistent with all seen.

        ``prover`` is the log the checkpoint comes from; it must cover every size involved.
        Raises :class:`events.checkpoint.CheckpointError` or :class:`WitnessConflictError`.
        """
        new.verify(self.keyring, origin=self.origin)
        for seen in self._seen:
            small, large = (seen, new) if seen.size <= new.size else (new, seen)
            if prover.size < large.size:
                raise WitnessConflictError(
                    seen, new, f"the log has {prover.size} events, fewer than {large.size}"
                )
            try:
                proof = prover.consistency_proof(small.size, large.size)
                verify_consistency(small.size, large.size, proof, small.root, large.root)
            except InvalidProofError as exc:
                raise WitnessConflictError(seen, new, exc.reason) from None

    def observe(self, new: SignedCheckpoint, prover: ConsistencyProver) -> bool:
        """:meth:`check` ``new`` and store it; return False if an equal one was already stored."""
        self.check(new, prover)
        if any(s.size == new.size for s in self._seen):
            return False
        self._seen = sorted([*self._seen, new], key=lambda s: s.size)
        self._save()
        return True


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- inclusion proof of one event ----------------------------------------------------------------

EVENT_PROOF_FORMAT = "custodia-event-proof"


@dataclass(frozen=True, slots=True)
class EventProof:
    """Event ``notification_id`` (its exact bytes ``data``) is in the tree ``checkpoint`` signs.

    JSON form (:meth:`to_json`): ``{"format": "custodia-event-proof", "version": 1,
    "notification_id": n, "data": <base64>, "path": [<base64>, ...], "checkpoint": <note>}``.
    The event is leaf ``notification_id - 1`` (ids are contiguous from 1).
    """

    notification_id: int
    data: bytes
    path: tuple[bytes, ...]
    checkpoint: SignedCheckpoint

    def verify(self, keyring: PublicKeyring, origin: str | None = None) -> None:
        """Raise unless the checkpoint's signature and the RFC 9162 §2.1.3.2 audit path hold."""
        self.checkpoint.verify(keyring, origin=origin)
        verify_inclusion(
            leaf_hash(self.data),
            self.notification_id - 1,
            self.checkpoint.size,
            self.path,
            self.checkpoint.root,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": EVENT_PROOF_FORMAT,
                "version": 1,
                "notification_id": self.notification_id,
                "data": base64.b64encode(self.data).decode("ascii"),
                "path": [base64.b64encode(p).decode("ascii") for p in self.path],
                "checkpoint": self.checkpoint.to_text(),
            },
            indent=1,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> EventProof:
        """Inverse of :meth:`to_json`; raises :class:`InvalidProofError` on a malformed document."""
        try:
            doc = json.loads(text)
            if doc["format"] != EVENT_PROOF_FORMAT or doc["version"] != 1:
                raise ValueError("not a custodia event proof, version 1")
            nid = doc["notification_id"]
            if not isinstance(nid, int) or nid < 1:
                raise ValueError("notification_id must be a positive integer")
            return cls(
                nid,
                base64.b64decode(doc["data"], validate=True),
                tuple(base64.b64decode(p, validate=True) for p in doc["path"]),
                SignedCheckpoint.from_text(doc["checkpoint"]),
            )
        except RecursionError:  # JSON nested beyond what the parser follows
            raise InvalidProofError("malformed event proof: nested too deeply") from None
        except (ValueError, KeyError, TypeError, binascii.Error, CheckpointError) as exc:
            raise InvalidProofError(f"malformed event proof: {exc}") from None


def prove_event(
    tree: MerkleTree, notification_id: int, data: bytes, checkpoint: SignedCheckpoint
) -> EventProof:
    """The inclusion proof of one event against ``checkpoint`` from the recomputed ``tree``."""
    index = notification_id - 1
    if not 0 <= index < checkpoint.size <= tree.size:
        raise InvalidProofError(
            f"event {notification_id} is not covered by a checkpoint of size {checkpoint.size} "
            f"in a tree of {tree.size}"
        )
    if tree.leaf_hash(index) != leaf_hash(data):
        raise InvalidProofError(f"event {notification_id} is not leaf {index} of the tree")
    if tree.root(checkpoint.size) != checkpoint.root:
        raise InvalidProofError(f"the tree does not match checkpoint of size {checkpoint.size}")
    return EventProof(
        notification_id, data, tuple(tree.inclusion_proof(index, checkpoint.size)), checkpoint
    )


# -- offline bundle ------------------------------------------------------------------------------

BUNDLE_FORMAT = "custodia-ledger-bundle"
_EVENT_PREFIX = b'{"type":"event","id":'
_EVENT_SUFFIX = b'"}\n'


def write_bundle(
    path: Path,
    *,
    origin: str,
    keyring: PublicKeyring,
    checkpoints: Sequence[SignedCheckpoint | bytes],
    events: Iterable[tuple[int, bytes]],
    last_sequence: int | None = None,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
    total: int | None = None,
) -> int:
    """Write a self-contained bundle for offline verification; return the number of events.

    The file is gzip'd JSON lines, one object each, in this order::

        {"type": "header", "format": "custodia-ledger-bundle", "version": 1, "origin": ...,
         "created": "<ISO 8601 UTC>", "last_sequence": <store's last sequence or null>}
        {"type": "keyring", "name": ..., "keys": {"1": "<base64 raw ed25519 key>", ...}}
        {"type": "checkpoint", "index": i, "note": "<base64 of the exact stored note bytes>"}
        {"type": "event", "id": <notification id>, "data": "<base64 of the exact stored bytes>"}
        {"type": "end", "checkpoints": k, "events": n}

    Checkpoints come before events so a reader verifies in one streaming pass. The keyring is a
    convenience: an auditor should pass the public key obtained independently.
    """
    created = created or datetime.now(UTC)
    count = 0
    tmp = path.with_name(f".{path.name}.partial")
    try:
        count = _write_bundle_lines(
            tmp, origin, keyring, checkpoints, events, last_sequence, created, progress, total
        )
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(count, total)
    return count


def _write_bundle_lines(
    tmp: Path,
    origin: str,
    keyring: PublicKeyring,
    checkpoints: Sequence[SignedCheckpoint | bytes],
    events: Iterable[tuple[int, bytes]],
    last_sequence: int | None,
    created: datetime,
    progress: ProgressCallback | None,
    total: int | None,
) -> int:
    count = 0
    # mtime=0 and no file name in the gzip header: the same ledger gives the same bytes.
    with (
        tmp.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as raw,
    ):
        write = raw.write
        dumps = json.dumps
        header = {
            "type": "header",
            "format": BUNDLE_FORMAT,
            "version": 1,
            "origin": origin,
            "created": created.astimezone(UTC).isoformat(),
            "last_sequence": last_sequence,
        }
        write(dumps(header, ensure_ascii=False).encode() + b"\n")
        write(dumps({"type": "keyring", **keyring.to_json()}).encode() + b"\n")
        for index, cp in enumerate(checkpoints):
            note = cp.to_bytes() if isinstance(cp, SignedCheckpoint) else cp
            line = {"type": "checkpoint", "index": index, "note": _b64(note)}
            write(dumps(line).encode() + b"\n")
        b64 = base64.b64encode
        for nid, data in events:
            write(b'%s%d,"data":"%s%s' % (_EVENT_PREFIX, nid, b64(data), _EVENT_SUFFIX))
            count += 1
            if progress is not None and count % 65536 == 0:
                progress(count, total)
        end = {"type": "end", "checkpoints": len(checkpoints), "events": count}
        write(dumps(end).encode() + b"\n")
    return count


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Bundle:
    """A bundle opened for reading: header, keyring and checkpoints at once, events streamed.

    Use as a context manager; :meth:`events` can be iterated once and raises :class:`BundleError`
    if the file is damaged or incomplete (no end record, or counts that disagree).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Held open across calls: events are streamed after the header is read.
        self._file = gzip.GzipFile(path, "rb")
        self._consumed = False
        try:
            header = self._record("header")
            if header.get("format") != BUNDLE_FORMAT or header.get("version") != 1:
                raise self._error("not a custodia ledger bundle, version 1")
            self.origin = self._str(header, "origin")
            try:
                self.created = datetime.fromisoformat(self._str(header, "created"))
            except ValueError:
                raise self._error("bad creation time") from None
            last = header.get("last_sequence")
            if last is not None and not isinstance(last, int):
                raise self._error("last_sequence is not an integer")
            self.last_sequence: int | None = last
            keyring = self._record("keyring")
            try:
                self.keyring = PublicKeyring.from_json(keyring)
            except MalformedCheckpointError as exc:
                raise self._error(f"bad keyring: {exc.reason}") from None
            checkpoints: list[bytes] = []
            record = self._next_record()
            while record is not None and record.get("type") == "checkpoint":
                checkpoints.append(self._decode(self._str(record, "note")))
                record = self._next_record()
            self.checkpoints: tuple[bytes, ...] = tuple(checkpoints)
            self._lookahead = record
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _error(self, reason: str) -> BundleError:
        return BundleError(self.path, reason)

    def _readline(self) -> bytes:
        """The next line, at most :data:`MAX_BUNDLE_LINE` bytes: a longer one (a few hundred
        kilobytes of gzip can inflate to gigabytes on one line) is refused before it fills the
        memory of the auditor's machine."""
        try:
            line: bytes = self._file.readline(MAX_BUNDLE_LINE + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise self._error(f"damaged file: {exc}") from None
        if len(line) > MAX_BUNDLE_LINE:
            raise self._error(f"a line longer than {MAX_BUNDLE_LINE // 2**20} MiB")
        return line

    def _next_record(self) -> dict[str, object] | None:
        return self._parse(self._readline())

    def _parse(self, line: bytes) -> dict[str, object] | None:
        if not line:
            return None
        try:
            record = json.loads(line)
        except ValueError:
            raise self._error("a line is not JSON") from None
        except RecursionError:  # nested beyond what the parser follows
            raise self._error("a line nests too deeply") from None
        if not isinstance(record, dict):
            raise self._error("a line is not a JSON object")
        return record

    def _record(self, kind: str) -> dict[str, object]:
        record = self._next_record()
        if record is None or record.get("type") != kind:
            raise self._error(f"expected a {kind} record")
        return record

    def _str(self, record: dict[str, object], key: str) -> str:
        value = record.get(key)
        if not isinstance(value, str):
            raise self._error(f"{record.get('type')} record lacks {key!r}")
        return value

    def _decode(self, text: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self._error("bad base64") from None

    def events(self) -> Iterator[tuple[int, bytes]]:
        """``(notification id, exact stored bytes)`` in the bundle's order."""
        if self._consumed:
            raise self._error("events can be read only once")
        self._consumed = True
        record, count = self._lookahead, 0
        decode = base64.b64decode
        readline, prefix, suffix = self._readline, _EVENT_PREFIX, _EVENT_SUFFIX
        while record is not None and record.get("type") == "event":
            nid, data = record.get("id"), record.get("data")
            if not isinstance(nid, int) or not isinstance(data, (str, bytes)):
                raise self._error("an event record lacks 'id' or 'data'")
            try:
                raw = decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise self._error(f"event {nid} is not base64") from None
            yield nid, raw
            count += 1
            line = readline()
            # Fast path for the exact layout write_bundle produces; anything else goes to json.
            if line.startswith(prefix) and line.endswith(suffix):
                head, sep, encoded = line[len(prefix) : -len(suffix)].partition(b',"data":"')
                if sep and head.isdigit():
                    record = {"type": "event", "id": int(head), "data": encoded}
                    continue
            record = self._parse(line)
        if record is None or record.get("type") != "end":
            raise self._error("no end record after the events: the file is incomplete")
        if record.get("events") != count or record.get("checkpoints") != len(self.checkpoints):
            raise self._error("the end record's counts do not match the file")
        if self._next_record() is not None:
            raise self._error("data after the end record")

    def leaf_hashes(self) -> bytes:
        """Packed leaf hashes of all events (consumes :meth:`events`)."""
        return leaf_hashes(self.events())


# The longest line a bundle may hold: an event is one NATS message (1 MiB as Custodia runs
# NATS, split into several records beyond it) in base64 (4/3); the other records are small.
MAX_BUNDLE_LINE: Final = 16 * 2**20


def verify_bundle(
    path: Path,
    keyring: PublicKeyring | None = None,
    *,
    witness_checkpoints: Sequence[SignedCheckpoint | bytes] = (),
    reference_leaf_hashes: bytes | None = None,
    total: int | None = None,
    progress: ProgressCallback | None = None,
) -> VerificationReport:
    """Verify a bundle fully offline with :func:`verify_ledger`.

    ``keyring`` should be the auditor's own copy of the public keys; without it the bundle's is
    used, which proves only internal consistency. The bundle's ``last_sequence`` serves as
    ``expected_last_id``. Raises :class:`BundleError` if the file is damaged.
    """
    with Bundle(path) as bundle:
        return verify_ledger(
            bundle.events(),
            bundle.checkpoints,
            keyring or bundle.keyring,
            origin=bundle.origin,
            expected_last_id=bundle.last_sequence,
            witness_checkpoints=witness_checkpoints,
            reference_leaf_hashes=reference_leaf_hashes,
            total=total,
            progress=progress,
        )
