"""Time for the domain: always timezone-aware, stored in UTC.

Commands take an explicit ``at`` that the application service reads from a :class:`Clock`;
tests pass the instants they need.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from events.domain.errors import NaiveDatetimeError

__all__ = ["Clock", "SystemClock", "as_utc"]


class Clock(Protocol):
    """Source of the current instant (injected into application services)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def as_utc(value: datetime, field: str = "at") -> datetime:
    """``value`` in UTC; refuses a naive datetime with :class:`NaiveDatetimeError`."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(field)
    return value.astimezone(UTC)
