"""Issue 16: a ledger the follower refuses to sign opens the institution's incident."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from events.domain import (
    DistrictMismatchError,
    Incident,
    InvalidChoiceError,
    InvalidTextError,
    NotCoadministratorError,
    OfficialChannel,
)
from events.domain.incident import LEDGER_TAMPERING

from .domain_world import POLICY, World, later, make_world

TO_SECRETARIAT = OfficialChannel.oficio("IECM/UTCSyD/0044/2025")
ROOT_A = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
ROOT_B = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@pytest.fixture
def world() -> World:
    return make_world()


def detected(**changes: object) -> Incident:
    values: dict[str, object] = {
        "incident_id": uuid4(),
        "divergence": "reescrita",
        "entry": 23,
        "anchored_size": 50,
        "anchored_root": ROOT_A,
        "observed_size": 50,
        "observed_root": ROOT_B,
        "alert_id": "00000000000000000050-3f9a1c2b7d4e5f60",
        "diverged_at": later(100),
        "policy": POLICY,
        "at": later(101),
    }
    values.update(changes)
    return Incident.ledger_tampering(**values)  # type: ignore[arg-type]


def test_a_diverged_ledger_opens_the_institutions_incident() -> None:
    """No district, no account, no person reported it; type ``bitacora_alterada``; the
    deadline runs from its detection; the event keeps what the follower found (kind, entry,
    anchored size and root vs observed, the alert) and the description says it in Spanish."""
    incident = detected()
    assert (incident.district, incident.account, incident.reported_by) == (None, None, None)
    assert incident.institutional
    assert (incident.incident_type, incident.status) == (LEDGER_TAMPERING, "reportado")
    assert incident.notify_by == later(101) + timedelta(hours=1)
    assert (incident.divergence, incident.diverged_at) == ("reescrita", later(100))
    [event] = incident.pending_events
    assert isinstance(event, Incident.LedgerTamperingDetected)
    assert (event.entry, event.anchored_size, event.anchored_root) == (23, 50, ROOT_A)
    assert (event.observed_size, event.observed_root) == (50, ROOT_B)
    assert event.alert_id == "00000000000000000050-3f9a1c2b7d4e5f60"
    assert "reescritas desde la entrada 23" in incident.description
    assert "alerta 00000000000000000050-3f9a1c2b7d4e5f60" in incident.description


def test_an_unknown_divergence_or_a_bad_size_is_refused() -> None:
    """The kind is one of the follower's; sizes are counts."""
    with pytest.raises(InvalidChoiceError):
        detected(divergence="borrada-a-mano")
    with pytest.raises(InvalidTextError):
        detected(anchored_size=-1)


def test_it_is_notified_contained_and_closed_without_an_account(world: World) -> None:
    """Notified by a coadministrator; contained with what was done (no account to rotate: no
    district may be given), only by a coadministrator; closed only once notified (issue 19:
    containment may come first)."""
    incident = detected(at=later(61), diverged_at=later(60))
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(62))
    with pytest.raises(DistrictMismatchError):
        incident.contain(world.district, "Contraseña rotada", by=world.coadmin, at=later(63))
    with pytest.raises(NotCoadministratorError):
        incident.contain(None, "Flujo restaurado", by=world.titular, at=later(63))
    incident.contain(
        None,
        "Historia restaurada desde los testigos; credencial revocada",
        by=world.coadmin,
        at=later(64),
    )
    assert (incident.status, incident.contained_at) == ("contenido", later(64))
    assert isinstance(incident.pending_events[-1], Incident.LedgerContained)
    incident.close("Bitácora verificada íntegra", by=world.coadmin, at=later(90))
    assert incident.status == "cerrado"


def test_an_account_incident_cannot_be_contained_as_the_institutions(world: World) -> None:
    """An incident of an account still needs its district (and a rotation) to be contained."""
    incident = Incident.report(
        world.district,
        "DD05-x",
        "intervencion",
        "Publicaciones ajenas",
        by=world.coadmin,
        policy=POLICY,
        at=later(10),
    )
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(11))
    with pytest.raises(DistrictMismatchError):
        incident.contain(None, "nada", by=world.coadmin, at=later(12))
