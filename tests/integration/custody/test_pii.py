"""Personal data is sealed per person and erased by deleting the person's key (R7, 9.IV)."""

from __future__ import annotations

import uuid

import pytest

from custody.errors import (
    InvalidPersonIdError,
    PersonalDataErasedError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultServerError,
)
from custody.vault.client import VaultClient
from custody.vault.personal_data import PersonalDataVault
from tests.support.secretscan import scan

pytestmark = pytest.mark.integration

DATA = {
    "nombre": "María Fernanda Pérez Gómez",
    "correo": "maria.perez@iecm.mx",
    "telefono": "5551234567",
}


def test_seal_and_open(service_client: VaultClient) -> None:
    """Sealed data opens back to the same mapping; the ciphertext shows none of it."""
    vault = PersonalDataVault(service_client)
    person = str(uuid.uuid4())
    ciphertext = vault.seal(person, DATA)
    assert ciphertext.startswith("vault:v1:")
    assert scan(ciphertext, list(DATA.values())) == []
    assert vault.open(person, ciphertext) == DATA
    assert PersonalDataVault(service_client).open(person, ciphertext) == DATA  # no local state


def test_one_key_per_person(service_client: VaultClient) -> None:
    """A person's ciphertext does not open under another person's key."""
    vault = PersonalDataVault(service_client)
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    ciphertext = vault.seal(one, DATA)
    vault.seal(other, {"nombre": "Otra persona"})
    with pytest.raises(VaultInvalidRequestError):
        vault.open(other, ciphertext)


def test_erase_makes_data_unrecoverable(
    service_client: VaultClient, root_client: VaultClient
) -> None:
    """After erasure nobody, not even root, can decrypt the stored ciphertexts; sealing for the
    erased person is refused even by a fresh instance (the key is not silently recreated)."""
    vault = PersonalDataVault(service_client)
    person = str(uuid.uuid4())
    ciphertexts = [vault.seal(person, DATA), vault.seal(person, {"nombre": "Otro dato"})]
    assert vault.erase(person) is True
    for ciphertext in ciphertexts:
        with pytest.raises(PersonalDataErasedError) as erased:
            vault.open(person, ciphertext)
        assert erased.value.person_id == person
        with pytest.raises((VaultInvalidRequestError, VaultNotFoundError)):
            root_client.write(
                f"custodia-transit/decrypt/pii-{person}", {"ciphertext": ciphertext}, operation="t"
            )
    with pytest.raises(PersonalDataErasedError):
        PersonalDataVault(service_client).seal(person, DATA)
    assert vault.erase(person) is False


def test_key_cannot_be_exported(service_client: VaultClient, root_client: VaultClient) -> None:
    """A personal-data key is not exportable and has no plaintext backup, even for root."""
    vault = PersonalDataVault(service_client)
    person = str(uuid.uuid4())
    vault.seal(person, DATA)
    key = root_client.read(f"custodia-transit/keys/pii-{person}", operation="t")["data"]
    assert key["exportable"] is False
    assert key["allow_plaintext_backup"] is False
    assert key["deletion_allowed"] is True
    for path in (f"backup/pii-{person}", f"export/encryption-key/pii-{person}"):
        # OpenBao refuses a backup with a 500 and an export with a 400: either way, no key.
        with pytest.raises((VaultInvalidRequestError, VaultServerError)):
            root_client.read(f"custodia-transit/{path}", operation="t")


def test_person_id_is_validated(service_client: VaultClient) -> None:
    """A person id that is not a safe key name is refused before any request."""
    with pytest.raises(InvalidPersonIdError):
        PersonalDataVault(service_client).seal("../custodia-ledger", DATA)
