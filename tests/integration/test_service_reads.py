"""How the service reads the ledger, on the real JetStream store (issue 6's latency work).

- A cached aggregate is brought up to date from the store on every ``get`` (another service
  instance may have written), reading only the records after a position the store already
  knows — not the aggregate's whole history.
- After a save, the cache holds the saved version; a later change by another instance is still
  seen, and a stale save is still refused by optimistic concurrency.
- Listings (people, incidents) read only the notifications recorded since the previous listing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from eventsourcing.persistence import IntegrityError

from custody.app.custodia import Actor, Custodia, CustodiaApplication, bootstrap_ledger
from events.domain import District, Incident, Person, Policy, person_id
from events.jetstream.streams import EventStream

pytestmark = pytest.mark.integration

POLICY = Policy()
SEALED = "vault:v1:c2VsbGFkbw=="
T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def _app(nats_url: str, namespace: str) -> CustodiaApplication:
    return CustodiaApplication(
        env={
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": nats_url,
            "NATS_NAMESPACE": namespace,
            "AGGREGATE_CACHE_MAXSIZE": "100",  # as the service runs it (fast-forward on)
        }
    )


@pytest.fixture
def two_instances(nats_url: str) -> Iterator[tuple[CustodiaApplication, CustodiaApplication]]:
    """Two applications on one ledger, as two ``custodia servicio`` instances."""
    namespace = "rd" + uuid.uuid4().hex[:8]
    first, second = _app(nats_url, namespace), _app(nats_url, namespace)
    try:
        assert bootstrap_ledger(first, "ana", SEALED, "pii-x", T0)
        yield first, second
    finally:
        first.close()
        second.close()


def _register_account(app: CustodiaApplication) -> None:
    ana: Person = app.repository.get(person_id("ana"))
    dd05: District = app.repository.get(District.create_id("DD05"))
    dd05.register_account("DD05-x", handle="DD05IECM", email="dd05.x@iecm.mx", by=ana, at=T0)
    app.save(dd05)


def _rotate(app: CustodiaApplication, version: int, minutes: int) -> None:
    ana: Person = app.repository.get(person_id("ana"))
    dd05: District = app.repository.get(District.create_id("DD05"))
    at = T0 + timedelta(minutes=minutes)
    dd05.start_rotation("DD05-x", version=version, fingerprint="ab" * 16, by=ana, at=at)
    dd05.confirm_rotation("DD05-x", version=version, by=ana, at=at)
    app.save(dd05)


@pytest.fixture
def subject_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every ``(subject, start sequence)`` the store reads an aggregate's records from."""
    calls: list[tuple[str, int]] = []
    original = EventStream.read_subject

    async def spy(self: EventStream, subject: str, deadline: float, start_seq: int = 1) -> Any:
        calls.append((subject, start_seq))
        return await original(self, subject, deadline, start_seq)

    monkeypatch.setattr(EventStream, "read_subject", spy)
    return calls


def test_a_cached_aggregate_is_fast_forwarded_from_a_known_position(
    two_instances: tuple[CustodiaApplication, CustodiaApplication],
    subject_reads: list[tuple[str, int]],
) -> None:
    first, second = two_instances
    district_id = District.create_id("DD05")
    _register_account(first)
    for n in range(1, 6):
        _rotate(first, n, n)
    subject_reads.clear()
    dd05: District = first.repository.get(district_id)
    assert dd05.accounts["DD05-x"].current_version == 5
    # Saved here: the cached copy is the saved version; the store is asked only for records
    # after the one it wrote, never from the start of the district's history.
    assert subject_reads
    assert all(start > 1 for _, start in subject_reads), subject_reads

    # Another instance writes; the first sees it on its next get, still reading from a known
    # position onwards.
    _rotate(second, 6, 6)
    subject_reads.clear()
    dd05 = first.repository.get(district_id)
    assert dd05.accounts["DD05-x"].current_version == 6
    assert all(start > 1 for _, start in subject_reads), subject_reads

    # A change saved from a copy that missed another instance's write is still refused.
    stale: District = second.repository.get(district_id)
    _rotate(first, 7, 7)
    ana: Person = second.repository.get(person_id("ana"))
    stale.start_rotation(
        "DD05-x", version=7, fingerprint="cd" * 16, by=ana, at=T0 + timedelta(minutes=8)
    )
    with pytest.raises(IntegrityError):
        second.save(stale)
    fresh: District = second.repository.get(district_id)
    assert fresh.accounts["DD05-x"].current_version == 7
    assert fresh.version == first.repository.get(district_id).version


def test_the_cache_never_holds_an_object_changed_after_its_save(
    two_instances: tuple[CustodiaApplication, CustodiaApplication],
) -> None:
    """The saved object may still be changed by its caller (without a save): the cache keeps
    the saved state, not the caller's object."""
    first, _ = two_instances
    _register_account(first)
    dd05: District = first.repository.get(District.create_id("DD05"))
    ana: Person = first.repository.get(person_id("ana"))
    dd05.start_rotation("DD05-x", version=1, fingerprint="ab" * 16, by=ana, at=T0)
    first.save(dd05)
    dd05.confirm_rotation("DD05-x", version=1, by=ana, at=T0)  # never saved
    again: District = first.repository.get(District.create_id("DD05"))
    assert again.accounts["DD05-x"].current_version is None
    assert again.version == dd05.version - 1


def test_listings_read_only_what_was_recorded_since_the_previous_one(
    two_instances: tuple[CustodiaApplication, CustodiaApplication],
) -> None:
    first, second = two_instances
    none = cast(Any, None)  # listings touch no OpenBao adapter
    custodia = Custodia(first, none, none, none, POLICY, clock=lambda: T0)
    actor = Actor("ana", "unused")
    assert [p["usuario"] for p in custodia.list_people(actor)] == ["ana"]
    listed_up_to = first.recorder.max_notification_id() or 0

    # Another instance registers a person and files an incident.
    ana: Person = second.repository.get(person_id("ana"))
    luis = Person.register("luis", personal_data=SEALED, personal_data_key="k", by=ana, at=T0)
    luis.grant_role("titular", district="DD05", by=ana, at=T0)
    _register_account(second)
    dd05: District = second.repository.get(District.create_id("DD05"))
    incident = Incident.report(
        dd05, "DD05-x", "intervencion", "acceso extraño", by=ana, policy=POLICY, at=T0
    )
    second.save(luis, incident)

    reads: list[int] = []
    original = first.recorder.select_notifications

    def counting(*args: Any, **kwargs: Any) -> Any:
        page = original(*args, **kwargs)
        reads.extend(n.id for n in page)
        return page

    first.recorder.select_notifications = counting  # type: ignore[method-assign]
    assert [p["usuario"] for p in custodia.list_people(actor)] == ["ana", "luis"]
    newest = first.recorder.max_notification_id() or 0
    assert min(reads, default=0) == listed_up_to + 1, reads  # not the bootstrap again
    assert max(reads) == newest
    reads.clear()
    rows = custodia.list_incidents(actor, None)
    assert [r["cuenta"] for r in rows] == ["DD05-x"]
    assert reads == []  # nothing new since the people listing
