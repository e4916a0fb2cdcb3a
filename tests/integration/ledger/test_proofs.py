"""An inclusion proof shows that one entry (found by sequence or by notification id) is in the
tree the latest checkpoint signs, verifiable offline; any altered bit makes it fail."""

from __future__ import annotations

import base64
import json

import pytest

from custody.ledger import audit
from custody.ledger.errors import EntryNotFoundError
from events.checkpoint import CheckpointError, Ed25519Signer
from events.jetstream import records
from events.merkle import InvalidProofError
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def two_event_entry(world: LedgerWorld) -> tuple[int, int]:
    """``(sequence, first notification id)`` of an entry holding two events."""
    for message in world.entries():
        _, first_id, count = records.peek(message.data)
        if count == 2:
            return message.seq, first_id
    raise AssertionError("the world writes two-event records")


def test_proof_by_notification_id_verifies_offline(world: LedgerWorld) -> None:
    """The second event of a two-event record is mapped to its entry; the proof verifies with
    only the public key and names the entry, its ids and the checkpoint."""
    world.build(20)
    sequence, first_id = two_event_entry(world)
    proof = audit.prove_entry(world.conn, world.names, world.keyring, notification=first_id + 1)
    assert proof.sequence == sequence
    text = proof.to_json()
    doc = json.loads(text)
    assert (doc["evento"], doc["notificacion"], doc["notificaciones"]) == (
        sequence,
        first_id + 1,
        [first_id, first_id + 1],
    )
    check = audit.check_proof(text, world.keyring, world.names.origin)
    assert (check.sequence, check.first_id, check.count) == (sequence, first_id, 2)
    assert check.checkpoint.size == 20
    by_sequence = audit.prove_entry(world.conn, world.names, world.keyring, sequence=sequence)
    assert by_sequence.proof == proof.proof


def flip(doc: dict[str, object], key: str, index: int | None = None) -> str:
    """The document with the lowest bit of the first byte of ``key`` (or ``key[index]``) flipped."""
    copy = json.loads(json.dumps(doc))
    value = copy[key] if index is None else copy[key][index]
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    encoded = base64.b64encode(bytes(raw)).decode()
    if index is None:
        copy[key] = encoded
    else:
        copy[key][index] = encoded
    return json.dumps(copy)


def test_any_altered_proof_fails(world: LedgerWorld) -> None:
    """Flipping a bit of the entry, of a path element, claiming another notification, moving the
    entry or using another key: every one is refused."""
    world.build(20)
    proof = audit.prove_entry(world.conn, world.names, world.keyring, sequence=7)
    doc = json.loads(proof.to_json())
    keyring = world.keyring
    for altered in (flip(doc, "data"), *(flip(doc, "path", i) for i in range(len(doc["path"])))):
        with pytest.raises(InvalidProofError):
            audit.check_proof(altered, keyring)
    moved = dict(doc, notification_id=8)
    with pytest.raises(InvalidProofError):
        audit.check_proof(json.dumps(moved), keyring)
    claims = dict(doc, notificacion=(doc["notificaciones"][1] + 1))
    with pytest.raises(InvalidProofError):
        audit.check_proof(json.dumps(claims), keyring)
    with pytest.raises(CheckpointError):
        audit.check_proof(proof.to_json(), Ed25519Signer(keyring.name).public_keyring())


def test_entry_not_yet_covered_by_a_checkpoint(world: LedgerWorld) -> None:
    """An entry written after the latest checkpoint has no proof yet; the error says so."""
    world.build(20)
    world.write(2)
    with pytest.raises(EntryNotFoundError) as caught:
        audit.prove_entry(world.conn, world.names, world.keyring, sequence=21)
    assert caught.value.covered == 20
