"""Issue 16: a secret read found in OpenBao's audit log with no ledger record opens an incident."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from events.domain import Incident, InvalidChoiceError, OfficialChannel, person_id

from .domain_world import FINGERPRINT, POLICY, World, later, make_world

TO_SECRETARIAT = OfficialChannel.oficio("IECM/UTCSyD/0043/2025")


@pytest.fixture
def world() -> World:
    return make_world()


def detected(**changes: object) -> Incident:
    values: dict[str, object] = {
        "incident_id": uuid4(),
        "district": "DD05",
        "account": "DD05-x",
        "kind": "contrasena",
        "version": 1,
        "staged": False,
        "reader": person_id("beto"),
        "identity": "6ab4380b-9077-b379-1af4-da3432ab4d62",
        "remote_address": "127.0.0.1",
        "audit_request_id": "f9e6a8a5-96d6-c9a2-3194-80a2f7ff3b4b",
        "accessed_at": later(100),
        "policy": POLICY,
        "at": later(101),
    }
    values.update(changes)
    return Incident.unrecorded_read(**values)  # type: ignore[arg-type]


def test_an_unrecorded_read_opens_an_incident_the_service_reported() -> None:
    """The incident is reported by no person (``by`` is ``None``), of type
    ``lectura_no_registrada``, with the deadline counted from its detection, and its event
    keeps who read what, when and from where — in Spanish in the description."""
    incident = detected()
    assert (incident.status, incident.incident_type, incident.reported_by) == (
        "reportado",
        "lectura_no_registrada",
        None,
    )
    assert incident.notify_by == later(101) + timedelta(hours=1)
    assert (incident.unrecorded_reader, incident.unrecorded_read_at) == (
        person_id("beto"),
        later(100),
    )
    event = incident.pending_events[0]
    assert isinstance(event, Incident.UnrecordedReadDetected)
    assert "versión 1" in incident.description
    assert "127.0.0.1" in incident.description


def test_a_root_token_read_is_named_as_openbao_names_it() -> None:
    """No person: the description names OpenBao's identity of the token."""
    incident = detected(reader=None, identity="token", kind="codigo_totp", version=None)
    assert "«token»" in incident.description
    assert "código 2FA" in incident.description
    with pytest.raises(InvalidChoiceError):
        detected(kind="semilla")


def test_it_is_notified_contained_and_closed_like_any_incident(world: World) -> None:
    """The Secretaría Ejecutiva is notified, a rotation after the detection contains it."""
    incident = detected(accessed_at=later(60), at=later(61))
    incident.notify(channel=TO_SECRETARIAT, by=world.coadmin, at=later(62))
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(70)
    )
    world.district.confirm_rotation("DD05-x", version=2, by=world.coadmin, at=later(75))
    incident.contain(world.district, "Contraseña rotada", by=world.coadmin, at=later(80))
    incident.close("Lectura aclarada", by=world.coadmin, at=later(90))
    assert incident.status == "cerrado"
