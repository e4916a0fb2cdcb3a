"""Checkpoints are signed by OpenBao transit with a key that never leaves it; rotating the key
keeps every earlier checkpoint verifiable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from custody.ledger import audit
from custody.ledger.transit_signer import TransitSigner, fetch_public_keyring
from custody.vault.client import VaultClient
from custody.vault.layout import LEDGER_KEY
from events.checkpoint import BadSignatureError, Checkpoint, SignedCheckpoint
from events.errors import VaultError
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def test_transit_signs_checkpoints_that_verify_with_its_public_keyring(
    transit_signer: TransitSigner, vault_service: VaultClient
) -> None:
    """A checkpoint signed through transit names the key version and verifies with the public
    keys read from transit; changing one byte of it does not."""
    checkpoint = Checkpoint("custodia.iecm.mx/bitacora", 3, bytes(range(32)), datetime.now(UTC))
    signed = transit_signer.sign_checkpoint(checkpoint)
    keyring = fetch_public_keyring(vault_service)
    assert signed.key_name == LEDGER_KEY
    assert signed.key_version in keyring.versions
    signed.verify(keyring)
    altered = SignedCheckpoint.from_bytes(signed.to_bytes().replace(b"\n3\n", b"\n4\n", 1))
    with pytest.raises(BadSignatureError):
        altered.verify(keyring)


def test_the_signing_key_never_leaves_openbao(vault_root: VaultClient) -> None:
    """Not even the root token can export or back up the ledger key's private part."""
    info = vault_root.read(f"custodia-transit/keys/{LEDGER_KEY}", operation="test")["data"]
    assert info["exportable"] is False
    assert info["allow_plaintext_backup"] is False
    for path in (
        f"custodia-transit/export/signing-key/{LEDGER_KEY}",
        f"custodia-transit/backup/{LEDGER_KEY}",
    ):
        with pytest.raises(VaultError):
            vault_root.read(path, operation="test")


def test_rotation_keeps_old_checkpoints_valid(
    world: LedgerWorld, vault_root: VaultClient, tmp_path: Path
) -> None:
    """After ``transit/keys/custodia-ledger/rotate`` new checkpoints name the new version, the
    follower republishes the keyring with both, and the whole ledger (old and new checkpoints)
    verifies online and offline."""
    old = world.build(20).key_version
    vault_root.write(f"custodia-transit/keys/{LEDGER_KEY}/rotate", {}, operation="test")
    world.write(10)
    new = world.follower().checkpoint_now()
    assert new is not None
    assert new.key_version == old + 1
    published = audit.ledger_keyring(world.conn, world.names)
    assert published is not None
    assert {old, old + 1} <= set(published.versions)
    versions = [SignedCheckpoint.from_bytes(m.data).key_version for m in world.notes()]
    assert versions == [old, old, old + 1]
    verdict = world.verify()
    assert verdict.ok
    assert verdict.report.checkpoints_verified == 3
    offline = world.verify_offline(world.export(tmp_path / "b.jsonl.gz"))
    assert offline.ok
