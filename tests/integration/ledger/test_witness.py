"""The witness (Secretaría Ejecutiva) catches what the ledger alone cannot: a past rewritten and
re-signed, or cut short with its checkpoints, after the witness saw it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.bitacora_messages import first_bad, problem_items
from custody.ledger import audit
from custody.ledger.audit import LedgerVerdict
from events.ledger_verify import WitnessConflictError
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def with_witness(world: LedgerWorld, path: Path, bundle: Path | None = None) -> LedgerVerdict:
    witness = audit.load_witness(path, world.keyring, world.names.origin)
    reference = audit.load_reference(audit.reference_path(path))
    if bundle is None:
        return world.verify(
            witness_checkpoints=witness.checkpoints, reference_leaf_hashes=reference
        )
    return world.verify_offline(
        bundle, witness_checkpoints=witness.checkpoints, reference_leaf_hashes=reference
    )


def observe(world: LedgerWorld, path: Path) -> audit.WitnessResult:
    return audit.observe_online(world.conn, path, world.names, world.keyring)


def drop_notes(world: LedgerWorld, keep: int) -> None:
    """Recreate the checkpoint stream with only the first ``keep`` checkpoints (and the keys)."""
    messages = insider.dump(world.url, world.names.checkpoints_stream)
    notes = [m for m in messages if m.subject == world.names.notes_subject]
    gone = {id(m) for m in notes[keep:]}
    insider.rewrite(
        world.url, world.names.checkpoints_stream, [m for m in messages if id(m) not in gone]
    )


def test_witness_records_a_growing_ledger(world: LedgerWorld, tmp_path: Path) -> None:
    """Each observation is checked against the ones before and stored with a copy of the leaf
    hashes; the ledger then verifies against the witness's checkpoints too."""
    path = tmp_path / "testigo.json"
    world.build(30)
    first = observe(world, path)
    assert first.added
    world.write(15)
    world.follower().checkpoint_now()
    second = observe(world, path)
    assert second.added
    assert [s.size for s in second.stored] == [30, 45]
    assert len(audit.load_reference(audit.reference_path(path)) or b"") == 45 * 32
    assert not observe(world, path).added  # same checkpoint again: nothing new
    verdict = with_witness(world, path)
    assert verdict.ok, problem_items(verdict)
    assert verdict.witness_checkpoints == 2


def test_witness_detects_a_rewritten_and_resigned_past(world: LedgerWorld, tmp_path: Path) -> None:
    """The insider rewrites entry 23, deletes every checkpoint and lets a restarted follower sign
    the new history with the genuine key. The ledger alone then verifies clean; with the
    witness file, entry 23 is named (online and offline) and the witness refuses the new
    checkpoint."""
    path = tmp_path / "testigo.json"
    world.build()
    observe(world, path)
    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    drop_notes(world, keep=0)
    # A follower without the anchor in OpenBao, as before issue 16, re-signs the forgery
    # (today's refuses: test_anchor.py); the witness file still catches it.
    world.follower(anchored=False).checkpoint_now()

    assert world.verify().ok  # self-consistent: only an outside memory can tell
    bundle = world.export(tmp_path / "reescrita.jsonl.gz")
    for where, verdict in (
        ("online", with_witness(world, path)),
        ("offline", with_witness(world, path, bundle)),
    ):
        assert not verdict.ok, where
        items = problem_items(verdict)
        assert first_bad(items)[0] == 23, (where, items)
        assert {i["fuente"] for i in items} == {"testigo"}, where
    with pytest.raises(WitnessConflictError):
        observe(world, path)


def test_witness_detects_a_cut_tail_with_its_checkpoints(
    world: LedgerWorld, tmp_path: Path
) -> None:
    """Entries 41..50 removed by recreating the stream, and checkpoint #5 (size 50) with them:
    the ledger alone verifies, the witness's checkpoint names entry 41 as missing."""
    path = tmp_path / "testigo.json"
    world.build()
    observe(world, path)
    insider.rewrite(world.url, world.names.events_stream, world.entries()[:40])
    drop_notes(world, keep=4)

    assert world.verify().ok
    verdict = with_witness(world, path)
    assert not verdict.ok
    found = {(i["tipo"], i["evento"], i["fuente"]) for i in problem_items(verdict)}
    assert ("truncada", 41, "testigo") in found
    with pytest.raises(WitnessConflictError):
        observe(world, path)
