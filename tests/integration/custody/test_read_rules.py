"""The rules a read is judged by (8.A, 8.B), read alongside the read's other loads.

When the policy file does not require registered devices, a reveal reads the IECM's recorded
calendar and the device registry together with the caller and the district, once OpenBao's
calls are on their way (issue 21); the read must still be judged by them. On the real OpenBao
and the session's JetStream, through the use cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.app import controls
from custody.app.access import Access
from custody.app.custodia import Custodia
from custody.stack.servers import BaoProcess
from custody.vault.credentials import Credentials
from custody.vault.personal_data import PersonalDataVault
from events.domain import District, OfficialChannel, Policy
from tests.integration.custody.helpers import (
    LedgerWorld,
    ledger_world,
    register_account,
    service_application,
)

pytestmark = pytest.mark.integration

# Its own account: the session's OpenBao is shared with other modules.
ACCOUNT = f"DD05-reglas{uuid.uuid4().hex[:6]}"


NAMESPACE = "rules" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def world(openbao: BaoProcess, nats_url: str) -> Iterator[LedgerWorld]:
    with ledger_world(openbao, nats_url, NAMESPACE) as made:
        register_account(made.custodia, made.ana, ACCOUNT)
        made.custodia.start_rotation(made.ana, ACCOUNT)
        made.custodia.confirm_rotation(made.ana, ACCOUNT)
        yield made


def _last_read(world: LedgerWorld) -> Any:
    events = list(world.app.events.get(District.create_id("DD05"), desc=True, limit=1))
    assert isinstance(events[0], District.CredentialRead)
    return events[0]


def _reveal(world: LedgerWorld, device: str | None) -> Any:
    custodia: Custodia = world.custodia
    shown = custodia.reveal(world.ana, ACCOUNT, "revisión", device)
    Credentials(world.vault).revoke_wrapped(shown["envoltorio"])
    return shown, _last_read(world)


def test_a_read_is_judged_by_the_recorded_calendar_and_devices(world: LedgerWorld) -> None:
    """Without ``exigir_registrado``: a read from a device the ledger does not know is shown
    and recorded as from an unregistered device; once UTCSyD registers the device for DD05 and
    declares today an IECM non-working day, the next read from it is recorded as from a
    registered device and outside working hours (the reply says so too), and a read from
    another device still as unregistered."""
    shown, read = _reveal(world, "PC-DD05-01")
    assert read.device_id == "PC-DD05-01"
    assert read.registered_device is False

    controls.register_device(world.custodia, world.ana, "PC-DD05-01", "DD05", "PC de comunicación")
    today = datetime.now(ZoneInfo("America/Mexico_City")).date()
    controls.declare_non_working_day(
        world.custodia, world.ana, today, OfficialChannel.oficio("OF-21/2026")
    )
    shown, read = _reveal(world, "PC-DD05-01")
    assert (read.registered_device, read.outside_working_hours) == (True, True)
    assert shown["fuera_de_horario"] is True
    shown, read = _reveal(world, "PC-OTRA")
    assert (read.registered_device, read.outside_working_hours) == (False, True)


def test_another_process_reads_the_rules_recorded_by_this_one(
    world: LedgerWorld, nats_url: str
) -> None:
    """A second instance of the use cases (another ``custodia servicio``: its own cache, empty)
    judges its reads by the calendar and the devices this one recorded: a read from the
    registered device is recorded as such, and outside working hours on the declared day."""
    controls.register_device(world.custodia, world.ana, "PC-DD05-02", "DD05", "segunda PC")
    today = datetime.now(ZoneInfo("America/Mexico_City")).date()
    controls.declare_non_working_day(
        world.custodia, world.ana, today, OfficialChannel.oficio("OF-22/2026")
    )
    app = service_application(nats_url, NAMESPACE)
    try:
        other = Custodia(
            app, Access(world.vault), Credentials(world.vault), PersonalDataVault(world.vault),
            Policy(),
        )  # fmt: skip
        shown = other.reveal(world.ana, ACCOUNT, "revisión", "PC-DD05-02")
        Credentials(world.vault).revoke_wrapped(shown["envoltorio"])
        read = _last_read(world)
        assert (read.device_id, read.registered_device) == ("PC-DD05-02", True)
        assert read.outside_working_hours is True
    finally:
        app.close()
