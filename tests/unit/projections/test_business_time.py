"""Working time between two instants follows the policy's hours, weekends and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.domain import Policy
from projections.business_time import business_hours

POLICY = Policy()


def mx(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """An instant of 2025 in Mexico City time (UTC-6)."""
    return datetime(2025, month, day, hour, minute, tzinfo=UTC) + timedelta(hours=6)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (mx(3, 10), mx(3, 12, 30), 2.5),  # Monday, inside working hours
        (mx(3, 7), mx(3, 20), 9.0),  # a whole working day, counted 09:00-18:00 only
        (mx(7, 17), mx(10, 10), 2.0),  # Friday 17:00 -> Monday 10:00: the weekend is free
        (mx(5, 12), mx(5, 11), 0.0),  # backwards
        (mx(14, 12), mx(18, 12), 6 + 3),  # Mon 17 March 2025 is a public holiday
    ],
)
def test_business_hours_count_working_time_only(
    start: datetime, end: datetime, hours: float
) -> None:
    """Only hours inside 09:00-18:00 of business days count; weekends and holidays do not."""
    assert business_hours(POLICY, start, end) == pytest.approx(hours)


def test_configured_non_working_day_is_skipped() -> None:
    """An extra non-working day of the policy counts no hours."""
    policy = Policy(extra_non_working_days=frozenset({mx(4, 12).date()}))
    assert business_hours(policy, mx(3, 18), mx(5, 9)) == 0.0
    assert business_hours(POLICY, mx(3, 18), mx(5, 9)) == 9.0
