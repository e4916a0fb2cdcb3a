"""A rebuild's shortcut from stored state to rows (:mod:`projections.fastrows`) writes exactly the
rows the usual path writes, and records exactly the same poison events.

Long random histories (the domain's own commands) are projected three ways — a page at a time
with the shortcut, a page at a time without it, and event by event as the live service does —
and every table must come out the same. The histories end with stored states the shortcut must
decline or survive (an older class version, an extra field, another time zone, malformed ids,
undecodable bytes, values the database refuses...), put between ordinary reads so that runs of
reads break on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import get_topic

from events.domain import District
from projections import fastrows
from projections.errors import ProjectionHaltedError
from projections.fastrows import FastRows, written_for
from projections.projection import _CODES, _ROWS, APPLICATION_NAME, OnError, ReportsProjection
from projections.view import ReportsView
from tests.unit.projections.local import LocalLedger, open_view
from tests.unit.projections.states import (
    history,
    notifications,
    read_variants,
    state_of,
    variants,
)

Dump = dict[str, list[tuple[Any, ...]]]
READ = get_topic(District.CredentialRead)


def plant(ledger: LocalLedger) -> None:
    """Appends the unusual states of every event the shortcut knows, each between two copies
    of an ordinary read; a read of a district that does not exist; and a read of a password
    version just before the rotation that generates it (order matters: the first exposure of
    a version to a person is the one the view keeps)."""
    district, read = state_of(ledger, READ)
    ordinary = json.dumps(read).encode()
    version = 1_000_000
    cases: list[tuple[UUID, str, bytes]] = []
    rotating, rotation = state_of(ledger, get_topic(District.RotationStarted))
    early = {**read, "account": rotation["account"], "kind": "contrasena", "by": rotation["by"]}
    for topic, state in ((READ, early), (get_topic(District.RotationStarted), rotation)):
        version += 1
        body = json.dumps({**state, "version": 999}).encode()
        ledger.insert_raw(StoredEvent(rotating, version, topic, body))
    for cls in fastrows._BUILDS:
        topic = get_topic(cls)
        try:
            originator, state = state_of(ledger, topic)
        except IndexError:  # the history has none
            continue
        extra = read_variants(state) if cls is District.CredentialRead else iter(())
        cases += [(originator, topic, data) for _, data in (*variants(state), *extra)]
    cases.append((uuid4(), READ, ordinary))
    for originator, topic, data in cases:
        for owner, what, body in (
            (district, READ, ordinary),
            (originator, topic, data),
            (district, READ, ordinary),
        ):
            version += 1
            ledger.insert_raw(StoredEvent(owner, version, what, body))


def project(
    ledger: LocalLedger, db: Path, how: str, on_error: OnError = "continuar", page: int = 97
) -> Dump:
    """The view of ``ledger`` made ``how``: "fast" or "usual" (a page at a time, with or
    without the shortcut), or "live" (event by event, as the service does)."""
    view: ReportsView = open_view(db)
    try:
        if how == "live":
            ledger.project(view, on_error)
        else:
            projection = ReportsProjection.with_policy(on_error)(view)
            if how == "usual":
                projection._fast_rows_mapper = ledger.app.mapper  # no FastRows for this mapper
            todo = notifications(ledger)
            try:
                for start in range(0, len(todo), page):
                    projection.catch_up(
                        todo[start : start + page], ledger.app.mapper, APPLICATION_NAME
                    )
            finally:
                view.flush()
        return view.dump()
    finally:
        view.close()


@pytest.mark.parametrize(("seed", "micro"), [(3, 0), (11, 123456)])
def test_the_shortcut_writes_what_the_usual_path_writes(
    tmp_path: Path, seed: int, micro: int
) -> None:
    """Over a random history and the unusual states after it, the view is the same with the
    shortcut, without it, and as the live service makes it: rows and poison events alike. The
    history holds every kind of event the shortcut knows, so every builder is compared."""
    ledger = history(seed, 1500, micro=micro)
    assert {get_topic(cls) for cls in fastrows._BUILDS} <= {n.topic for n in notifications(ledger)}
    plant(ledger)
    fast = project(ledger, tmp_path / "fast.sqlite", "fast")
    usual = project(ledger, tmp_path / "usual.sqlite", "usual")
    live = project(ledger, tmp_path / "live.sqlite", "live")
    assert fast.keys() == usual.keys() == live.keys()
    for table in fast:
        assert fast[table] == usual[table], table
        assert fast[table] == live[table], table
    assert len(fast["reads"]) > 500
    assert len(fast["projection_errors"]) > 10  # the planted poison, recorded


def test_the_shortcut_takes_the_ordinary_events_and_declines_the_unusual(tmp_path: Path) -> None:
    """Every ordinary event of the kinds it knows gets its parameters; states the usual path
    reads differently or not at all are declined. (What it may take either way, an instant in
    another zone say, depends on whether the handler uses it: the test above checks the rows.)"""
    ledger = history(5, 600, micro=7)
    rows = FastRows.for_mapper(ledger.app.mapper, _CODES)
    assert rows is not None
    known = {get_topic(cls) for cls in fastrows._BUILDS}
    ordinary = [n for n in notifications(ledger) if n.topic in known]
    assert len({n.topic for n in ordinary}) > 20
    assert all(rows.params(n) is not None for n in ordinary)

    taken = {"as stored", "microseconds", "id in capitals", "id with dashes", "duplicate key"}
    declined = {
        "extra field",
        "missing field",
        "month 13",
        "not an instant",
        "timestamp as text",
        "malformed id",
        "id with extra key",
        "class version 9",
        "not json",
        "lone surrogate",
    }
    seen = set()
    for cls in fastrows._BUILDS:
        try:
            originator, state = state_of(ledger, get_topic(cls))
        except IndexError:  # none in this history
            continue
        for name, data in variants(state):
            notification = Notification(
                id=1,
                originator_id=originator,
                originator_version=1,
                topic=get_topic(cls),
                state=data,
            )
            got = rows.params(notification)
            if name in taken:
                assert got is not None, (cls.__qualname__, name)
            elif name in declined or " tagged " in name or name.endswith(" malformed"):
                assert got is None, (cls.__qualname__, name)
            seen.add(name)
    assert taken | declined <= seen


def test_a_halt_stops_at_the_same_event_with_the_same_rows(tmp_path: Path) -> None:
    """With the policy «detener», a poison read in a run of reads halts the rebuild where
    the usual path halts it, with the same rows committed."""
    ledger = history(8, 400)
    plant(ledger)
    dumps = []
    for how in ("fast", "usual"):
        db = tmp_path / f"{how}.sqlite"
        with pytest.raises(ProjectionHaltedError):
            project(ledger, db, how, on_error="detener")
        view = open_view(db)
        try:
            dumps.append(view.dump())
        finally:
            view.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["projection_errors"]) == 1


def test_every_builder_is_up_to_date_with_its_event_class() -> None:
    """A builder is used only while its event class has the fields it was written for: when a
    class changes, this fails until the builder (and its handler's half) are brought up to
    date."""
    assert set(fastrows._BUILDS) == set(_ROWS)
    for cls in fastrows._BUILDS:
        assert written_for(cls), cls.__qualname__
