"""Signed checkpoints: canonical note format, Ed25519 signatures, key rotation, transit helpers."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.checkpoint import (
    BadSignatureError,
    Checkpoint,
    Ed25519Signer,
    MalformedCheckpointError,
    PublicKeyring,
    SignedCheckpoint,
    UnknownKeyError,
    WrongOriginError,
    parse_transit_public_key,
    parse_transit_signature,
    sign_checkpoint,
)
from events.errors import CustodiaError
from events.merkle import EMPTY_ROOT, LedgerError

ORIGIN = "custodia.iecm.mx/bitacora"
ROOT = hashlib.sha256(b"root").digest()
WHEN = datetime(2026, 11, 28, 4, 5, 6, 123456, tzinfo=UTC)


def checkpoint(size: int = 1000, root: bytes = ROOT, when: datetime = WHEN) -> Checkpoint:
    return Checkpoint(ORIGIN, size, root, when)


def flip(value: bytes, bit: int) -> bytes:
    buf = bytearray(value)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


def test_body_is_the_documented_four_lines() -> None:
    """The body is origin, size, base64 root and a UTC timestamp line, each ending in newline."""
    body = checkpoint().body().decode()
    root = base64.b64encode(ROOT).decode()
    assert body == f"{ORIGIN}\n1000\n{root}\ntimestamp 2026-11-28T04:05:06.123456Z\n"


def test_timestamps_are_normalised_to_utc() -> None:
    """A timestamp in another zone is stored and serialised as the same instant in UTC."""
    mexico = timezone(timedelta(hours=-6))
    local = checkpoint(when=WHEN.astimezone(mexico))
    assert local.timestamp.tzinfo == UTC
    assert local.body() == checkpoint().body()
    with pytest.raises(ValueError, match="timezone"):
        checkpoint(when=datetime(2026, 1, 1))


def test_signed_note_round_trips_exactly() -> None:
    """to_bytes/from_bytes is the identity, and the note has one em-dash signature line."""
    signer = Ed25519Signer("bitacora")
    signed = signer.sign_checkpoint(checkpoint())
    note = signed.to_bytes()
    assert SignedCheckpoint.from_bytes(note) == signed
    assert SignedCheckpoint.from_text(signed.to_text()) == signed
    body, _, sig = note.partition(b"\n\n")
    assert body + b"\n" == checkpoint().body()
    assert sig.decode().startswith("\u2014 bitacora:v1 ")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"\n1000\n", b"\n01000\n"),
        (b"\n1000\n", b"\n+1000\n"),
        (b"Z\n", b"+00:00\n"),
        (b".123456Z", b".123Z"),
        (b"\n\n", b"\n"),
        (b"\n\n", b"\nextension line\n\n"),
        (b"=\n", b"\n"),
        (b"\n", b"\r\n"),
        ("\u2014".encode(), b"--"),
    ],
)
def test_non_canonical_notes_are_rejected(old: bytes, new: bytes) -> None:
    """Any variation of the canonical encoding is refused, so each checkpoint has one encoding."""
    note = Ed25519Signer("bitacora").sign_checkpoint(checkpoint()).to_bytes()
    assert old in note
    with pytest.raises(MalformedCheckpointError):
        SignedCheckpoint.from_bytes(note.replace(old, new, 1))


def test_two_signature_lines_are_rejected() -> None:
    """A note with a second signature line is not accepted as a checkpoint."""
    note = Ed25519Signer("bitacora").sign_checkpoint(checkpoint()).to_bytes()
    sig_line = note.partition(b"\n\n")[2]
    with pytest.raises(MalformedCheckpointError, match="one signature"):
        SignedCheckpoint.from_bytes(note + sig_line)


def test_signature_verifies_with_the_keyring() -> None:
    """A freshly signed checkpoint verifies against the signer's public keyring and origin."""
    signer = Ed25519Signer("bitacora")
    signed = signer.sign_checkpoint(checkpoint(0, EMPTY_ROOT))
    signed.verify(signer.public_keyring(), origin=ORIGIN)


def test_every_flipped_signature_bit_is_rejected() -> None:
    """Flipping any one of the 512 signature bits or 32 key-id bits makes verification fail."""
    signer = Ed25519Signer("bitacora")
    keyring = signer.public_keyring()
    signed = signer.sign_checkpoint(checkpoint())
    for bit in range(512):
        forged = SignedCheckpoint(
            signed.checkpoint, "bitacora", 1, signed.key_id, flip(signed.signature, bit)
        )
        with pytest.raises(BadSignatureError):
            forged.verify(keyring)
    for bit in range(32):
        forged = SignedCheckpoint(
            signed.checkpoint, "bitacora", 1, flip(signed.key_id, bit), signed.signature
        )
        with pytest.raises(BadSignatureError):
            forged.verify(keyring)


def test_every_flipped_body_bit_is_rejected() -> None:
    """Flipping any bit of the signed body yields a malformed note or a bad signature."""
    signer = Ed25519Signer("bitacora")
    keyring = signer.public_keyring()
    note = signer.sign_checkpoint(checkpoint()).to_bytes()
    body_len = len(checkpoint().body())
    for bit in range(body_len * 8):
        with pytest.raises((MalformedCheckpointError, BadSignatureError)):
            SignedCheckpoint.from_bytes(flip(note, bit)).verify(keyring)


def test_changed_root_or_size_does_not_verify() -> None:
    """The same signature over another size or root fails."""
    signer = Ed25519Signer("bitacora")
    signed = signer.sign_checkpoint(checkpoint())
    for other in (checkpoint(size=1001), checkpoint(root=flip(ROOT, 0))):
        moved = SignedCheckpoint(other, "bitacora", 1, signed.key_id, signed.signature)
        with pytest.raises(BadSignatureError):
            moved.verify(signer.public_keyring())


def test_another_key_with_the_same_name_is_rejected() -> None:
    """A checkpoint signed by an impostor key calling itself bitacora:v1 fails verification."""
    honest, impostor = Ed25519Signer("bitacora"), Ed25519Signer("bitacora")
    forged = impostor.sign_checkpoint(checkpoint())
    with pytest.raises(BadSignatureError):
        forged.verify(honest.public_keyring())


def test_key_rotation_keeps_old_checkpoints_valid() -> None:
    """After rotating, new checkpoints name v2 and checkpoints signed with v1 still verify."""
    signer = Ed25519Signer("bitacora")
    old = signer.sign_checkpoint(checkpoint(100))
    assert signer.rotate() == 2
    new = signer.sign_checkpoint(checkpoint(200))
    assert (old.key_version, new.key_version) == (1, 2)
    keyring = signer.public_keyring()
    assert keyring.versions == (1, 2)
    old.verify(keyring)
    new.verify(keyring)
    with pytest.raises(BadSignatureError):
        SignedCheckpoint(old.checkpoint, "bitacora", 2, new.key_id, old.signature).verify(keyring)


def test_unknown_key_version_or_name_is_reported_as_such() -> None:
    """A version or key name the keyring lacks raises UnknownKeyError, naming it."""
    signer = Ed25519Signer("bitacora")
    stale = signer.public_keyring()
    signer.rotate()
    signed = signer.sign_checkpoint(checkpoint())
    with pytest.raises(UnknownKeyError) as info:
        signed.verify(stale)
    assert (info.value.key_name, info.value.key_version) == ("bitacora", 2)
    with pytest.raises(UnknownKeyError):
        signed.verify(Ed25519Signer("otra").public_keyring())


def test_sign_checkpoint_refuses_a_stale_keyring() -> None:
    """Signing with a signer that rotated past the keyring fails at once, not in an audit."""
    signer = Ed25519Signer("bitacora")
    stale = signer.public_keyring()
    signer.rotate()
    with pytest.raises(UnknownKeyError):
        sign_checkpoint(checkpoint(), signer, stale)


def test_wrong_origin_is_rejected() -> None:
    """A checkpoint of another log does not verify for this origin."""
    signer = Ed25519Signer("bitacora")
    signed = signer.sign_checkpoint(Checkpoint("otro.log", 1, ROOT, WHEN))
    with pytest.raises(WrongOriginError):
        signed.verify(signer.public_keyring(), origin=ORIGIN)


def test_errors_belong_to_the_custodia_tree() -> None:
    """Checkpoint errors are LedgerErrors and CustodiaErrors."""
    assert issubclass(BadSignatureError, LedgerError)
    assert issubclass(LedgerError, CustodiaError)


def test_transit_signature_is_parsed() -> None:
    """'vault:v3:<base64>' gives version 3 and the raw 64-byte signature."""
    sig = bytes(range(64))
    assert parse_transit_signature(f"vault:v3:{base64.b64encode(sig).decode()}") == (3, sig)
    for bad in ("vault:v0:AAAA", "vault:3:AAAA", "v3:AAAA", f"vault:v1:{'A' * 12}"):
        with pytest.raises(MalformedCheckpointError):
            parse_transit_signature(bad)


class TransitLike:
    """Stands for OpenBao transit: signs raw input, answers in 'vault:v<N>:<base64>' form."""

    def __init__(self) -> None:
        self.keys = {1: Ed25519PrivateKey.generate(), 2: Ed25519PrivateKey.generate()}

    @property
    def key_name(self) -> str:
        return "bitacora"

    def sign(self, message: bytes) -> tuple[int, bytes]:
        answer = "vault:v2:" + base64.b64encode(self.keys[2].sign(message)).decode()
        return parse_transit_signature(answer)

    def export(self) -> dict[str, str]:
        """The data.keys of transit's export/public-key answer."""
        raw = {v: k.public_key().public_bytes_raw() for v, k in self.keys.items()}
        return {str(v): base64.b64encode(r).decode() for v, r in raw.items()}


def test_keyring_from_transit_exports_of_both_shapes() -> None:
    """Keyrings built from export/public-key and from read-key answers verify transit signatures."""
    transit = TransitLike()
    exported = PublicKeyring.from_transit("bitacora", transit.export())
    read_key = PublicKeyring.from_transit(
        "bitacora",
        {v: {"public_key": k, "name": "ed25519"} for v, k in transit.export().items()},
    )
    assert exported == read_key
    signed = sign_checkpoint(checkpoint(), transit, exported)
    assert signed.key_version == 2
    signed.verify(read_key)


def test_keyring_json_round_trips_and_rejects_bad_keys() -> None:
    """to_json/from_json is the identity; a key that is not 32 bytes of base64 is refused."""
    signer = Ed25519Signer("bitacora")
    signer.rotate()
    keyring = signer.public_keyring()
    assert PublicKeyring.from_json(keyring.to_json()) == keyring
    with pytest.raises(MalformedCheckpointError):
        PublicKeyring.from_json({"name": "bitacora", "keys": {"1": "AAAA"}})
    with pytest.raises(MalformedCheckpointError):
        parse_transit_public_key("not base64!")


def test_keyring_refuses_to_change_an_existing_version() -> None:
    """Rotation adds a version; replacing the key of an existing version is refused."""
    signer = Ed25519Signer("bitacora")
    keyring = signer.public_keyring()
    other = Ed25519Signer("bitacora").public_key()
    assert keyring.with_version(2, other).versions == (1, 2)
    with pytest.raises(ValueError, match="different key"):
        keyring.with_version(1, other)


def test_note_verifier_key_has_the_signed_note_layout() -> None:
    """The verifier key is name+hex key id+base64(0x01 || key), the id matching the notes'."""
    signer = Ed25519Signer("bitacora")
    signed = signer.sign_checkpoint(checkpoint())
    name, key_id, key = signer.public_keyring().note_verifier_key(1).split("+", 2)
    assert name == "bitacora:v1"
    assert bytes.fromhex(key_id) == signed.key_id
    assert base64.b64decode(key) == b"\x01" + signer.public_key(1)
