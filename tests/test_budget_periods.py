"""A budget's periods follow the local calendar of its time zone, summer time changes included."""

from __future__ import annotations

from datetime import datetime

import pytest

from ccproxy_budgets.periods import period_bounds


@pytest.mark.parametrize(
    ("now", "period", "zone", "start", "end"),
    [
        ("2026-03-28T23:30:00+00:00", "day", "Europe/Paris", "2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00"),
        ("2026-12-02T10:00:00+00:00", "week", "UTC", "2026-11-30T00:00:00+00:00", "2026-12-07T00:00:00+00:00"),
        ("2026-12-31T23:59:00+00:00", "month", "UTC", "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
        (
            "2026-02-01T03:00:00+00:00",
            "month",
            "America/New_York",
            "2026-01-01T05:00:00+00:00",
            "2026-02-01T05:00:00+00:00",
        ),
        # Havana ended summer time by living its first hour twice (00:00 CDT, then 00:00 CST): the day began
        # at the first midnight, also seen from the second hour (before: from 05:00, its first hour lost).
        (
            "2024-11-03T04:30:00+00:00",
            "day",
            "America/Havana",
            "2024-11-03T04:00:00+00:00",
            "2024-11-04T05:00:00+00:00",
        ),
        (
            "2024-11-03T05:30:00+00:00",
            "day",
            "America/Havana",
            "2024-11-03T04:00:00+00:00",
            "2024-11-04T05:00:00+00:00",
        ),
    ],
)
def test_periods_follow_the_local_calendar(now, period, zone, start, end):
    assert period_bounds(datetime.fromisoformat(now), period, zone) == (
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
    )
