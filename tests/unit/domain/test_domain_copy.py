"""The cheap deep copy of aggregate state (``events.domain.base.copy_state``)."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

from events.domain.base import copy_state
from events.domain.district import Account

from .copy_check import assert_faithful_copy
from .domain_world import make_world


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Foreign:  # not an events.domain class: copied by copy.deepcopy
    items: list[int] = field(default_factory=list)


def _account() -> Account:
    return Account(
        account_id="DD05-x",
        platform="x",
        handle="@dd05",
        email="dd05@iecm.mx",
        phone=None,
        public=True,
        direct_messages=False,
        violations=["a"],
        existing=True,
        registered_at=datetime(2026, 1, 5, tzinfo=UTC),
        exposure={"1": [uuid4(), uuid4()]},
    )


def test_copy_state_equals_deepcopy_and_keeps_aliases() -> None:
    account = _account()
    shared = [1, 2]
    state: dict[str, Any] = {
        "accounts": {"DD05-x": account, "again": account},  # one object twice
        "lists": (shared, shared),  # a tuple holding mutable state
        "frozen": frozenset({uuid4(), date(2026, 1, 1)}),
        "set": {1, 2},
        "colour": Colour.RED,
        "foreign": Foreign([1]),
    }
    clone = copy_state(state)
    assert clone == copy.deepcopy(state)
    assert clone["accounts"]["DD05-x"] is clone["accounts"]["again"]
    assert clone["accounts"]["DD05-x"] is not account
    assert clone["lists"][0] is clone["lists"][1] is not shared
    assert clone["frozen"] is state["frozen"]  # immutable all the way down
    assert clone["colour"] is Colour.RED
    assert clone["foreign"] == state["foreign"]
    assert clone["foreign"] is not state["foreign"]
    clone["accounts"]["DD05-x"].exposure["1"].append(uuid4())
    clone["set"].add(3)
    assert len(account.exposure["1"]) == 2
    assert state["set"] == {1, 2}


def test_aggregates_copy_faithfully() -> None:
    world = make_world()
    for aggregate in (world.district, *world.people):
        assert_faithful_copy(aggregate, copy.deepcopy(aggregate))
