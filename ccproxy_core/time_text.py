"""Times written as text, read to the microsecond the records are timed to.

A time written finer (Go writes nanoseconds) is taken at the next microsecond: a window then holds
exactly the records at or after its start and before its end. Python's ``datetime`` drops the
digits of a fraction past the sixth, which moved a window's ends across the records at its edge.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

_FRACTION = re.compile(r"[.,]([0-9]+)")
_MOST_FRACTION_DIGITS = 1_000
_UNIX_SECONDS = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def iso_time(text: str) -> datetime:
    """``datetime.fromisoformat(text)`` (``z`` read as ``Z``), at the next microsecond when ``text`` is finer:
    in UTC when it has an offset. Raises ValueError."""
    if text.endswith("z"):  # RFC 3339 allows "z" for "Z"; Python reads only the capital
        text = text[:-1] + "Z"
    moment = datetime.fromisoformat(text)
    cut = sum((_cut_part(text, run) for run in _FRACTION.finditer(text)), Fraction(0))
    if cut <= 0:
        return moment
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # past the years 1 or 9999 in UTC: the caller says what that means
            return moment
    whole = -(-cut.numerator // cut.denominator)  # the next whole microsecond: 1, or 2 with an offset's part
    try:
        return moment + whole * _MICROSECOND
    except OverflowError:
        return moment


def _cut_part(text: str, run: re.Match[str]) -> Fraction:
    """The microseconds Python dropped with this fraction's digits past the sixth, as they move the time:
    forward for the time's own fraction, back (or forward, west of UTC) for an offset's."""
    digits = run[1]
    if len(digits) > _MOST_FRACTION_DIGITS:
        raise ValueError("a fraction of a second of more than 1,000 digits")
    dropped = digits[6:].rstrip("0")
    if not dropped:
        return Fraction(0)
    return _direction(text, run) * Fraction(int(dropped), 10 ** len(dropped))


def _direction(text: str, run: re.Match[str]) -> int:
    """+1 when a microsecond more in this fraction makes the time later, -1 when earlier (an offset east of
    UTC): told by Python's own reading of the text with the fraction's last kept digit changed."""
    start, end = run.span(1)
    lower, higher = (datetime.fromisoformat(text[:start] + six + text[end:]) for six in ("000000", "000001"))
    step = higher - lower
    if step == _MICROSECOND:
        return 1
    if step == -_MICROSECOND:
        return -1
    raise ValueError("a fraction that does not count microseconds")


def unix_time(text: str) -> datetime | None:
    """ASCII digits, maybe a fraction (``1738324800.5``), as a UTC time; ``None`` for any other text or
    a time past the year 9999. Integer arithmetic: a fraction of any length is read exactly."""
    found = _UNIX_SECONDS.fullmatch(text)
    if found is None:
        return None
    whole, fraction = found[1].lstrip("0") or "0", found[2] or ""
    try:
        micros = int(whole) * 1_000_000 + int(fraction[:6].ljust(6, "0")) + bool(fraction[6:].strip("0"))
        return _EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):  # more digits than Python converts, or past the year 9999
        return None
