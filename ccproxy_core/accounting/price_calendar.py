"""The calendar a provider dates its price changes by.

genai-prices starts a dated price (``StartDateConstraint``) on the UTC date; OpenAI dates its own
changes in US Pacific time ("6x from 2027-03-01 Pacific time"), eight hours later. The moment is handed
to genai-prices as the provider's wall clock labelled UTC, so the date it reads is the provider's.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PACIFIC_STANDARD_TIME = timezone(timedelta(hours=-8), "PST")
"""What a machine without a time-zone database takes for US Pacific time (an hour off in summer)."""


def on_price_calendar(at: datetime, zone_name: str | None) -> datetime:
    """``at`` (aware) as genai-prices should see it for a provider dating its prices in ``zone_name``."""
    if zone_name is None:
        return at
    return at.astimezone(_zone(zone_name)).replace(tzinfo=UTC)


@functools.cache
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return PACIFIC_STANDARD_TIME
