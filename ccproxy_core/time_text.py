"""Times written as text, read to the microsecond the records are timed to.

A time written finer (Go writes nanoseconds) is taken at the next microsecond: a window then holds
exactly the records at or after its start and before its end. Python's ``datetime`` drops the
digits past the sixth, which moved a window's ends across the records at its edge.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_SECONDS_FRACTION = re.compile(r"[Tt ][0-9]{2}(?::?[0-9]{2}){2}[.,]([0-9]+)")
"""The fraction of the time's seconds (extended ``T12:00:00.5`` or basic ``T120000.5``), not an offset's."""
_OFFSET_FRACTION = re.compile(r"[+-][0-9]{2}(?::?[0-9]{2}){2}[.,]([0-9]+)$")
_UNIX_SECONDS = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(text: str) -> datetime:
    """``datetime.fromisoformat(text)`` at the next microsecond when ``text`` is finer. Raises ValueError."""
    moment = datetime.fromisoformat(text)
    # Python cuts the time's digits and its offset's: the time is then later by the offset's cut part, and
    # earlier by its own. It is after a whole microsecond only when its own cut part is the larger.
    own, offsets = _cut_part(_SECONDS_FRACTION.search(text)), _cut_part(_OFFSET_FRACTION.search(text))
    width = max(len(own), len(offsets))
    # Digit strings of one length compare as the numbers they write, however long.
    if own.ljust(width, "0") > offsets.ljust(width, "0") and moment.replace(tzinfo=None) < datetime.max:
        moment += timedelta(microseconds=1)
    return moment


def _cut_part(fraction: re.Match[str] | None) -> str:
    """The digits of a fraction of a second past the sixth, which ``datetime`` drops."""
    return "" if fraction is None else fraction[1][6:]


def unix_time(text: str) -> datetime | None:
    """ASCII digits, maybe a fraction (``1738324800.5``), as a UTC time; ``None`` for any other text or
    a time past the year 9999. Integer arithmetic: a fraction of any length is read exactly."""
    found = _UNIX_SECONDS.fullmatch(text)
    if found is None:
        return None
    whole, fraction = found[1], found[2] or ""
    try:
        micros = int(whole) * 1_000_000 + int(fraction[:6].ljust(6, "0")) + bool(fraction[6:].strip("0"))
        return _EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):  # more digits than Python converts, or past the year 9999
        return None
