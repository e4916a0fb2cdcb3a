"""Working time between two instants, by the policy's calendar (8.A; 6.X's deadlines).

"Overdue in business hours" and "time to rotate" count only the hours inside the policy's working
hours on business days (Mexico City time, Mexican public holidays and configured non-working days
excluded): a rotation asked for on a Friday evening and done on Monday at 10:00 took one business
hour, not sixty.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from events.domain import Policy

__all__ = ["business_hours"]


def business_hours(policy: Policy, start: datetime, end: datetime) -> float:
    """Hours of working time in ``[start, end)`` (0 if ``end`` is not after ``start``)."""
    if end <= start:
        return 0.0
    local_start, local_end = policy.local(start), policy.local(end)
    zone = policy.zone
    day = local_start.date()
    total = timedelta(0)
    while day <= local_end.date():
        if policy.is_business_day(day):
            opens = datetime.combine(day, policy.working_hours_start, tzinfo=zone)
            closes = datetime.combine(day, policy.working_hours_end, tzinfo=zone)
            lower = max(opens, local_start)
            upper = min(closes, local_end)
            if upper > lower:
                total += upper - lower
        day += timedelta(days=1)
    return total.total_seconds() / 3600
