"""The domain model runs unchanged on the JetStream event store (a few real-store tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from custody.app.custodia import CustodiaApplication, bootstrap_ledger
from events.domain import (
    District,
    DistrictId,
    Incident,
    NotEntitledToReadError,
    OfficialChannel,
    Person,
    Policy,
    person_id,
)

pytestmark = pytest.mark.integration

POLICY = Policy()
SEALED = "vault:v1:c2VsbGFkbw=="


def _app(nats_url: str, name: str) -> CustodiaApplication:
    app = CustodiaApplication(
        env={"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": nats_url, "NATS_NAMESPACE": name}
    )
    return app


def test_bootstrap_designation_and_reads_survive_a_reload(nats_url: str) -> None:
    """init's atomic save of the first coadministrator and 33 districts, then a designation with
    its obligations and a read, reload identically from JetStream in a fresh application;
    entitlement is decided from the reloaded state."""
    namespace = "dom" + uuid.uuid4().hex[:8]
    t0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # a Monday, 10:00 in Mexico City
    app = _app(nats_url, namespace)
    try:
        assert bootstrap_ledger(app, "ana", SEALED, "pii-x", t0) is True
        assert bootstrap_ledger(app, "ana", SEALED, "pii-x", t0) is False
        ana: Person = app.repository.get(person_id("ana"))
        bety = Person.register("bety", personal_data=SEALED, personal_data_key="k", by=ana, at=t0)
        bety.grant_role("administrador", district="DD05", by=ana, at=t0)
        luis = Person.register("luis", personal_data=SEALED, personal_data_key="k", by=ana, at=t0)
        luis.grant_role("titular", district="DD05", by=ana, at=t0)
        dd05: District = app.repository.get(District.create_id("DD05"))
        dd05.appoint_titular(luis, by=ana, at=t0)
        dd05.register_account("DD05-x", handle="DD05IECM", email="dd05.x@iecm.mx", by=ana, at=t0)
        dd05.start_rotation("DD05-x", version=1, fingerprint="ab" * 16, by=ana, at=t0)
        dd05.confirm_rotation("DD05-x", version=1, by=ana, at=t0)
        later = t0 + timedelta(minutes=5)
        dd05.designate(
            bety, by=luis, channel=OfficialChannel.oficio("DD05/1"), policy=POLICY, at=later
        )
        dd05.record_read(
            "DD05-x",
            reader=bety,
            version=1,
            purpose="publicar",
            device_id=None,
            policy=POLICY,
            at=later,
        )
        app.save(bety, luis, dd05)
    finally:
        app.close()

    fresh = _app(nats_url, namespace)
    try:
        again: District = fresh.repository.get(District.create_id("DD05"))
        assert again.holder_id == person_id("bety")
        assert [o.account_id for o in again.open_obligations()] == ["DD05-x"]
        assert again.exposure("DD05-x", 1) >= {person_id("bety")}
        luis = fresh.repository.get(person_id("luis"))
        with pytest.raises(NotEntitledToReadError):
            again.record_read(
                "DD05-x",
                reader=luis,
                version=1,
                purpose="x",
                device_id=None,
                policy=POLICY,
                at=t0 + timedelta(minutes=6),
            )
        districts: list[District] = [
            fresh.repository.get(District.create_id(str(c))) for c in DistrictId.all()
        ]
        assert len(districts) == 33
        incident = Incident.report(
            again,
            "DD05-x",
            "intervencion",
            "ajeno",
            by=luis,
            policy=POLICY,
            at=t0 + timedelta(minutes=7),
        )
        fresh.save(incident)
        assert fresh.repository.get(incident.id).status == "reportado"
    finally:
        fresh.close()
