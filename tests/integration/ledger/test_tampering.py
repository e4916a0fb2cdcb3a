"""Every way an insider can tamper with the ledger, bypassing Custodia, is detected online and
in an exported bundle, and the verdict names the first bad entry and checkpoint.

The ledger: 50 entries written by a real eventsourcing application on ``events.jetstream``, a
checkpoint signed by OpenBao transit every 10 entries (checkpoints #1..#5). The insider works
with plain nats-py on streams whose configuration lets an administrator delete and purge.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cli.bitacora_messages import first_bad, problem_items
from custody.ledger.audit import LedgerVerdict
from events.checkpoint import Checkpoint, SignedCheckpoint
from events.jetstream import records
from events.ledger_verify import Bundle
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def online_and_offline(
    world: LedgerWorld, tmp_path: Path, **kwargs: Any
) -> list[tuple[str, LedgerVerdict]]:
    """The verdict on the server, and on a bundle exported from it now."""
    bundle = world.export(tmp_path / "despues.jsonl.gz")
    return [("online", world.verify(**kwargs)), ("offline", world.verify_offline(bundle, **kwargs))]


def kinds(verdict: LedgerVerdict) -> set[str]:
    return {item["tipo"] for item in problem_items(verdict)}


def headline(verdict: LedgerVerdict) -> tuple[int | None, int | None]:
    return first_bad(problem_items(verdict))


def reference(path: Path) -> bytes:
    with Bundle(path) as bundle:
        return bundle.leaf_hashes()


def test_untouched_ledger_verifies_clean(world: LedgerWorld, tmp_path: Path) -> None:
    """50 entries and 5 checkpoints verify with no finding, online and offline; entries written
    after the last checkpoint are counted as not yet signed, not as a problem."""
    world.build()
    world.write(3)
    for where, verdict in online_and_offline(world, tmp_path):
        assert verdict.ok, (where, problem_items(verdict))
        assert verdict.entries == 53
        assert verdict.report.checkpoints_verified == 5
        assert verdict.unsigned_entries == 3
        assert verdict.independent_key


def test_deleted_message_is_named(world: LedgerWorld, tmp_path: Path) -> None:
    """Deleting entry 23 is reported as exactly that entry missing, and checkpoint #3 (the
    first covering it) as no longer matching."""
    world.build()
    insider.delete(world.url, world.names.events_stream, 23)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        found = {(i["tipo"], i["evento"], i["desde"], i["hasta"]) for i in problem_items(verdict)}
        assert ("eventos_borrados", 23, 23, 23) in found, where
        assert headline(verdict) == (23, 3), where


def test_purged_and_republished_stream(world: LedgerWorld, tmp_path: Path) -> None:
    """Purging the stream and publishing a modified copy leaves entries 1..50 missing (the copy
    lands at 51..100): the verdict starts at entry 1, and the copy itself, checked against the
    checkpoints position by position, first fails checkpoint #3 (the one over entry 23)."""
    world.build()
    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.purge(world.url, world.names.events_stream)
    insider.publish(world.url, entries)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        found = {(i["tipo"], i["desde"], i["hasta"]) for i in problem_items(verdict)}
        assert ("eventos_borrados", 1, 50) in found, where
        assert ("raiz_distinta", 71, 80) in found, where  # entries 21..30 of the copy
        assert headline(verdict) == (1, 3), where


def test_rewritten_stream_with_a_modified_event(world: LedgerWorld, tmp_path: Path) -> None:
    """Recreating the stream with entry 23 changed (sequences from 1 again, records still
    valid): checkpoint #3 no longer matches and the fault is placed in entries 21..30; with an
    earlier export as reference copy, entry 23 itself is named."""
    world.build()
    before = world.export(tmp_path / "antes.jsonl.gz")
    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        items = problem_items(verdict)
        assert kinds(verdict) == {"raiz_distinta"}, where
        assert (items[0]["desde"], items[0]["hasta"], items[0]["punto_de_control"]) == (21, 30, 3)
        assert items[0]["evento"] is None
    for where, verdict in online_and_offline(
        world, tmp_path, reference_leaf_hashes=reference(before)
    ):
        assert headline(verdict) == (23, 3), where


def test_reordered_events(world: LedgerWorld, tmp_path: Path) -> None:
    """Swapping entries 23 and 24 breaks the chain of notification ids exactly there, and
    checkpoint #3 no longer matches."""
    world.build()
    entries = world.entries()
    entries[22], entries[23] = entries[23], entries[22]
    insider.rewrite(world.url, world.names.events_stream, entries)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        assert {"numeracion_rota", "raiz_distinta"} <= kinds(verdict), where
        assert headline(verdict) == (23, 3), where


def test_truncated_tail(world: LedgerWorld, tmp_path: Path) -> None:
    """Deleting entries 46..50: the server still reports 50 as its last sequence and checkpoint
    #5 signs 50 entries, so the tail is named from entry 46."""
    world.build()
    insider.delete(world.url, world.names.events_stream, *range(46, 51))
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        found = {(i["tipo"], i["evento"], i["punto_de_control"]) for i in problem_items(verdict)}
        assert ("final_borrado", 46, None) in found, where
        assert ("truncada", 46, 5) in found, where
        assert headline(verdict) == (46, 5), where


def forged_record(world: LedgerWorld, first_id: int) -> insider.Message:
    """A plausible new account's creation, numbered as if it belonged at ``first_id``."""
    from uuid import uuid4

    from eventsourcing.persistence import StoredEvent

    aggregate = uuid4()
    event = StoredEvent(aggregate, 1, "tests:Cuenta.Registrada", b'{"nombre":"DD05-x"}')
    body = records.head(records.KIND_EVENTS, first_id) + records.encode_events_body(
        aggregate, [event]
    )
    return insider.Message(0, f"{world.names.events_prefix}.events.{aggregate}", body)


def test_forged_event_inserted(world: LedgerWorld, tmp_path: Path) -> None:
    """A forged record slipped in as entry 23 (stream recreated around it): checkpoint #3 fails
    for entries 21..30, the chain of ids breaks right after it, and with a reference copy the
    forged entry 23 itself is named."""
    world.build()
    before = world.export(tmp_path / "antes.jsonl.gz")
    entries = world.entries()
    _, first_id, _ = records.peek(entries[22].data)
    entries.insert(22, forged_record(world, first_id))
    insider.rewrite(world.url, world.names.events_stream, entries)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        items = problem_items(verdict)
        root = next(i for i in items if i["tipo"] == "raiz_distinta")
        assert (root["desde"], root["hasta"], root["punto_de_control"]) == (21, 30, 3), where
        chain = next(i for i in items if i["tipo"] == "numeracion_rota")
        assert chain["evento"] == 24, where
    for where, verdict in online_and_offline(
        world, tmp_path, reference_leaf_hashes=reference(before)
    ):
        assert headline(verdict) == (23, 3), where


def test_forged_garbage_appended_after_the_last_checkpoint(
    world: LedgerWorld, tmp_path: Path
) -> None:
    """A message that is not a Custodia record, published at the end (no checkpoint covers it
    yet), is named as entry 51."""
    world.build()
    forged = insider.Message(0, f"{world.names.events_prefix}.events.x", b"designacion falsa")
    insider.publish(world.url, [forged])
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        assert problem_items(verdict)[0]["tipo"] == "registro_invalido", where
        assert headline(verdict) == (51, None), where


def replace_note(world: LedgerWorld, index: int, data: bytes) -> None:
    """Recreate the checkpoint stream with checkpoint ``index`` (0-based) replaced in place."""
    messages = insider.dump(world.url, world.names.checkpoints_stream)
    notes = [m for m in messages if m.subject == world.names.notes_subject]
    notes[index].data = data
    insider.rewrite(world.url, world.names.checkpoints_stream, messages)


def test_checkpoint_replaced_by_an_altered_one(world: LedgerWorld, tmp_path: Path) -> None:
    """Checkpoint #3 replaced by one claiming another root (its signature kept): the signature
    fails, and the events are not blamed."""
    world.build()
    signed = SignedCheckpoint.from_bytes(world.notes()[2].data)
    forged = replace(signed, checkpoint=replace(signed.checkpoint, root=bytes(32)))
    assert isinstance(forged.checkpoint, Checkpoint)
    replace_note(world, 2, forged.to_bytes())
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        assert kinds(verdict) == {"firma_invalida"}, where
        assert headline(verdict) == (None, 3), where


def test_checkpoint_replaced_by_an_older_genuine_one(world: LedgerWorld, tmp_path: Path) -> None:
    """Checkpoint #3 replaced by a copy of #1 (validly signed, but older): the stored sequence
    of checkpoints goes back in size, and #3 is named."""
    world.build()
    notes = world.notes()
    replace_note(world, 2, notes[0].data)
    for where, verdict in online_and_offline(world, tmp_path):
        assert not verdict.ok, where
        items = problem_items(verdict)
        assert [(i["tipo"], i["punto_de_control"]) for i in items] == [
            ("puntos_de_control_contradictorios", 3)
        ], where
