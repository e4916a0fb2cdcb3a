"""Issue 18 on real servers (the application services on JetStream and an OpenBao dev server of
this module's own): a contact read fails closed when its record cannot be saved, and a
transfer (``cambio`` of ``personas importar``) takes the designated administrator's access away
at once and opens the rotation obligations, then is idempotent."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from custody.app import people
from custody.app.custodia import (
    Actor,
    ConflictError,
    Custodia,
)
from custody.app.ledger import Ledger
from custody.stack.servers import start_bao_dev
from custody.vault.client import VaultClient
from events.domain import OfficialChannel, Person, person_id
from events.domain.errors import PersonDepartedError
from tests.integration.custody.helpers import ledger_world

pytestmark = pytest.mark.integration

OFICIO = OfficialChannel.oficio("RH/100/2026")


class RacedLedger(Ledger):
    """Before the read's record is saved, another read of the same person lands in the ledger
    (another service instance): the store refuses the stale save, as it would in production."""

    race = False

    def save(self, *aggregates: Any) -> None:
        if self.race and aggregates and isinstance(aggregates[0], Person):
            self.race = False
            rival = self.person(aggregates[0].username)
            rival.record_contact_read(
                reader=self.person("ana"), purpose="otra instancia", at=datetime.now(UTC)
            )
            super().save(rival)
        super().save(*aggregates)


class RacedCustodia(Custodia):
    """A :class:`Custodia` on a :class:`RacedLedger`; ``race = True`` arms the race once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = RacedLedger(self.app)

    @property
    def race(self) -> bool:
        return cast(RacedLedger, self.ledger).race

    @race.setter
    def race(self, value: bool) -> None:
        cast(RacedLedger, self.ledger).race = value


@dataclass
class World:
    vault: VaultClient
    custodia: RacedCustodia
    ana: Actor

    def add(self, role: str, district: str | None, **contact: str) -> str:
        user = f"q{uuid.uuid4().hex[:8]}"
        self.custodia.register_person(
            self.ana, user, name=contact.get("name", user), email=f"{user}@iecm.mx",
            phone=contact.get("phone"), role=role, district=district,
            password=secrets.token_urlsafe(18),
        )  # fmt: skip
        return user


@pytest.fixture(scope="module")
def world(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    bao = start_bao_dev(tmp_path_factory.mktemp("openbao-people"))
    try:
        namespace = "pp" + uuid.uuid4().hex[:8]
        with ledger_world(bao, nats_url, namespace, make=RacedCustodia) as made:
            assert isinstance(made.custodia, RacedCustodia)
            yield World(made.vault, made.custodia, made.ana)
    finally:
        bao.stop()


def _reads(custodia: Custodia, user: str) -> list[str]:
    events = custodia.app.repository.event_store.get(person_id(user))
    return [e.purpose for e in events if isinstance(e, Person.ContactRead)]


def test_a_read_whose_record_is_refused_shows_nothing(world: World) -> None:
    """Fail closed: when the ledger refuses the read's record (a concurrent write: the store's
    own optimistic-concurrency refusal), the command raises and returns no contact data; the
    ledger holds only the other read. The next attempt is recorded and returns the data."""
    user = world.add("secretaria", None, name="Nombre Reservado", phone="5598765432")
    world.custodia.race = True
    with pytest.raises(ConflictError) as refused:
        people.read_contact(world.custodia, world.ana, user, "llamar")
    assert "Reservado" not in repr(refused.value)
    assert "5598765432" not in repr(refused.value)
    assert _reads(world.custodia, user) == ["otra instancia"]
    shown = people.read_contact(world.custodia, world.ana, user, "llamar")
    assert shown["nombre"] == "Nombre Reservado"
    assert shown["telefono"] == "5598765432"
    assert _reads(world.custodia, user) == ["otra instancia", "llamar"]


def test_a_transfer_ends_the_designation_at_once_and_is_idempotent(world: World) -> None:
    """The designated administrator of DD05 moves to DD06: OpenBao's DD05 group is emptied,
    the accounts they could read owe a rotation, they hold only the new role; the same
    transfer again records nothing; a departed person cannot be moved."""
    titular = world.add("titular", "DD05")
    admin = world.add("administrador", "DD05")
    world.custodia.register_account(
        world.ana, "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", phone=None,
        public=True, direct_messages=True, existing=False,
    )  # fmt: skip
    world.custodia.start_rotation(world.ana, "DD05-tiktok")
    world.custodia.confirm_rotation(world.ana, "DD05-tiktok", None)
    world.custodia.designate(Actor(titular, ""), "DD05", admin, OFICIO)
    assert world.custodia.access.district_holders("DD05") == (admin,)

    moved = people.change_assignment(
        world.custodia, world.ana, admin, "administrador", "DD06", OFICIO
    )
    assert moved["roles_terminados"] == ["administrador"]
    assert world.custodia.access.district_holders("DD05") == ()
    assert dict(world.custodia.person(admin).roles) == {"administrador": "DD06"}
    district = world.custodia.district("DD05")
    assert district.holder_id is None
    assert any(o.account_id == "DD05-tiktok" for o in district.open_obligations())

    position = world.custodia.app.recorder.max_notification_id()
    again = people.change_assignment(
        world.custodia, world.ana, admin, "administrador", "DD06", OFICIO
    )
    assert again["sin_cambios"] is True
    assert world.custodia.app.recorder.max_notification_id() == position

    world.custodia.depart(world.ana, admin, "baja", OFICIO)
    with pytest.raises(PersonDepartedError):
        people.change_assignment(world.custodia, world.ana, admin, "administrador", "DD07", OFICIO)
