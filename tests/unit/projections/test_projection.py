"""The projection applies each event exactly once, with its tracking position, and never skips a
poison event silently: it records it and goes on, or halts, by policy."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.utils import get_topic

from events.domain import District
from projections.errors import ProjectionHaltedError
from projections.projection import APPLICATION_NAME, ReportsProjection
from projections.view import ReportsView
from tests.unit.domain.domain_world import FINGERPRINT, OFICIO, POLICY, later, make_world
from tests.unit.projections.local import LocalLedger, open_view
from tests.unit.projections.scenario import build


@pytest.fixture
def view(tmp_path: Path) -> Iterator[ReportsView]:
    v = open_view(tmp_path / "v.sqlite")
    yield v
    v.close()


def rows(view: ReportsView, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(view.db_name) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def plant_poison(ledger: LocalLedger) -> tuple[int, int, int]:
    """Three poison events: an unknown topic, undecodable state, and a known event whose fields
    do not fit. Returns their notification ids."""
    unknown = ledger.insert_raw(StoredEvent(uuid4(), 1, "custodia:Desconocido.Paso", b"{}"))
    broken = ledger.insert_raw(
        StoredEvent(District.create_id("DD07"), 1, get_topic(District.Registered), b"not json")
    )
    misfit = ledger.insert_raw(
        StoredEvent(
            District.create_id("DD08"),
            2,
            get_topic(District.TitularAppointed),
            b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-03-03T16:00:00+00:00"}}',
        )
    )
    return unknown, broken, misfit


def test_poison_events_are_recorded_and_the_projection_goes_on(view: ReportsView) -> None:
    """Unknown topic, undecodable state and an unfit event each leave one error row; the events
    after them are projected and the position passes them (policy «continuar»)."""
    w = make_world(collect=False)
    ledger = LocalLedger()
    ledger.save(*w.people, w.district)
    unknown, broken, misfit = plant_poison(ledger)
    w.district.register_account(
        "DD05-instagram", handle="dd05", email="dd05.ig@iecm.mx", by=w.coadmin, at=later(5)
    )
    last = ledger.save(w.district)
    ledger.project(view)

    errors = rows(view, "SELECT notification_id, kind, action FROM projection_errors ORDER BY ref")
    assert errors == [
        (unknown, "tema_desconocido", "omitido"),
        (broken, "estado_ilegible", "omitido"),
        (misfit, "evento_no_aplicable", "omitido"),
    ]
    assert view.max_tracking_id(APPLICATION_NAME) == last
    assert rows(view, "SELECT account FROM accounts WHERE account = 'DD05-instagram'")


def test_halt_policy_stops_at_the_poison_event_and_stops_again_after_a_restart(
    view: ReportsView,
) -> None:
    """With «detener» the poison event is recorded, the position stays just before it, nothing
    after it is projected, and a second run halts at the same event."""
    w = make_world(collect=False)
    ledger = LocalLedger()
    before = ledger.save(*w.people, w.district)
    unknown, _, _ = plant_poison(ledger)
    w.district.register_account(
        "DD05-instagram", handle="dd05", email="dd05.ig@iecm.mx", by=w.coadmin, at=later(5)
    )
    ledger.save(w.district)

    for _ in range(2):
        with pytest.raises(ProjectionHaltedError) as raised:
            ledger.project(view, on_error="detener")
        assert raised.value.position == f"notificacion:{unknown:012d}"
        assert view.max_tracking_id(APPLICATION_NAME) == before
    assert rows(view, "SELECT kind, action FROM projection_errors") == [
        ("tema_desconocido", "detenida")
    ]
    assert not rows(view, "SELECT account FROM accounts WHERE account = 'DD05-instagram'")


def test_a_failing_event_leaves_no_partial_change(view: ReportsView) -> None:
    """An event that fails half-way (the account updates, then an unknown obligation) is undone
    entirely; the events of the same batch before it stay."""
    w = make_world(collect=False)
    ledger = LocalLedger()
    last = ledger.save(*w.people, w.district)
    ledger.project(view)
    projection = ReportsProjection(view)
    bad = District.RotationConfirmed(  # type: ignore[call-arg]  # built by hand on purpose
        originator_id=w.district.id,
        originator_version=w.district.version + 1,
        timestamp=later(10),
        account="DD05-x",
        version=9,
        fingerprint=FINGERPRINT,
        previous_version=1,
        closed_obligation_ids=[uuid4()],
        change_request_id=None,
        by=w.coadmin.id,
    )
    projection.process_event(bad, Tracking(APPLICATION_NAME, last + 1))
    view.flush()
    assert rows(view, "SELECT current_version FROM accounts WHERE account = 'DD05-x'") == [(1,)]
    assert rows(view, "SELECT kind, notification_id FROM projection_errors") == [
        ("evento_no_aplicable", last + 1)
    ]
    assert view.max_tracking_id(APPLICATION_NAME) == last + 1


def test_rows_and_tracking_become_visible_together(view: ReportsView) -> None:
    """Until a batch commits, readers see neither its rows nor its position; after, both."""
    w = make_world(collect=False)
    ledger = LocalLedger()
    ledger.save(*w.people, w.district)
    projection = ReportsProjection(view)
    view.BATCH_SECONDS = 3600  # keep the batch open for the check
    for n in ledger.app.recorder.select_notifications(1, 100):
        event = ledger.app.mapper.to_domain_event(n)
        projection.process_event(event, Tracking(APPLICATION_NAME, n.id))
    assert view.max_tracking_id(APPLICATION_NAME) is None
    assert rows(view, "SELECT COUNT(*) FROM accounts") == [(0,)]
    view.flush()
    assert view.max_tracking_id(APPLICATION_NAME) == ledger.position
    assert rows(view, "SELECT COUNT(*) FROM accounts") == [(2,)]


def test_erased_person_vanishes_from_every_table(tmp_path: Path) -> None:
    """After 9.XX erasure the person's id is in no table; an alias keeps their reads counted."""
    s = build(tmp_path)
    w = s.world
    ana = w.ana
    w.district.designate(w.carla, by=w.titular, channel=OFICIO, policy=POLICY, at=later(days=8))
    ana.revoke_role("administrador", by=w.coadmin, at=later(days=8))
    ana.erase_personal_data(by=w.coadmin, at=later(days=8, minutes=1))
    s.ledger.save(w.district, ana)
    view = open_view(s.db)
    try:
        s.ledger.project(view)
        dump = view.dump()
    finally:
        view.close()
    text = repr(dump)
    assert str(ana.id) not in text
    assert dump["erased_people"][0][0] == "suprimida-1"
    assert ("DD05-facebook", 1, "suprimida-1") in [row[:3] for row in dump["exposure"]]
    assert str(w.beto.id) in text  # only the erased person goes


def _domain_event_classes() -> set[type]:
    """Every event class an aggregate of the domain can record (its nested event classes,
    without the ``Event`` base, the unused default ``Created`` and ``Snapshot``, which is never
    in the ledger)."""
    import importlib
    import inspect
    import pkgutil

    from eventsourcing.domain import Aggregate, DomainEvent

    import events.domain

    found: set[type] = set()
    for info in pkgutil.iter_modules(events.domain.__path__):
        module = importlib.import_module(f"events.domain.{info.name}")
        for aggregate in vars(module).values():
            if not (inspect.isclass(aggregate) and issubclass(aggregate, Aggregate)):
                continue
            for name, cls in vars(aggregate).items():
                if (
                    inspect.isclass(cls)
                    and issubclass(cls, DomainEvent)
                    and name not in ("Event", "Created", "Snapshot")
                ):
                    found.add(cls)
    return found


def test_every_domain_event_has_a_handler(view: ReportsView) -> None:
    """An event with no handler is recorded as a projection error, and every report then warns
    that it may be incomplete: a normal event (a person enrolling their login second factor)
    must never do that, or reviewers learn to ignore the warning."""
    handlers = ReportsProjection(view)._handlers
    classes = _domain_event_classes()
    assert len(classes) > 50
    missing = sorted(cls.__qualname__ for cls in classes if cls not in handlers)
    assert missing == []
