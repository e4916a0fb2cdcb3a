"""A poison event stops nothing silently. Written straight into the real stream with nats-py: a
message that is not a record (the store's reader skips and reports it), a record whose topic no
class answers to, and one whose state cannot be decoded (both reach the mapper). Each is
recorded in ``projection_errors``; by policy the projection goes on or halts there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import nats
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from events.domain import District
from events.jetstream import records
from projections.errors import ProjectionHaltedError
from projections.runner import rebuild, start_projections
from tests.integration.projections.conftest import Ledger
from tests.unit.domain.domain_world import later, make_world
from tests.unit.projections.local import open_view

pytestmark = pytest.mark.integration


def append_raw(env: dict[str, str], token: str, data: bytes) -> int:
    """Appends ``data`` on the ledger's stream as the next message; returns its sequence."""
    prefix = f"{env['NATS_NAMESPACE']}.custodia"
    stream = f"{env['NATS_NAMESPACE']}-custodia-events"

    async def append() -> int:
        nc = await nats.connect(env["NATS_URL"])
        try:
            js = nc.jetstream()
            last = (await js.stream_info(stream)).state.last_seq
            ack = await js.publish(
                f"{prefix}.events.{token}",
                data,
                stream=stream,
                headers={"Nats-Expected-Last-Sequence": str(last)},
            )
            return int(ack.seq)
        finally:
            await nc.close()

    return asyncio.run(append())


def record(first_id: int, originator: UUID, topic: str, state: bytes) -> bytes:
    """A well-formed events record holding one stored event."""
    body = records.encode_events_body(originator, [StoredEvent(originator, 1, topic, state)])
    return records.head(records.KIND_EVENTS, first_id) + body


def test_poison_is_recorded_and_the_projection_continues(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path
) -> None:
    """Garbage, an unknown topic and undecodable state each leave an error row; the events
    written after them are projected."""
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    garbage_seq = append_raw(app_env, str(uuid4()), b"this is not a record")
    unknown_id = (ledger.recorder.max_notification_id() or 0) + 1
    stranger = uuid4()
    append_raw(
        app_env, str(stranger), record(unknown_id, stranger, "custodia:Desconocido.X", b"{}")
    )
    dd09 = District.create_id("DD09")
    append_raw(
        app_env,
        str(dd09),
        record(unknown_id + 1, dd09, get_topic(District.Registered), b"\xff{nope"),
    )
    w.district.register_account(
        "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", by=w.coadmin, at=later(9)
    )
    ledger.save(w.district)
    last = ledger.recorder.max_notification_id()
    assert last == unknown_id + 2

    with start_projections(app_env, tmp_path / "p.sqlite") as service:
        service.wait(last, timeout=20)
        service.collect_invalid()
        errors = {(e["kind"], e["notification_id"], e["stream_seq"]) for e in service.errors()}
        accounts = service.view.dump()["accounts"]
    assert errors == {
        ("mensaje_invalido", None, garbage_seq),
        ("tema_desconocido", unknown_id, None),
        ("estado_ilegible", unknown_id + 1, None),
    }
    assert "DD05-tiktok" in [row[0] for row in accounts]


def test_halt_policy_stops_at_the_poison_event(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path
) -> None:
    """With «detener» the projection halts at the unknown topic, its position just before it,
    and halts there again after a restart."""
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    position = ledger.recorder.max_notification_id() or 0
    stranger = uuid4()
    append_raw(app_env, str(stranger), record(position + 1, stranger, "custodia:Otro.Y", b"{}"))
    w.district.register_account(
        "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", by=w.coadmin, at=later(9)
    )
    ledger.save(w.district)
    last = ledger.recorder.max_notification_id()
    assert last is not None

    for _ in range(2):
        service = start_projections(app_env, tmp_path / "p.sqlite", on_error="detener")
        try:
            with pytest.raises(ProjectionHaltedError):
                service.wait(last, timeout=20)
            assert service.position() == position
            assert [(e["kind"], e["action"]) for e in service.errors()] == [
                ("tema_desconocido", "detenida")
            ]
        finally:
            service.close()


@pytest.mark.parametrize("reading_process", [True, False], ids=["two-processes", "one-process"])
def test_rebuild_records_poison_and_halts_by_policy(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path, reading_process: bool
) -> None:
    """A rebuild (no runner: pages of the subscription), read in a process of its own or not,
    treats poison as the live service does:
    «continuar» records garbage, an unknown topic and undecodable state and goes on; «detener»
    stops at the first and leaves the existing view untouched."""
    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    position = ledger.recorder.max_notification_id() or 0
    garbage_seq = append_raw(app_env, str(uuid4()), b"this is not a record")
    stranger = uuid4()
    append_raw(
        app_env, str(stranger), record(position + 1, stranger, "custodia:Desconocido.X", b"{}")
    )
    dd09 = District.create_id("DD09")
    append_raw(
        app_env,
        str(dd09),
        record(position + 2, dd09, get_topic(District.Registered), b"\xff{nope"),
    )
    w.district.register_account(
        "DD05-tiktok", handle="dd05iecm", email="dd05.tt@iecm.mx", by=w.coadmin, at=later(9)
    )
    ledger.save(w.district)
    last = ledger.recorder.max_notification_id()
    assert last == position + 3

    db = tmp_path / "p.sqlite"
    result = rebuild(db, app_env, reading_process=reading_process)
    assert result.events == last
    assert result.errors == 3
    view = open_view(db)
    try:
        tables = view.dump()
    finally:
        view.close()
    errors = {(row[1], row[2], row[3]) for row in tables["projection_errors"]}
    assert errors == {
        ("mensaje_invalido", None, garbage_seq),
        ("tema_desconocido", position + 1, None),
        ("estado_ilegible", position + 2, None),
    }
    assert "DD05-tiktok" in [row[0] for row in tables["accounts"]]
    assert tables["tracking"] == [("custodia", last)]

    before = db.read_bytes()
    with pytest.raises(ProjectionHaltedError):
        rebuild(db, app_env, on_error="detener", reading_process=reading_process)
    assert db.read_bytes() == before


def test_errors_of_events_now_projected_as_nothing_are_forgotten_at_start(
    ledger: Ledger, app_env: dict[str, str], tmp_path: Path
) -> None:
    """A view built by a version with no handler for an event (a person enrolling their login
    second factor) recorded it as "no handler", and every report warned that it might be
    incomplete. That event projects nothing now, so skipping it then was the same as applying
    it: the live projections forget that error when they start, with no rebuild; an error of
    an event still unknown stays."""
    from projections.projection import ReportsProjection
    from projections.view import ProjectionError

    w = make_world(collect=False)
    ledger.save(*w.people, w.district)
    db = tmp_path / "p.sqlite"
    view = open_view(db)
    enrolled = "custodia:Person.SecondFactorEnrolled"
    for ref, topic in ((1, enrolled), (2, "custodia:Desconocido.X")):
        view.record_error(
            ProjectionError(
                "evento_sin_tratamiento",
                "no handler",
                action="omitido",
                notification_id=ref,
                topic=topic,
            ),
            None,
        )
    view.close()
    assert enrolled in ReportsProjection(open_view(tmp_path / "other.sqlite")).ignored_topics()
    with start_projections(app_env, db) as service:
        service.wait(ledger.recorder.max_notification_id() or 0, timeout=20)
        topics = [e["topic"] for e in service.errors()]
    assert topics == ["custodia:Desconocido.X"]
