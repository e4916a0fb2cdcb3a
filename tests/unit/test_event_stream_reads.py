"""How a sequential reader of the event stream tells a read mostly of other subjects (tracking
records) from one of events: it then reads filtered by the events' subjects."""

from __future__ import annotations

from typing import Any

from events.jetstream.streams import EventStream


def _stream() -> EventStream:
    conn: Any = None  # mostly_foreign() reads no server
    return EventStream(conn, "s", "ns.custodia", "events", numbered=True, timeout=1.0)


def test_a_read_is_mostly_foreign_only_when_more_than_half_is_not_events() -> None:
    """More than half of the messages on other subjects makes a read mostly foreign; half, or
    fewer, or none at all does not."""
    stream = _stream()
    event = (1, b"ns.custodia.events.0f4f6c1e-8a1b-4c55-9e43-5d1d8e2f0a11", b"")
    tracking = (2, b"ns.custodia.tracking.reportes", b"")
    near_miss = (3, b"ns.custodia.eventsX.x", b"")  # not under the events' prefix
    assert not stream.mostly_foreign([])
    assert not stream.mostly_foreign([event] * 5)
    assert not stream.mostly_foreign([event, tracking])
    assert not stream.mostly_foreign([event, event, tracking])
    assert stream.mostly_foreign([event, tracking, tracking])
    assert stream.mostly_foreign([tracking])
    assert stream.mostly_foreign([near_miss, near_miss, event])
