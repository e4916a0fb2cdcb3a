"""What every aggregate shares: stable topics, command time, all-or-nothing commands."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Concatenate, Final, ParamSpec, TypeVar

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import register_topic

from events.domain.clock import as_utc
from events.domain.errors import TimeOrderError

__all__ = ["TOPIC_PREFIX", "atomic", "command_time", "stable_topics"]

TOPIC_PREFIX: Final = "custodia"

A = TypeVar("A", bound=type[Aggregate])
S = TypeVar("S", bound=Aggregate)
P = ParamSpec("P")
R = TypeVar("R")


def stable_topics(name: str) -> Callable[[A], A]:
    """Class decorator: the aggregate and its events get topics ``custodia:<name>[.<Event>]``.

    Stored events name their class by topic; the default topic is the module path, which would
    tie a ledger that is read for years to today's file layout. Topics set here do not move with
    the code. Renaming an event class changes its topic: register the old one with
    ``eventsourcing.utils.register_topic`` (the domain tests pin the full list).
    """

    def decorate(cls: A) -> A:
        for attribute, value in list(vars(cls).items()):
            if (
                isinstance(value, type)
                and issubclass(value, CanMutateAggregate)
                and attribute not in ("Event", "Created")
            ):
                topic = f"{TOPIC_PREFIX}:{name}.{attribute}"
                setattr(value, "TOPIC", topic)  # noqa: B010 (the library reads it by name)
                register_topic(topic, value)
        topic = f"{TOPIC_PREFIX}:{name}"
        setattr(cls, "TOPIC", topic)  # noqa: B010
        register_topic(topic, cls)
        return cls

    return decorate


def command_time(aggregate: Aggregate, at: datetime) -> datetime:
    """``at`` in UTC, refused if naive or earlier than the aggregate's last event."""
    at = as_utc(at)
    if at < aggregate.modified_on:
        raise TimeOrderError(aggregate.id, at, aggregate.modified_on)
    return at


def atomic(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A command that either triggers all its events or leaves the aggregate untouched.

    Commands that first bring the aggregate up to date (scheduled absences) and then may refuse
    must not leave half their events behind in memory.
    """

    @functools.wraps(method)
    def command(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        saved = copy.deepcopy(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return command
