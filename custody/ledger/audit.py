"""Verification, export, inclusion proofs and the witness, online (NATS) and offline (bundle).

Plain functions returning plain values; the command line (``custodia bitacora``) renders them.
Offline functions never touch the network: they read a bundle written by :func:`export_bundle`.

Which key to trust
    Every function takes the auditor's own :class:`~events.checkpoint.PublicKeyring`
    (``--clave-publica``). Without it, the keyring the follower published on the ledger (or the
    one inside a bundle) is used, which proves only that the ledger agrees with itself; results
    say so (``independent_key``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from custody.ledger.errors import (
    EntryNotFoundError,
    KeyringFileError,
    LedgerDivergedError,
    NoCheckpointError,
    WitnessFileError,
)
from custody.ledger.names import LedgerNames
from events.checkpoint import (
    CheckpointError,
    MalformedCheckpointError,
    PublicKeyring,
    SignedCheckpoint,
)
from events.jetstream.connection import Connection
from events.leaves import (
    MalformedLeafError,
    RecordChecker,
    RecordProblem,
    entry_info,
    leaf_bytes,
    parse_leaf,
)
from events.ledger_verify import (
    Bundle,
    EventProof,
    ProgressCallback,
    VerificationReport,
    Witness,
    prove_event,
    verify_leaf_hashes,
    verify_ledger,
    write_bundle,
)
from events.merkle import HASH_SIZE, InvalidProofError, LedgerError, MerkleTree, leaf_hash

__all__ = [
    "EntryProof",
    "ExportResult",
    "LedgerVerdict",
    "ProofCheck",
    "WitnessResult",
    "check_proof",
    "export_bundle",
    "ledger_keyring",
    "load_keyring_file",
    "load_reference",
    "load_witness",
    "observe_bundle",
    "observe_online",
    "prove_entry",
    "reference_path",
    "verify_bundle_file",
    "verify_online",
]

if TYPE_CHECKING:
    from custody.ledger.anchor import AnchoredRecords, FollowerAlert

DEFAULT_KEY_NAME = "custodia-ledger"


# -- keys --------------------------------------------------------------------------------------


def load_keyring_file(path: Path) -> PublicKeyring:
    """A keyring from ``custodia bitacora clave-publica`` (``{"name", "keys"}``) or from
    transit's own answer to reading the key (``{"data": {"name", "keys": {...}}}``)."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise KeyringFileError(path, "missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyringFileError(path, f"unreadable: {type(exc).__name__}") from None
    except (ValueError, RecursionError):
        raise KeyringFileError(path, "not JSON") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc = {"name": doc["data"].get("name") or DEFAULT_KEY_NAME, "keys": doc["data"].get("keys")}
    if not isinstance(doc, dict):
        raise KeyringFileError(path, "not a keyring")
    try:
        keyring = PublicKeyring.from_json(doc)
    except MalformedCheckpointError as exc:
        raise KeyringFileError(path, exc.reason) from None
    if not keyring.versions:
        raise KeyringFileError(path, "no key in the file")
    return keyring


def ledger_keyring(conn: Connection, names: LedgerNames) -> PublicKeyring | None:
    """The union of every keyring the follower published (None if none was)."""
    from custody.ledger.nats_io import read_subject

    merged: PublicKeyring | None = None
    for _, data in read_subject(conn, names.checkpoints_stream, names.keyring_subject):
        try:
            doc = json.loads(data)
            keyring = PublicKeyring.from_json(doc if isinstance(doc, dict) else {})
        except (ValueError, MalformedCheckpointError):
            continue  # an unreadable keyring message: its checkpoints will not verify
        if merged is None or merged.name != keyring.name:
            merged = keyring
            continue
        for version in keyring.versions:
            try:
                merged = merged.with_version(version, keyring.raw_public_key(keyring.name, version))
            except ValueError:
                raise LedgerError(
                    f"the ledger publishes two different keys as version {version}"
                ) from None
    return merged


def _keyring_or_ledger(
    conn: Connection, names: LedgerNames, keyring: PublicKeyring | None
) -> tuple[PublicKeyring, bool]:
    if keyring is not None:
        return keyring, True
    published = ledger_keyring(conn, names)
    return published or PublicKeyring(DEFAULT_KEY_NAME, {}), False


# -- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerVerdict:
    """A verification's outcome: the Merkle report and the record-level findings."""

    report: VerificationReport
    record_problems: tuple[RecordProblem, ...]
    record_problems_omitted: int
    independent_key: bool
    witness_checkpoints: int = 0
    reference_entries: int = 0
    last_sequence: int | None = None
    anchored_checkpoints: int | None = None
    """How many checkpoints OpenBao holds (head and witnesses); None if they were not read."""
    anchored_size: int = 0
    """The size of the largest of them."""
    alerts: tuple[FollowerAlert, ...] = ()
    """Each time the follower refused to sign, as recorded in OpenBao."""

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.record_problems and not self.record_problems_omitted

    @property
    def entries(self) -> int:
        return self.report.events_checked

    @property
    def unsigned_entries(self) -> int:
        """Entries after the last checkpoint that verified (not yet signed, or not provable)."""
        signed = self.report.last_verified_checkpoint
        return self.report.events_checked - (signed.size if signed else 0)


def _hashed(
    batches: Iterable[list[tuple[int, bytes, bytes]]], checker: RecordChecker
) -> Iterator[tuple[list[int], list[bytes]]]:
    """Each batch's sequences and leaf hashes, checking its records on the way."""
    check = checker.check_batch
    for batch in batches:
        hashes = check(batch)
        yield [m[0] for m in batch], hashes


def verify_online(
    conn: Connection,
    names: LedgerNames,
    keyring: PublicKeyring | None = None,
    *,
    witness_checkpoints: Sequence[SignedCheckpoint] = (),
    reference_leaf_hashes: bytes | None = None,
    anchored: AnchoredRecords | None = None,
    progress: ProgressCallback | None = None,
) -> LedgerVerdict:
    """Read the whole events stream and every checkpoint, and verify them.

    ``anchored``: the head and witnesses kept in OpenBao (``custody.ledger.anchor.
    read_anchored``, read *before* calling this): the ledger must reproduce each of them, and
    be at least as long as the largest. Checkpoints are read first, then the stream's last
    sequence, then entries up to it: every checkpoint read covers entries that exist, and
    later appends do not disturb the result.
    """
    from custody.ledger.nats_io import read_entries, read_subject, stream_last_sequence

    notes = [data for _, data in read_subject(conn, names.checkpoints_stream, names.notes_subject)]
    keyring, independent = _keyring_or_ledger(conn, names, keyring)
    last_seq = stream_last_sequence(conn, names.events_stream)
    checker = RecordChecker()
    report = verify_leaf_hashes(
        _hashed(read_entries(conn, names.events_stream, stop=last_seq), checker),
        notes,
        keyring,
        origin=names.origin,
        expected_last_id=last_seq,
        witness_checkpoints=witness_checkpoints,
        reference_leaf_hashes=reference_leaf_hashes,
        total=last_seq,
        progress=progress,
        anchored_checkpoints=anchored.checkpoints if anchored else (),
    )
    return LedgerVerdict(
        report,
        tuple(checker.problems),
        checker.omitted,
        independent,
        len(witness_checkpoints),
        len(reference_leaf_hashes or b"") // HASH_SIZE,
        last_seq,
        len(anchored.checkpoints) if anchored else None,
        anchored.largest if anchored else 0,
        anchored.alerts if anchored else (),
    )


def _leaves_checked(
    events: Iterable[tuple[int, bytes]], checker: RecordChecker
) -> Iterator[tuple[int, bytes]]:
    check = checker.check_leaf
    for seq, leaf in events:
        check(seq, leaf)
        yield seq, leaf


def verify_bundle_file(
    path: Path,
    keyring: PublicKeyring | None = None,
    *,
    witness_checkpoints: Sequence[SignedCheckpoint] = (),
    reference_leaf_hashes: bytes | None = None,
    anchored: AnchoredRecords | None = None,
    progress: ProgressCallback | None = None,
) -> LedgerVerdict:
    """Verify a bundle fully offline; raises :class:`events.ledger_verify.BundleError`.
    ``anchored`` as for :func:`verify_online` (read from OpenBao, or None)."""
    with Bundle(path) as bundle:
        checker = RecordChecker()
        report = verify_ledger(
            _leaves_checked(bundle.events(), checker),
            bundle.checkpoints,
            keyring or bundle.keyring,
            origin=bundle.origin,
            expected_last_id=bundle.last_sequence,
            witness_checkpoints=witness_checkpoints,
            reference_leaf_hashes=reference_leaf_hashes,
            total=bundle.last_sequence,
            progress=progress,
            anchored_checkpoints=anchored.checkpoints if anchored else (),
        )
        return LedgerVerdict(
            report,
            tuple(checker.problems),
            checker.omitted,
            keyring is not None,
            len(witness_checkpoints),
            len(reference_leaf_hashes or b"") // HASH_SIZE,
            bundle.last_sequence,
            len(anchored.checkpoints) if anchored else None,
            anchored.largest if anchored else 0,
            anchored.alerts if anchored else (),
        )


# -- export --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    entries: int
    checkpoints: int
    last_sequence: int
    key_versions: tuple[int, ...]
    signed_to: int = 0  # the largest checkpoint's size: entries after it are not signed


def signed_checkpoints(
    conn: Connection, names: LedgerNames, last: int, wait: float
) -> tuple[list[bytes], int]:
    """The checkpoint notes, once one covers entry ``last`` (or after ``wait`` seconds: the
    service signs about a second after the last write), and the largest size they sign."""
    from custody.ledger.nats_io import read_subject

    deadline = time.monotonic() + wait
    while True:
        notes = [d for _, d in read_subject(conn, names.checkpoints_stream, names.notes_subject)]
        sizes = [0]
        for note in notes:
            with contextlib.suppress(CheckpointError):
                sizes.append(SignedCheckpoint.from_bytes(note).size)
        if max(sizes) >= last or time.monotonic() >= deadline:
            return notes, max(sizes)
        time.sleep(0.25)


def export_bundle(
    conn: Connection,
    names: LedgerNames,
    path: Path,
    keyring: PublicKeyring | None = None,
    *,
    progress: ProgressCallback | None = None,
    wait_signed: float = 10.0,
) -> ExportResult:
    """Write a bundle (:func:`events.ledger_verify.write_bundle`) of the whole ledger.

    A bundle is evidence only as far as a signed checkpoint covers it, and the service signs
    about a second after the last write: the export waits up to ``wait_signed`` seconds for a
    checkpoint covering the last entry (``signed_to`` in the result says how far it got)."""
    from custody.ledger.nats_io import read_entries, stream_last_sequence

    keyring, _ = _keyring_or_ledger(conn, names, keyring)
    last_seq = stream_last_sequence(conn, names.events_stream)
    notes, signed_to = signed_checkpoints(conn, names, last_seq, wait_signed)
    events = (
        (seq, leaf_bytes(subject, data))
        for batch in read_entries(conn, names.events_stream, stop=last_seq)
        for seq, subject, data in batch
    )
    count = write_bundle(
        path,
        origin=names.origin,
        keyring=keyring,
        checkpoints=notes,
        events=events,
        last_sequence=last_seq,
        progress=progress,
        total=last_seq,
    )
    return ExportResult(path, count, len(notes), last_seq, keyring.versions, signed_to)


# -- inclusion proofs ----------------------------------------------------------------------------

_PROOF_EXTRAS = ("evento", "notificacion", "asunto", "notificaciones")


@dataclass(frozen=True, slots=True)
class EntryProof:
    """An :class:`~events.ledger_verify.EventProof` of one entry, with what the entry holds.

    JSON: the ``custodia-event-proof`` document (its ``notification_id`` is the entry, i.e. the
    stream sequence; ``data`` the leaf bytes) plus, for people, ``evento`` (the entry),
    ``notificacion`` (the eventsourcing notification id asked for, or null), ``asunto`` and
    ``notificaciones`` ``[first, last]``. Those extras are never trusted: :func:`check_proof`
    re-derives them from the proven leaf.
    """

    proof: EventProof
    notification: int | None = None

    @property
    def sequence(self) -> int:
        return self.proof.notification_id

    def to_json(self) -> str:
        doc = json.loads(self.proof.to_json())
        subject, data = parse_leaf(self.proof.data)
        info = entry_info(self.sequence, subject, data)
        doc["evento"] = self.sequence
        doc["notificacion"] = self.notification
        doc["asunto"] = subject.decode(errors="replace")
        doc["notificaciones"] = (
            [info.first_id, info.first_id + info.count - 1] if info and info.count else None
        )
        return json.dumps(doc, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> EntryProof:
        proof = EventProof.from_json(text)  # InvalidProofError if malformed
        notification = json.loads(text).get("notificacion")
        if notification is not None and (not isinstance(notification, int) or notification < 1):
            raise InvalidProofError("malformed event proof: notificacion")
        return cls(proof, notification)


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """What a valid proof shows: entry ``sequence`` (``subject``, notification ids
    ``first_id`` .. ``first_id + count - 1``) is in the tree ``checkpoint`` signs."""

    sequence: int
    subject: str
    first_id: int | None
    count: int
    notification: int | None
    checkpoint: SignedCheckpoint
    independent_key: bool


def prove_entry(
    conn: Connection,
    names: LedgerNames,
    keyring: PublicKeyring | None = None,
    *,
    sequence: int | None = None,
    notification: int | None = None,
    progress: ProgressCallback | None = None,
) -> EntryProof:
    """An inclusion proof of one entry (by stream sequence, or the entry holding a notification
    id) against the latest checkpoint, recomputing the tree from the stream."""
    from custody.ledger.nats_io import last_note, read_entries

    if (sequence is None) == (notification is None):
        raise ValueError("give exactly one of sequence and notification")
    stored = last_note(conn, names.checkpoints_stream, names.notes_subject)
    if stored is None:
        raise NoCheckpointError("the ledger has no checkpoint yet")
    signed = SignedCheckpoint.from_bytes(stored.data)
    keyring, _ = _keyring_or_ledger(conn, names, keyring)
    signed.verify(keyring, origin=names.origin)
    if sequence is not None and sequence > signed.size:
        raise EntryNotFoundError("entry", sequence, signed.size)
    tree = MerkleTree()
    found: tuple[int, bytes] | None = None
    for batch in read_entries(conn, names.events_stream, stop=signed.size):
        hashes: list[bytes] = []
        for seq, subject, data in batch:
            if seq != tree.size + len(hashes) + 1:
                missing = tree.size + len(hashes) + 1
                raise LedgerDivergedError(f"entry {missing} is missing", missing)
            leaf = leaf_bytes(subject, data)
            hashes.append(leaf_hash(leaf))
            if found is None and _matches(seq, subject, data, sequence, notification):
                found = (seq, leaf)
        tree.extend(hashes)
        if progress is not None:
            progress(tree.size, signed.size)
    if found is None:
        if sequence is not None:
            raise EntryNotFoundError("entry", sequence, signed.size)
        assert notification is not None
        raise EntryNotFoundError("notification", notification, signed.size)
    try:
        return EntryProof(prove_event(tree, found[0], found[1], signed), notification)
    except InvalidProofError:
        raise LedgerDivergedError(
            f"entries 1..{signed.size} do not give the latest checkpoint's root"
        ) from None


def _matches(
    seq: int, subject: bytes, data: bytes, sequence: int | None, notification: int | None
) -> bool:
    if sequence is not None:
        return seq == sequence
    info = entry_info(seq, subject, data)
    return (
        info is not None
        and notification is not None
        and not info.tracking
        and info.first_id <= notification < info.first_id + info.count
    )


def check_proof(text: str, keyring: PublicKeyring, origin: str | None = None) -> ProofCheck:
    """Verify a proof document offline; raises :class:`InvalidProofError` or a
    :class:`events.checkpoint.CheckpointError` (bad signature, unknown key...)."""
    proof = EntryProof.from_json(text)
    proof.proof.verify(keyring, origin=origin)
    try:
        subject, data = parse_leaf(proof.proof.data)
    except MalformedLeafError as exc:
        raise InvalidProofError(f"the proven data is not a ledger entry: {exc.reason}") from None
    info = entry_info(proof.sequence, subject, data)
    if proof.notification is not None and not _matches(
        proof.sequence, subject, data, None, proof.notification
    ):
        raise InvalidProofError(
            f"entry {proof.sequence} does not hold notification {proof.notification}"
        )
    return ProofCheck(
        proof.sequence,
        subject.decode(errors="replace"),
        info.first_id if info else None,
        info.count if info else 0,
        proof.notification,
        proof.proof.checkpoint,
        True,
    )


# -- witness -------------------------------------------------------------------------------------


def reference_path(witness_path: Path) -> Path:
    """Where a witness keeps its copy of the leaf hashes (``<file>.hojas``)."""
    return witness_path.with_name(witness_path.name + ".hojas")


def load_witness(path: Path, keyring: PublicKeyring, origin: str) -> Witness:
    """The witness file (created on first save); raises :class:`WitnessFileError`."""
    try:
        return Witness(path, keyring, origin)
    except LedgerError as exc:
        reason = str(exc).removeprefix(f"witness file {path}: ")
        raise WitnessFileError(path, reason) from None
    except OSError as exc:
        raise WitnessFileError(path, f"unreadable: {type(exc).__name__}") from None


def load_reference(path: Path) -> bytes | None:
    """Packed leaf hashes kept next to a witness file, if any (a partial hash is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WitnessFileError(path, f"unreadable: {type(exc).__name__}") from None
    return data[: len(data) - len(data) % HASH_SIZE]


@dataclass(frozen=True, slots=True)
class WitnessResult:
    """The witness accepted ``checkpoint`` (``added`` False if it already held it)."""

    checkpoint: SignedCheckpoint
    added: bool
    stored: tuple[SignedCheckpoint, ...]
    independent_key: bool
    reference: Path = field(default_factory=Path)


def _observe(
    witness_path: Path,
    keyring: PublicKeyring,
    independent: bool,
    origin: str,
    latest: SignedCheckpoint,
    entries: Iterable[tuple[int, bytes]],
    progress: ProgressCallback | None,
) -> WitnessResult:
    latest.verify(keyring, origin=origin)
    witness = load_witness(witness_path, keyring, origin)
    tree = MerkleTree()
    for seq, leaf in entries:
        if seq > latest.size:
            break
        if seq != tree.size + 1:
            raise LedgerDivergedError(f"entry {tree.size + 1} is missing", tree.size + 1)
        tree.append(leaf_hash(leaf))
        if progress is not None and not seq % 65536:
            progress(seq, latest.size)
    if tree.size < latest.size or tree.root(latest.size) != latest.root:
        raise LedgerDivergedError(
            f"the entries do not give the root of the latest checkpoint (size {latest.size})"
        )
    added = witness.observe(latest, tree)  # WitnessConflictError: a rewritten past
    reference = reference_path(witness_path)
    _atomic_write(reference, tree.leaf_hashes())
    if progress is not None:
        progress(tree.size, latest.size)
    return WitnessResult(latest, added, witness.checkpoints, independent, reference)


def observe_online(
    conn: Connection,
    witness_path: Path,
    names: LedgerNames,
    keyring: PublicKeyring | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> WitnessResult:
    """Record the ledger's latest checkpoint in the witness file, after checking that it is
    consistent with every checkpoint stored there (proofs from the recomputed tree)."""
    from custody.ledger.nats_io import last_note, read_entries

    stored = last_note(conn, names.checkpoints_stream, names.notes_subject)
    if stored is None:
        raise NoCheckpointError("the ledger has no checkpoint yet")
    latest = SignedCheckpoint.from_bytes(stored.data)
    keyring, independent = _keyring_or_ledger(conn, names, keyring)
    entries = (
        (seq, leaf_bytes(subject, data))
        for batch in read_entries(conn, names.events_stream, stop=latest.size)
        for seq, subject, data in batch
    )
    return _observe(witness_path, keyring, independent, names.origin, latest, entries, progress)


def observe_bundle(
    bundle_path: Path,
    witness_path: Path,
    keyring: PublicKeyring | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> WitnessResult:
    """:func:`observe_online` from a bundle: its last stored checkpoint that parses."""
    with Bundle(bundle_path) as bundle:
        latest: SignedCheckpoint | None = None
        for note in reversed(bundle.checkpoints):
            try:
                latest = SignedCheckpoint.from_bytes(note)
                break
            except CheckpointError:
                continue
        if latest is None:
            raise NoCheckpointError("the bundle has no checkpoint")
        return _observe(
            witness_path,
            keyring or bundle.keyring,
            keyring is not None,
            bundle.origin,
            latest,
            bundle.events(),
            progress,
        )


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
