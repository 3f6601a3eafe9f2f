"""Calendar periods of a budget: the day, week (Monday first) or month, in the budget's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

LONGEST_DAYS = {"day": 1, "week": 7, "month": 31}
"""The most days a period spans: the records a restart reads back for it must be kept that long."""


def period_bounds(now: datetime, period: str, timezone: str) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the period holding ``now``; local midnight to local midnight."""
    local = now.astimezone(ZoneInfo(timezone))
    # fold=0: a midnight lived twice (a zone ending summer time at 01:00) begins the day at its first time.
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None, fold=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    zone = ZoneInfo(timezone)
    # Local wall times made aware here, so a period across a DST change is 23 or 25 hours long.
    return start.replace(tzinfo=zone).astimezone(UTC), end.replace(tzinfo=zone).astimezone(UTC)
