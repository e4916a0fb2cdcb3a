"""Issue 18 on real servers: after a generated sequence of designations, absences, their ends,
role revocations and departures (the application services on JetStream and an OpenBao dev
server of this module's own), OpenBao's DD05 group holds exactly the ledger's current holder,
and everyone who left is refused by OpenBao itself with their old session token.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.app.custodia import Actor, Custodia
from custody.errors import VaultTokenInvalidError
from custody.stack.servers import start_bao_dev
from custody.vault.client import VaultClient
from events.domain import DomainError, OfficialChannel, Policy
from tests.integration.custody.helpers import ledger_world

pytestmark = pytest.mark.integration

OFICIO = OfficialChannel.oficio("DD05/100/2026")
_serial = itertools.count(1)


@dataclass
class World:
    vault: VaultClient
    custodia: Custodia
    ana: Actor
    luis: Actor
    tokens: dict[str, str] = field(default_factory=dict)
    departed: list[str] = field(default_factory=list)

    def add(self, role: str, district: str | None = "DD05") -> str:
        user = f"p{next(_serial)}x{uuid.uuid4().hex[:4]}"
        password = secrets.token_urlsafe(18)
        self.custodia.register_person(
            self.ana, user, name=user, email=f"{user}@iecm.mx", phone=None, role=role,
            district=district, password=password,
        )  # fmt: skip
        self.tokens[user] = self.vault.with_token(None).login_userpass(user, password)
        return user

    def group_matches_ledger(self) -> None:
        district = self.custodia.district("DD05")
        holder = self.custodia.username_of(district.holder_at(self.custodia.clock()))
        assert self.custodia.access.district_holders("DD05") == ((holder,) if holder else ())


@pytest.fixture(scope="module")
def world(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    bao = start_bao_dev(tmp_path_factory.mktemp("openbao-leavers"))
    try:
        with ledger_world(bao, nats_url, "lv" + uuid.uuid4().hex[:8]) as made:
            world = World(made.vault, made.custodia, made.ana, made.ana)
            luis = world.add("titular")  # personas alta names DD05's titular (issue 18)
            world.luis = Actor(luis, world.tokens[luis])
            yield world
    finally:
        bao.stop()


STEPS = st.lists(
    st.sampled_from(["designar", "ausencia", "terminar", "revocar", "baja"]),
    min_size=3,
    max_size=6,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, data=st.data())
def test_the_district_group_holds_exactly_the_ledgers_holder(
    world: World, steps: list[str], data: st.DataObject
) -> None:
    """After each generated step, OpenBao's DD05 group is exactly the ledger's current holder
    (nobody, or that one person); every person who left is refused by OpenBao on lookup-self
    with their old token."""
    custodia = world.custodia
    people = [world.add("administrador"), world.add("administrador")]
    for step in steps:
        district = custodia.district("DD05")
        holder = custodia.username_of(district.holder_at(custodia.clock()))
        admin = (
            custodia.username_of(district.administrator.person_id)
            if district.administrator
            else None
        )
        candidate = data.draw(st.sampled_from(people))
        try:
            if step == "designar":
                custodia.designate(world.luis, "DD05", candidate, OFICIO)
            elif step == "ausencia":
                custodia.report_absence(
                    world.luis, "DD05", reason="vacaciones",
                    starts_on=Policy().local_date(custodia.clock()), ends_on=None,
                    substitute=candidate, channel=OFICIO,
                )  # fmt: skip
            elif step == "terminar":
                custodia.end_absence(world.luis, "DD05", OFICIO)
            elif step == "revocar" and holder:
                custodia.revoke_role(world.ana, holder, "administrador", OFICIO)
                people.append(world.add("administrador"))
            elif step == "baja" and (holder or admin):
                leaver = str(holder or admin)
                custodia.depart(world.ana, leaver, "promocion", OFICIO)
                world.departed.append(leaver)
                people = [p for p in people if p != leaver] + [world.add("administrador")]
        except DomainError:
            pass  # a refused step changes nothing; the invariant still holds
        world.group_matches_ledger()
    for leaver in world.departed:
        with pytest.raises(VaultTokenInvalidError):
            world.vault.lookup_self(world.tokens[leaver])


def test_only_a_coadministrator_disables_an_identity_and_nobody_enables_it_again(
    world: World,
) -> None:
    """The departure's OpenBao write: a coadministrator's own token may set ``disabled=true`` on
    a person's entity and nothing else (re-enabling it or giving it a policy: 403); the service
    token may not disable anyone (403). The disabled person's session is refused at once."""
    from custody.errors import VaultPermissionDeniedError

    user = world.add("administrador")
    entity = world.custodia.access.require_entity_id(user)
    path = f"identity/entity/id/{entity}"
    as_ana = world.vault.with_token(world.ana.token)
    with pytest.raises(VaultPermissionDeniedError):
        world.vault.write(path, {"disabled": True}, operation="test-disable")  # service token
    with pytest.raises(VaultPermissionDeniedError):
        as_ana.write(path, {"policies": ["custodia-coadministrador"]}, operation="test-policy")
    world.vault.lookup_self(world.tokens[user])  # still valid
    world.custodia.access.disable_person(user, caller_token=world.ana.token)
    assert world.custodia.access.is_disabled(user)
    with pytest.raises(VaultTokenInvalidError):
        world.vault.lookup_self(world.tokens[user])
    with pytest.raises(VaultPermissionDeniedError):
        as_ana.write(path, {"disabled": False}, operation="test-enable")
    assert world.custodia.access.is_disabled(user)


def test_a_departure_whose_ledger_write_fails_still_locks_the_leaver_out_and_completes_on_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoke before record: the ledger (JetStream) refuses the departure's district write.
    The command fails, but the leaver's identity is already disabled, so OpenBao refuses their
    old token; the ledger still names them (nothing half-recorded). ``personas baja`` again
    completes it: the ledger records the departure and the district group is empty."""
    from eventsourcing.persistence import StoredEvent

    from events.jetstream import EventStoreUnavailableError

    custodia = world.custodia
    leaver = world.add("administrador")
    custodia.designate(world.luis, "DD05", leaver, OFICIO)
    assert custodia.access.district_holders("DD05") == (leaver,)
    recorder = custodia.app.recorder
    insert = recorder.insert_events
    failures = [1]

    def failing_once(stored: list[StoredEvent], **kwargs: object) -> object:
        if failures[0]:
            failures[0] -= 1
            raise EventStoreUnavailableError("NATS unreachable (injected)")
        return insert(stored, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", failing_once)
    with pytest.raises(EventStoreUnavailableError):
        custodia.depart(world.ana, leaver, "baja", OFICIO)
    with pytest.raises(VaultTokenInvalidError):
        world.vault.lookup_self(world.tokens[leaver])
    assert custodia.person(leaver).roles == {"administrador": "DD05"}
    assert custodia.district("DD05").administrator is not None

    done = custodia.depart(world.ana, leaver, "baja", OFICIO)
    assert done["roles_terminados"] == {"administrador": "DD05"}
    assert custodia.person(leaver).has_departed
    assert custodia.district("DD05").administrator is None
    assert custodia.access.district_holders("DD05") == ()
    world.group_matches_ledger()
