"""The projections' faster reading of the ledger gives exactly what eventsourcing's own would:
the same state from the transcoder (or the same error), the same domain events from the mapper,
the same stamps."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from events.domain import District, register_transcodings
from projections.decoding import FastJSONTranscoder
from projections.projection import LedgerReader, UnreadableEvent, stamp
from tests.unit.projections.scenario import build
from tests.unit.projections.states import history, notifications, read_variants, state_of, variants

U = UUID("93c9a3c9-5257-48dc-95fd-b346deae0b82")  # fixed: the parameters show it
STATES = [
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-03-03T16:00:00+00:00"},"by":null}',
    b'{"by":{"_type_":"uuid_hex","_data_":"%s"},"n":[1,2.5,-0.0,18446744073709551616]}'
    % U.hex.encode(),
    b'{"ids":[{"_type_":"uuid_hex","_data_":"%s"}],"x":{"a":{"b":[]}}}' % U.hex.encode(),
    b'{"d":{"_type_":"custodia.date","_data_":"2025-01-02"},"s":"contrase\xc3\xb1a"}',
    b'{"_type_":"datetime_iso","_data_":"2025-01-01T00:00:00.5+00:00"}',
    b'{"a":{"_type_":"uuid_hex","_data_":"x","b":1},"c":{"_type_":"uuid_hex"}}',
    b'{"a":NaN,"b":Infinity,"c":1e400}',  # the standard library's extensions
    b'{"a":"\\ud800"}',  # a lone surrogate
    b' {"a":1} ',
    b'{"a":1,"a":2}',
    b'[1,{"_type_":"uuid_hex","_data_":"%s"}]' % U.hex.encode(),
    b'"text"',
    # Errors, which must be the library's own.
    b'{"a":{"_type_":"nope","_data_":1}}',
    b'{"a":{"_type_":"uuid_hex","_data_":"zz"}}',
    b'{"a":{"_type_":["x"],"_data_":"y"}}',
    b"\xff",
    b"",
    b'{"a":1}x',
]


def outcome(transcoder: JSONTranscoder, data: bytes) -> tuple[str, Any]:
    try:
        value = transcoder.decode(data)
    except Exception as error:
        return type(error).__name__, str(error)
    return "ok", (repr(value), type(value))


def transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder, FastJSONTranscoder]:
    library = JSONTranscoder()
    LedgerReader(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).register_transcodings(library)
    register_transcodings(library)
    fast = FastJSONTranscoder.like(library)
    standard = FastJSONTranscoder.like(library)
    standard._parse = None  # as without msgspec: the standard library's scanner
    return library, fast, standard


@pytest.mark.parametrize("data", STATES)
def test_fast_transcoder_decodes_as_the_library(data: bytes) -> None:
    """Same values (types included) or the same error, with msgspec and without."""
    library, fast, standard = transcoders()
    expected = outcome(library, data)
    assert outcome(fast, data) == expected
    assert outcome(standard, data) == expected


def test_fast_transcoder_shares_uuids_and_encodes_as_the_library() -> None:
    """One UUID instance per id (UUIDs are immutable); encoding is untouched."""
    library, fast, _ = transcoders()
    data = b'{"a":{"_type_":"uuid_hex","_data_":"%s"}}' % U.hex.encode()
    assert fast.decode(data)["a"] is fast.decode(data)["a"] == U
    state = {"at": datetime(2025, 1, 1, tzinfo=UTC), "id": U, "on": date(2025, 1, 2)}
    assert fast.encode(state) == library.encode(state)


def test_mapper_gives_the_library_domain_events(tmp_path: Path) -> None:
    """Over a whole scenario's ledger (every event type) and poison events, the projections'
    mapper gives the library mapper's events: same class, same attributes in the same order,
    same value types; what the library cannot map becomes an UnreadableEvent."""
    ledger = build(tmp_path).ledger
    ledger.insert_raw(StoredEvent(uuid4(), 1, "custodia:Desconocido.Paso", b"{}"))
    library, _, _ = transcoders()
    reference = Mapper[UUID](transcoder=library)
    mapper = ledger.app.mapper
    notifications = ledger.app.recorder.select_notifications(1, 100_000)
    assert len({n.topic for n in notifications}) > 15
    for notification in notifications:
        event: Any = mapper.to_domain_event(notification)
        try:
            expected: Any = reference.to_domain_event(notification)
        except Exception:
            assert isinstance(event, UnreadableEvent)
            continue
        assert type(event) is type(expected)
        assert list(vars(event).items()) == list(vars(expected).items())
        assert [type(v) for v in vars(event).values()] == [type(v) for v in vars(expected).values()]


def test_stamp_is_the_fixed_width_utc_text() -> None:
    """The same text as strftime("%Y-%m-%dT%H:%M:%S.%f+00:00") after conversion to UTC."""
    rng = random.Random(7)
    instants = [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 3, 3, 10, tzinfo=ZoneInfo("America/Mexico_City")),
        datetime(2025, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-6))),
        datetime(999, 1, 1, tzinfo=UTC),
        datetime.fromisoformat("2025-03-03T16:00:00+00:00"),
    ]
    for _ in range(2000):
        micro = rng.choice([0, rng.randint(0, 999_999)])
        instants.append(
            datetime(rng.randint(1000, 9990), 1, 1, tzinfo=UTC)
            + timedelta(seconds=rng.randint(0, 10**8), microseconds=micro)
        )
    for at in instants:
        assert stamp(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def test_mapper_reads_unusual_states_as_the_library() -> None:
    """States like those of every event class of a random history, each with one thing
    unusual (another version, extra or missing fields, other types, other zones, malformed ids,
    dicts shaped like transcoded values...): the projections' mapper gives the library
    mapper's event (same attribute values and types), or an UnreadableEvent where the library
    raises."""
    ledger = history(13, 800, micro=250)
    library, _, _ = transcoders()
    reference = Mapper[UUID](transcoder=library)
    mapper = ledger.app.mapper
    last = {n.topic: n for n in notifications(ledger)}
    assert len(last) > 25
    checked = 0
    for topic, notification in last.items():
        _, state = state_of(ledger, topic)
        unusual = list(variants(state))
        if topic == get_topic(District.CredentialRead):
            unusual += read_variants(state)
        for name, data in unusual:
            stored = StoredEvent(notification.originator_id, 1, topic, data)
            event: Any = mapper.to_domain_event(stored)
            try:
                expected: Any = reference.to_domain_event(stored)
            except Exception:
                assert isinstance(event, UnreadableEvent), (topic, name)
                continue
            assert type(event) is type(expected), (topic, name)
            assert vars(event) == vars(expected), (topic, name)
            assert {k: type(v) for k, v in vars(event).items()} == {
                k: type(v) for k, v in vars(expected).items()
            }, (topic, name)
            checked += 1
    assert checked > 300
