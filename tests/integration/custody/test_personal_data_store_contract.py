"""The personal-data store's contract (:class:`custody.app.ports.PersonalDataStore`), run
against the in-memory fake (``tests/support/fakes.py``) and the real OpenBao
(:class:`custody.vault.personal_data.PersonalDataVault` with the service's token): sealed per
person, never in clear, erased for good (8.D, 11.7; 9.IV, 9.XX).

Every case runs twice (``[fake]``, ``[openbao]``), each with people of its own.
"""

from __future__ import annotations

import uuid

import pytest

from custody.app.ports import PersonalDataStore
from custody.errors import InvalidPersonIdError, PersonalDataErasedError
from custody.vault.client import VaultClient
from custody.vault.personal_data import PersonalDataVault
from tests.support.fakes import FakePersonalDataStore

DATA = {"nombre": "Beatriz Ñúñez", "correo": "bety@iecm.mx", "telefono": "5554831501"}


@pytest.fixture(params=["fake", pytest.param("openbao", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> PersonalDataStore:
    if request.param == "fake":
        return FakePersonalDataStore()
    client: VaultClient = request.getfixturevalue("service_client")
    real: PersonalDataStore = PersonalDataVault(client)  # satisfies the port (mypy)
    return real


def _person() -> str:
    return str(uuid.uuid4())


def test_sealed_data_opens_and_is_never_in_clear(store: PersonalDataStore) -> None:
    """What is sealed opens to the same data; the sealed text holds none of it; sealing twice
    gives different texts (a fresh nonce), both opening."""
    person = _person()
    first, second = store.seal(person, DATA), store.seal(person, DATA)
    assert first != second
    for sealed in (first, second):
        assert not any(value in sealed for value in DATA.values())
        assert store.open(person, sealed) == DATA


def test_erasure_is_for_good(store: PersonalDataStore) -> None:
    """After erasure (True: there was a key), the sealed data no longer opens and nothing new
    can be sealed for that person; a second erasure finds no key (False)."""
    person = _person()
    sealed = store.seal(person, DATA)
    assert store.erase(person) is True
    with pytest.raises(PersonalDataErasedError):
        store.open(person, sealed)
    with pytest.raises(PersonalDataErasedError):
        store.seal(person, DATA)
    assert store.erase(person) is False


def test_erasing_one_person_leaves_the_others(store: PersonalDataStore) -> None:
    """Each person has a key of their own."""
    erased, kept = _person(), _person()
    store.seal(erased, DATA)
    sealed = store.seal(kept, DATA)
    store.erase(erased)
    assert store.open(kept, sealed) == DATA


def test_a_malformed_person_id_is_refused(store: PersonalDataStore) -> None:
    """An id that is not a person id never reaches a key name."""
    with pytest.raises(InvalidPersonIdError):
        store.seal("../otro", DATA)
