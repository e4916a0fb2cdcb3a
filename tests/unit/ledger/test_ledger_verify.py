"""The ledger verifier names the first bad event or checkpoint for each way an insider tampers."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.checkpoint import (
    Checkpoint,
    Ed25519Signer,
    PublicKeyring,
    SignedCheckpoint,
)
from events.ledger_verify import (
    Bundle,
    BundleError,
    EventProof,
    ProblemKind,
    VerificationReport,
    Witness,
    WitnessConflictError,
    leaf_hashes,
    prove_event,
    verify_bundle,
    verify_ledger,
    write_bundle,
)
from events.merkle import InvalidProofError, MerkleTree

ORIGIN = "custodia.iecm.mx/bitacora"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
N = 1000
EVERY = 100

Events = list[tuple[int, bytes]]


def event(i: int) -> bytes:
    return json.dumps({"topic": "CuentaCreada", "seq": i, "cuenta": f"dd{i % 33:02d}"}).encode()


def honest_events(n: int = N) -> Events:
    return [(i, event(i)) for i in range(1, n + 1)]


def sign_log(
    signer: Ed25519Signer, events: Events, every: int = EVERY, rotate_at: int | None = None
) -> list[SignedCheckpoint]:
    """What the follower does: a checkpoint every ``every`` events, optionally rotating once."""
    tree = MerkleTree()
    checkpoints = []
    for position, (_, data) in enumerate(events, 1):
        tree.append_data(data)
        if position % every == 0:
            if position == rotate_at:
                signer.rotate()
            when = T0 + timedelta(minutes=position)
            checkpoints.append(
                signer.sign_checkpoint(Checkpoint(ORIGIN, position, tree.root(), when))
            )
    return checkpoints


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer("bitacora")


@pytest.fixture
def log(signer: Ed25519Signer) -> tuple[Events, list[SignedCheckpoint], PublicKeyring]:
    events = honest_events()
    return events, sign_log(signer, events), signer.public_keyring()


Log = tuple[Events, list[SignedCheckpoint], PublicKeyring]


def only_problem(report: VerificationReport) -> ProblemKind:
    assert not report.ok
    assert report.problem is not None
    return report.problem.kind


def test_untouched_ledger_verifies_clean(log: Log) -> None:
    """An honest log with its checkpoints: ok, every event and checkpoint counted, no problem."""
    events, checkpoints, keyring = log
    report = verify_ledger(events, checkpoints, keyring, origin=ORIGIN, expected_last_id=N)
    assert report.ok
    assert report.problems == ()
    assert (report.events_checked, report.checkpoints_checked) == (N, 10)
    assert report.checkpoints_verified == 10
    assert report.last_verified_checkpoint == checkpoints[-1]
    assert report.root == checkpoints[-1].root
    assert report.last_notification_id == N


def test_events_after_the_last_checkpoint_are_fine(signer: Ed25519Signer) -> None:
    """Events not yet covered by a checkpoint do not make the log fail."""
    events = honest_events(1050)
    report = verify_ledger(events, sign_log(signer, events[:1000]), signer.public_keyring())
    assert report.ok
    assert report.events_checked == 1050


def test_deleted_event_is_a_gap_naming_its_id(log: Log) -> None:
    """Deleting message 437 leaves a hole in the stream sequences: GAP at id 437, found first."""
    events, checkpoints, keyring = log
    report = verify_ledger(events[:436] + events[437:], checkpoints, keyring)
    assert only_problem(report) is ProblemKind.GAP
    assert report.problem is not None
    assert report.problem.notification_id == 437
    assert (report.problem.first_id, report.problem.last_id) == (437, 437)
    assert report.problem.tree_index == 436


def test_purged_and_republished_stream_is_a_gap_from_id_1(log: Log) -> None:
    """A purge keeps the sequence counter, so a republished stream starts after N: ids 1..N gone."""
    events, checkpoints, keyring = log
    republished = [(N + i, data) for i, data in events]
    report = verify_ledger(republished, checkpoints, keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.GAP
    assert (report.problem.first_id, report.problem.last_id) == (1, N)


def test_altered_event_names_the_checkpoint_interval(log: Log) -> None:
    """Changing event 437's bytes fails checkpoint #4 (size 500); the fault lies in ids 401..500."""
    events, checkpoints, keyring = log
    tampered = list(events)
    tampered[436] = (437, event(437).replace(b"dd", b"DD"))
    report = verify_ledger(tampered, checkpoints, keyring)
    assert only_problem(report) is ProblemKind.ROOT_MISMATCH
    problem = report.problem
    assert problem is not None
    assert (problem.checkpoint_index, problem.checkpoint_size) == (4, 500)
    assert (problem.first_id, problem.last_id, problem.last_good_size) == (401, 500, 400)
    assert problem.notification_id is None
    assert problem.expected_root == checkpoints[4].root
    assert len(report.problems) == 1, "later mismatches follow from the first"


def test_altered_event_is_named_exactly_with_reference_hashes(log: Log) -> None:
    """With the leaf hashes of an earlier good export, the altered event 437 itself is named."""
    events, checkpoints, keyring = log
    reference = leaf_hashes(events)
    tampered = list(events)
    tampered[436] = (437, b"forged")
    report = verify_ledger(tampered, checkpoints, keyring, reference_leaf_hashes=reference)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.ROOT_MISMATCH
    assert (report.problem.notification_id, report.problem.tree_index) == (437, 436)


def test_unauthenticated_reference_hashes_are_not_believed(log: Log) -> None:
    """Reference hashes no signed checkpoint vouches for do not narrow the verdict."""
    events, checkpoints, keyring = log
    fake_reference = leaf_hashes([(i, b"x") for i, _ in events])
    tampered = list(events)
    tampered[436] = (437, b"forged")
    report = verify_ledger(tampered, checkpoints, keyring, reference_leaf_hashes=fake_reference)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.ROOT_MISMATCH
    assert report.problem.notification_id is None


def test_reordered_pair_names_the_first_of_the_pair(log: Log) -> None:
    """Swapping the contents of events 437 and 652 (ids kept) fails at the interval of 437."""
    events, checkpoints, keyring = log
    swapped = list(events)
    swapped[436], swapped[651] = (437, events[651][1]), (652, events[436][1])
    report = verify_ledger(swapped, checkpoints, keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.ROOT_MISMATCH
    assert (report.problem.first_id, report.problem.last_id) == (401, 500)
    exact = verify_ledger(swapped, checkpoints, keyring, reference_leaf_hashes=leaf_hashes(events))
    assert exact.problem is not None
    assert exact.problem.notification_id == 437


def test_reordered_ids_are_out_of_order(log: Log) -> None:
    """Messages read back with sequences 437 and 438 swapped: OUT_OF_ORDER at id 437."""
    events, checkpoints, keyring = log
    swapped = list(events)
    swapped[436], swapped[437] = events[437], events[436]
    report = verify_ledger(swapped, checkpoints, keyring)
    kinds = [p.kind for p in report.problems]
    assert kinds[0] is ProblemKind.GAP
    assert report.problems[0].notification_id == 437
    assert ProblemKind.OUT_OF_ORDER in kinds
    assert ProblemKind.ROOT_MISMATCH in kinds


def test_truncated_tail_names_the_first_missing_id(log: Log) -> None:
    """A log cut after 950 events against a checkpoint of 1000: TRUNCATED at id 951."""
    events, checkpoints, keyring = log
    report = verify_ledger(events[:950], checkpoints, keyring)
    assert only_problem(report) is ProblemKind.TRUNCATED
    problem = report.problem
    assert problem is not None
    assert (problem.notification_id, problem.checkpoint_index, problem.checkpoint_size) == (
        951,
        9,
        1000,
    )
    assert problem.last_good_size == 900
    assert report.checkpoints_verified == 9


def test_deleted_tail_beyond_the_last_checkpoint_needs_the_store_high_water_mark(
    log: Log,
) -> None:
    """Deleting events 1001..1010 that no checkpoint covers yet is caught by expected_last_id."""
    events, checkpoints, keyring = log
    report = verify_ledger(events, checkpoints, keyring, expected_last_id=N + 10)
    assert only_problem(report) is ProblemKind.MISSING_EVENT
    assert report.problem is not None
    assert (report.problem.first_id, report.problem.last_id) == (N + 1, N + 10)


def test_forged_inserted_event_is_detected_at_its_interval(log: Log) -> None:
    """A forged event inserted before 437 in a rebuilt stream fails at ids 401..500; exact with
    reference hashes."""
    events, checkpoints, keyring = log
    datas = [d for _, d in events]
    datas.insert(436, event(9999))
    rebuilt = list(enumerate(datas, 1))
    report = verify_ledger(rebuilt, checkpoints, keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.ROOT_MISMATCH
    assert (report.problem.first_id, report.problem.last_id) == (401, 500)
    exact = verify_ledger(rebuilt, checkpoints, keyring, reference_leaf_hashes=leaf_hashes(events))
    assert exact.problem is not None
    assert exact.problem.notification_id == 437


def test_checkpoint_with_broken_signature_is_named(log: Log) -> None:
    """A checkpoint replaced by one signed with another key: BAD_SIGNATURE at its index."""
    events, checkpoints, keyring = log
    impostor = Ed25519Signer("bitacora")
    replaced = list(checkpoints)
    replaced[3] = impostor.sign_checkpoint(checkpoints[3].checkpoint)
    report = verify_ledger(events, replaced, keyring)
    assert only_problem(report) is ProblemKind.BAD_SIGNATURE
    assert report.problem is not None
    assert (report.problem.checkpoint_index, report.problem.checkpoint_size) == (3, 400)


def test_malformed_checkpoint_bytes_are_named(log: Log) -> None:
    """Garbage stored in place of checkpoint #2 is reported as MALFORMED_CHECKPOINT #2."""
    events, checkpoints, keyring = log
    stored = [c.to_bytes() for c in checkpoints]
    stored[2] = stored[2].replace(b"timestamp", b"tiempo")
    report = verify_ledger(events, stored, keyring)
    assert only_problem(report) is ProblemKind.MALFORMED_CHECKPOINT
    assert report.problem is not None
    assert report.problem.checkpoint_index == 2


def test_replaced_checkpoint_from_a_fork_is_inconsistent(log: Log, signer: Ed25519Signer) -> None:
    """A validly signed checkpoint of a forked log in place of #4 contradicts #5, which matches."""
    events, checkpoints, keyring = log
    forked = list(events[:500])
    forked[450] = (451, b"fork")
    fork_cp = sign_log(signer, forked)[4]
    replaced = list(checkpoints)
    replaced[4] = fork_cp
    report = verify_ledger(events, replaced, keyring)
    assert only_problem(report) is ProblemKind.INCONSISTENT_CHECKPOINTS
    problem = report.problem
    assert problem is not None
    assert (problem.checkpoint_index, problem.other_checkpoint_index) == (4, 5)
    assert len(report.problems) == 1


def test_replayed_older_checkpoint_is_inconsistent(log: Log) -> None:
    """A copy of checkpoint #2 stored in place of #6 goes back in size and time."""
    events, checkpoints, keyring = log
    replaced = list(checkpoints)
    replaced[6] = checkpoints[2]
    report = verify_ledger(events, replaced, keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.INCONSISTENT_CHECKPOINTS
    assert (report.problem.checkpoint_index, report.problem.other_checkpoint_index) == (6, 5)


def test_key_rotation_keeps_the_whole_ledger_valid(signer: Ed25519Signer) -> None:
    """Checkpoints before and after a rotation (v1 then v2) all verify with the keyring."""
    events = honest_events()
    checkpoints = sign_log(signer, events, rotate_at=500)
    assert {c.key_version for c in checkpoints} == {1, 2}
    assert verify_ledger(events, checkpoints, signer.public_keyring()).ok


def test_unknown_key_version_is_named(signer: Ed25519Signer) -> None:
    """A keyring that predates the rotation reports UNKNOWN_KEY at the first v2 checkpoint."""
    stale = signer.public_keyring()
    events = honest_events()
    checkpoints = sign_log(signer, events, rotate_at=500)
    report = verify_ledger(events, checkpoints, stale)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.UNKNOWN_KEY
    assert report.problem.checkpoint_index == 4


def test_checkpoint_of_another_log_is_wrong_origin(log: Log, signer: Ed25519Signer) -> None:
    """A checkpoint for another origin among ours is WRONG_ORIGIN."""
    events, checkpoints, keyring = log
    alien = signer.sign_checkpoint(Checkpoint("otra", 300, checkpoints[2].root, T0))
    report = verify_ledger(events, [*checkpoints[:2], alien, *checkpoints[3:]], keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.WRONG_ORIGIN
    assert report.problem.checkpoint_index == 2


def test_rewritten_past_resigned_is_caught_by_witness_checkpoints(
    log: Log, signer: Ed25519Signer
) -> None:
    """An insider rewrites event 437 and re-signs every checkpoint: the ledger alone looks clean,
    but a checkpoint the witness kept contradicts it."""
    events, checkpoints, keyring = log
    rewritten = list(events)
    rewritten[436] = (437, b"rewritten")
    resigned = sign_log(signer, rewritten)
    assert verify_ledger(rewritten, resigned, keyring).ok
    seen = [checkpoints[2], checkpoints[4]]
    report = verify_ledger(rewritten, resigned, keyring, witness_checkpoints=seen)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.INCONSISTENT_CHECKPOINTS
    assert report.problem.checkpoint_source == "witness"
    assert (report.problem.checkpoint_index, report.problem.checkpoint_size) == (1, 500)
    assert (report.problem.first_id, report.problem.last_id) == (301, 500)
    assert len(report.problems) == 1


def test_rewritten_past_interval_is_bounded_by_the_witness_own_checkpoints(
    log: Log, signer: Ed25519Signer
) -> None:
    """Re-signed ledger checkpoints that match the rewritten log do not narrow the interval: the
    witness kept only size 500, so a rewrite of event 137 is placed in ids 1..500."""
    events, checkpoints, keyring = log
    rewritten = list(events)
    rewritten[136] = (137, b"rewritten")
    resigned = sign_log(signer, rewritten)
    report = verify_ledger(rewritten, resigned, keyring, witness_checkpoints=[checkpoints[4]])
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.INCONSISTENT_CHECKPOINTS
    assert (report.problem.first_id, report.problem.last_id) == (1, 500)


def test_witness_accepts_a_growing_log_and_detects_a_rewritten_past(
    tmp_path: Path, log: Log, signer: Ed25519Signer
) -> None:
    """The witness stores consistent checkpoints in its file and refuses a rewritten log's."""
    events, checkpoints, keyring = log
    tree = MerkleTree()
    tree.extend_data(d for _, d in events)
    path = tmp_path / "testigo.json"
    witness = Witness(path, keyring, ORIGIN)
    for cp in (checkpoints[2], checkpoints[6]):
        assert witness.observe(cp, tree)
    assert not witness.observe(checkpoints[6], tree)
    witness.check(checkpoints[4], tree)  # an older size between the stored ones is fine

    reopened = Witness(path, keyring, ORIGIN)
    assert reopened.checkpoints == (checkpoints[2], checkpoints[6])

    rewritten = list(events)
    rewritten[136] = (137, b"rewritten")
    evil_tree = MerkleTree()
    evil_tree.extend_data(d for _, d in rewritten)
    evil_cp = sign_log(signer, rewritten)[9]
    with pytest.raises(WitnessConflictError) as info:
        reopened.observe(evil_cp, evil_tree)
    assert info.value.seen == checkpoints[2]
    assert reopened.checkpoints == (checkpoints[2], checkpoints[6])


def test_witness_refuses_a_log_shorter_than_what_it_saw(tmp_path: Path, log: Log) -> None:
    """A log truncated below a checkpoint the witness stored cannot prove consistency."""
    events, checkpoints, keyring = log
    tree = MerkleTree()
    tree.extend_data(d for _, d in events)
    witness = Witness(tmp_path / "w.json", keyring, ORIGIN)
    witness.observe(checkpoints[8], tree)
    short = MerkleTree()
    short.extend_data(d for _, d in events[:500])
    with pytest.raises(WitnessConflictError, match="fewer"):
        witness.observe(checkpoints[4], short)


def test_progress_is_reported_up_to_the_total(log: Log) -> None:
    """The progress hook sees increasing counts ending at (total, total)."""
    keyring = log[2]
    seen: list[tuple[int, int | None]] = []
    events = honest_events(5 * N)
    report = verify_ledger(
        events, [], keyring, total=5 * N, progress=lambda d, t: seen.append((d, t))
    )
    assert report.ok
    assert seen[-1] == (5 * N, 5 * N)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_problem_list_is_capped(signer: Ed25519Signer) -> None:
    """Many gaps give at most max_problems entries and count the rest."""
    events = [(i, b"e") for i in range(1, 400, 2)]
    report = verify_ledger(events, [], signer.public_keyring(), max_problems=10)
    assert len(report.problems) == 10
    assert report.problems_omitted == 189
    assert not report.ok


def test_event_proof_round_trips_and_verifies_offline(log: Log) -> None:
    """An inclusion proof of event 437 against checkpoint #6 verifies from its JSON alone, and
    fails for altered bytes or another keyring."""
    events, checkpoints, keyring = log
    tree = MerkleTree()
    tree.extend_data(d for _, d in events)
    proof = prove_event(tree, 437, events[436][1], checkpoints[6])
    loaded = EventProof.from_json(proof.to_json())
    assert loaded == proof
    loaded.verify(keyring, origin=ORIGIN)
    forged = EventProof(437, b"forged", proof.path, proof.checkpoint)
    with pytest.raises(InvalidProofError):
        forged.verify(keyring)
    with pytest.raises(InvalidProofError):
        prove_event(tree, 437, b"forged", checkpoints[6])
    with pytest.raises(InvalidProofError):
        prove_event(tree, 800, events[799][1], checkpoints[6])


def write(path: Path, log: Log, events: Events | None = None) -> Path:
    all_events, checkpoints, keyring = log
    write_bundle(
        path,
        origin=ORIGIN,
        keyring=keyring,
        checkpoints=checkpoints,
        events=all_events if events is None else events,
        last_sequence=N,
    )
    return path


def test_bundle_round_trips_and_verifies_offline(tmp_path: Path, log: Log) -> None:
    """A bundle holds the exact event bytes, checkpoints and keyring, and verifies clean."""
    events, checkpoints, keyring = log
    path = write(tmp_path / "bitacora.jsonl.gz", log)
    with Bundle(path) as bundle:
        assert bundle.origin == ORIGIN
        assert bundle.keyring == keyring
        assert bundle.checkpoints == tuple(c.to_bytes() for c in checkpoints)
        assert list(bundle.events()) == events
    report = verify_bundle(path, keyring)
    assert report.ok
    assert report.events_checked == N


def test_tampered_bundle_is_detected(tmp_path: Path, log: Log) -> None:
    """Altering an event inside a bundle is a root mismatch in offline verification."""
    events = list(log[0])
    events[436] = (437, b"forged")
    report = verify_bundle(write(tmp_path / "b.jsonl.gz", log, events), log[2])
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.ROOT_MISMATCH
    assert report.problem.checkpoint_size == 500


def test_bundle_with_a_dropped_tail_event_reports_missing_event(tmp_path: Path, log: Log) -> None:
    """A bundle whose header says last sequence N but holds N-1 events: MISSING_EVENT at N."""
    report = verify_bundle(write(tmp_path / "b.jsonl.gz", log, log[0][:-1]), log[2])
    kinds = [p.kind for p in report.problems]
    assert ProblemKind.MISSING_EVENT in kinds
    assert ProblemKind.TRUNCATED in kinds


def test_damaged_bundle_raises(tmp_path: Path, log: Log) -> None:
    """A cut gzip file or one without its end record is a BundleError, not a verdict."""
    path = write(tmp_path / "b.jsonl.gz", log)
    raw = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BundleError):
        verify_bundle(cut, log[2])
    lines = gzip.decompress(raw).splitlines(keepends=True)
    no_end = tmp_path / "no_end.jsonl.gz"
    no_end.write_bytes(gzip.compress(b"".join(lines[:-1])))
    with pytest.raises(BundleError, match="end record"):
        verify_bundle(no_end, log[2])
    not_bundle = tmp_path / "x.gz"
    not_bundle.write_bytes(gzip.compress(b'{"type": "header", "format": "zip"}\n'))
    with pytest.raises(BundleError, match="not a custodia"):
        Bundle(not_bundle)


def test_a_bomb_or_a_deeply_nested_line_is_a_bundle_error(tmp_path: Path, log: Log) -> None:
    """Attack on the auditor's machine: a small gzip file inflating to one huge line, or a
    line of JSON nested a hundred thousand deep. Each is refused as a damaged bundle (a line
    is never read past MAX_BUNDLE_LINE; no RecursionError traceback), never a memory blow-up."""
    from events.ledger_verify import MAX_BUNDLE_LINE

    lines = gzip.decompress(write(tmp_path / "b.jsonl.gz", log).read_bytes()).splitlines(True)
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as out:
        out.write(lines[0])  # the header
        chunk = b" " * 2**20
        for _ in range(MAX_BUNDLE_LINE // len(chunk) + 2):
            out.write(chunk)
        out.write(b"\n")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(BundleError, match="longer than"):
        verify_bundle(bomb, log[2])
    nested = tmp_path / "nested.jsonl.gz"
    nested.write_bytes(gzip.compress(lines[0] + b"[" * 100_000 + b"\n"))
    with pytest.raises(BundleError, match="nests too deeply"):
        verify_bundle(nested, log[2])
    proof = tmp_path / "prueba.json"
    proof.write_text("[" * 100_000)
    with pytest.raises(InvalidProofError, match="nested too deeply"):
        EventProof.from_json(proof.read_text())


def test_bundle_keyring_is_only_used_when_none_is_given(
    tmp_path: Path, log: Log, signer: Ed25519Signer
) -> None:
    """A bundle re-signed by an impostor verifies with its own keyring but not with the real one."""
    events, _, real_keyring = log
    impostor = Ed25519Signer("bitacora")
    fake = (events, sign_log(impostor, events), impostor.public_keyring())
    path = write(tmp_path / "fake.jsonl.gz", fake)
    assert verify_bundle(path).ok
    report = verify_bundle(path, real_keyring)
    assert report.problem is not None
    assert report.problem.kind is ProblemKind.BAD_SIGNATURE


def test_a_log_shorter_than_its_reference_is_flagged(log: Log) -> None:
    """The last 50 events removed together with every checkpoint that covered them, and the
    store's own last id lowered (the stream re-created): only a reference copy of 1000 events
    can tell; the verdict says the log lost its events from id 951 on."""
    events, checkpoints, keyring = log
    reference = leaf_hashes(events)
    cut = events[:950]
    assert verify_ledger(cut, checkpoints[:9], keyring, expected_last_id=950).ok
    report = verify_ledger(
        cut, checkpoints[:9], keyring, expected_last_id=950, reference_leaf_hashes=reference
    )
    assert only_problem(report) == ProblemKind.SHORTER_THAN_REFERENCE
    assert report.problem is not None
    assert (report.problem.first_id, report.problem.last_id) == (951, N)


def test_anchored_checkpoints_are_a_source_of_their_own(log: Log) -> None:
    """Checkpoints kept outside the log (the anchored head and witnesses in OpenBao) are checked
    like a witness's: a log re-signed after an event was changed contradicts them, and one
    shorter than the largest of them is truncated; their problems name the source «anchor»."""
    events, checkpoints, keyring = log
    assert verify_ledger(events, checkpoints, keyring, anchored_checkpoints=checkpoints).ok
    report = verify_ledger(events[:900], [], keyring, anchored_checkpoints=checkpoints)
    assert only_problem(report) == ProblemKind.TRUNCATED
    assert report.problem is not None
    assert report.problem.checkpoint_source == "anchor"
