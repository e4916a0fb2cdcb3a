"""Stored states for the projections' decoding tests: random histories made by the domain, and
states like theirs with one thing unusual, which a faster reading must decline or read exactly
as the library does."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from tests.integration.projections.history import RandomHistory
from tests.unit.domain.domain_world import T0
from tests.unit.projections.local import LocalLedger


def history(seed: int, steps: int, *, micro: int = 0) -> LocalLedger:
    """A ledger of a random history (instants with ``micro`` microseconds)."""
    ledger = LocalLedger()

    def save(aggregates: Sequence[Aggregate]) -> None:
        ledger.save(*aggregates)

    RandomHistory(save, seed=seed, start=T0 + timedelta(microseconds=micro)).run(steps)
    return ledger


def notifications(ledger: LocalLedger) -> list[Notification]:
    return list(ledger.app.recorder.select_notifications(1, 1_000_000))


def state_of(ledger: LocalLedger, topic: str) -> tuple[UUID, dict[str, Any]]:
    """The originator and the stored state (as JSON) of the last event of ``topic``."""
    last = [n for n in notifications(ledger) if n.topic == topic][-1]
    assert isinstance(last.originator_id, UUID)
    state: dict[str, Any] = json.loads(last.state)
    return last.originator_id, state


def variants(state: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Stored states like ``state`` with one thing unusual (name, JSON bytes)."""

    def changed(**fields: Any) -> bytes:
        new = {**state, **fields}
        return json.dumps({k: v for k, v in new.items() if v is not ...}).encode()

    stamp = state["timestamp"]["_data_"]
    by = state.get("by") or {"_type_": "uuid_hex", "_data_": uuid4().hex}
    yield "as stored", json.dumps(state).encode()
    yield "extra field", changed(extra=1)
    yield "missing field", changed(timestamp=...)
    yield (
        "another zone",
        changed(timestamp={**state["timestamp"], "_data_": "2025-03-03T19:50:00.5+01:00"}),
    )
    yield (
        "microseconds",
        changed(timestamp={**state["timestamp"], "_data_": "2025-03-03T19:50:00.123456+00:00"}),
    )
    yield (
        "short fraction",
        changed(timestamp={**state["timestamp"], "_data_": "2025-03-03T19:50:00.5+00:00"}),
    )
    yield (
        "year 999",
        changed(timestamp={**state["timestamp"], "_data_": "0999-03-03T19:50:00+00:00"}),
    )
    yield (
        "month 13",
        changed(timestamp={**state["timestamp"], "_data_": "2025-13-03T19:50:00+00:00"}),
    )
    yield "not an instant", changed(timestamp={"_type_": "uuid_hex", "_data_": uuid4().hex})
    yield "timestamp as text", changed(timestamp=stamp)
    yield "id in capitals", changed(by={**by, "_data_": by["_data_"].upper()})
    yield "id with dashes", changed(by={**by, "_data_": str(UUID(by["_data_"]))})
    yield "malformed id", changed(by={**by, "_data_": "zz"})
    yield "id with extra key", changed(by={**by, "x": 1})
    yield "class version 1", changed(class_version=1)
    yield "class version 9", changed(class_version=9)
    yield (
        "duplicate key",
        json.dumps(state).encode()[:-1]
        + b',"timestamp":'
        + json.dumps({"_type_": "datetime_iso", "_data_": "2024-01-01T00:00:00+00:00"}).encode()
        + b"}",
    )
    for key, value in state.items():  # each id and instant, malformed
        bad = {"uuid_hex": "zz", "datetime_iso": "2025-13-03T19:50:00+00:00"}
        if isinstance(value, dict) and value.get("_type_") in bad:
            yield f"{key} malformed", changed(**{key: {**value, "_data_": bad[value["_type_"]]}})
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield (
                f"{key} malformed",
                changed(**{key: [*value, {"_type_": "uuid_hex", "_data_": "zz"}]}),
            )
    for key, value in state.items():  # a dict field shaped like a transcoded value
        if isinstance(value, dict) and "_type_" not in value:
            yield f"{key} tagged (text)", changed(**{key: {"_type_": "nope", "_data_": "x"}})
            yield f"{key} tagged (lists)", changed(**{key: {"_type_": [1], "_data_": [2]}})
    yield "not json", b"{not json"
    yield "lone surrogate", json.dumps(state)[:-1].encode() + b',"x":"\\ud800"}'


def read_variants(state: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Credential reads with one thing unusual, beyond :func:`variants`."""
    without = {k: v for k, v in state.items() if k not in ("kind", "class_version")}
    yield "version 1 (upcast)", json.dumps(without).encode()
    changes: list[tuple[str, dict[str, Any]]] = [
        ("version as float", {"version": 1.0}),
        ("version too large", {"version": 2**70}),
        ("no version", {"version": None}),
        ("account null", {"account": None}),
        ("flag as int", {"registered_device": 1}),
        ("code read", {"kind": "codigo", "version": None}),
        ("code read of version 1", {"kind": "codigo", "class_version": 1}),  # upcast: a password
        ("text with a lone surrogate", {"purpose": "\ud800"}),
    ]
    for name, value in changes:
        yield name, json.dumps({**state, **value}).encode()
