"""Query parameters of the /logs routes: parsing, validation, and the opaque page cursor.

A bad value raises FastAPI's ``RequestValidationError``, so every error, ours or FastAPI's,
is the same 422 JSON: ``{"detail": [{"loc": ["query", "<parameter>"], "msg": ..., ...}]}``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError

from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter, PagePosition
from ccproxy_core.time_text import iso_time, unix_time

from .attribution_params import AttributionParams, attribution_params

MAX_LIST_ITEMS = 100
MAX_NAME_LENGTH = 4096
"""As long as the longest name a record may hold (``SERVER__MAX_MODEL_CHARS`` is at most this), so any can be selected."""
MAX_TIME_BUCKETS = 10_000
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


MAX_ECHOED_CHARS = 200
"""A bad value longer than this is echoed in its 422 cut short."""


def param_error(name: str, message: str, value: Any = None, location: str = "query") -> RequestValidationError:
    """A 422 naming ``name``, shaped like FastAPI's own validation errors; a long value is echoed cut short."""
    if isinstance(value, str) and len(value) > MAX_ECHOED_CHARS:
        value = value[:MAX_ECHOED_CHARS] + "…"
    return RequestValidationError([{"type": "value_error", "loc": (location, name), "msg": message, "input": value}])


def parse_time(name: str, value: str | None) -> datetime | None:
    """ISO 8601 (``2025-01-31T12:00:00Z``; no zone means UTC) or Unix seconds (``1738324800.5``; ASCII digits,
    no sign or exponent), at the next microsecond when given finer (see :mod:`ccproxy_core.time_text`)."""
    if value is None or value == "":
        return None
    text = value.strip()
    if (unix := unix_time(text)) is not None:
        return unix
    try:
        moment = iso_time(text)
    except ValueError:
        raise param_error(name, "must be an ISO 8601 time (2025-01-31T12:00:00Z) or Unix seconds", value) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # of the years 1 or 9999, its offset takes it past them
        return (datetime.max if moment.year == datetime.max.year else datetime.min).replace(tzinfo=UTC)


def parse_names(name: str, value: str | None) -> NameFilter:
    r"""``a,b,!c``: keep a or b, never c. A backslash makes the next character literal, so
    ``acme\,inc``, ``\!urgent`` and ``a\\b`` name ``acme,inc``, ``!urgent`` and ``a\b``."""
    include: list[str] = []
    exclude: list[str] = []
    for given in _split_names(name, value):
        excluded = given[:1] == [("!", False)]
        item = "".join(char for char, _ in _strip(given[1:] if excluded else given))
        if not item or len(item) > MAX_NAME_LENGTH:
            raise param_error(name, f"each name must be 1 to {MAX_NAME_LENGTH} characters", value)
        (exclude if excluded else include).append(item)
    return NameFilter(tuple(include), tuple(exclude))


_Chars = list[tuple[str, bool]]
"""A name's characters, each with whether a backslash made it literal."""


def _split_names(name: str, value: str | None) -> list[_Chars]:
    """The non-empty items between unescaped commas, blanks around them dropped."""
    items: list[_Chars] = []
    current: _Chars = []
    chars = iter(value or "")
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise param_error(name, "ends in a lone backslash: write \\\\ for a backslash", value)
            current.append((escaped, True))
        elif char == ",":
            items.append(current)
            current = []
        else:
            current.append((char, False))
    items = [stripped for stripped in (_strip(item) for item in [*items, current]) if stripped]
    if len(items) > MAX_LIST_ITEMS:
        raise param_error(name, f"at most {MAX_LIST_ITEMS} comma-separated values", value)
    return items


def _strip(chars: _Chars) -> _Chars:
    """Without the unescaped blanks at either end."""
    start, end = 0, len(chars)
    while start < end and chars[start][0].isspace() and not chars[start][1]:
        start += 1
    while end > start and chars[end - 1][0].isspace() and not chars[end - 1][1]:
        end -= 1
    return chars[start:end]


def parse_statuses(name: str, value: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``200,4xx``: exact statuses and status classes (hundreds digits)."""
    codes: list[int] = []
    classes: list[int] = []
    for item in _split(name, value):
        if match := _STATUS_CLASS.match(item):
            classes.append(int(match.group(1)))
        elif _is_ascii_number(item, 3) and 100 <= int(item) <= 599:
            codes.append(int(item))
        else:
            raise param_error(name, "must be a comma list of HTTP statuses (100-599) or classes (2xx, 4xx, 5xx)", value)
    return tuple(codes), tuple(classes)


def _is_ascii_number(text: str, max_digits: int) -> bool:
    """Plain ASCII digits, at most ``max_digits`` of them (``str.isdigit`` also takes ``²`` and ``٣``)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def parse_event_id(name: str, value: str | None, location: str = "query") -> int | None:
    """A /logs/stream event id (``Last-Event-ID``); 422 naming ``name`` unless it is a plain number."""
    if value is None or value.strip() == "":
        return None
    if not _is_ascii_number(value.strip(), 20):
        raise param_error(name, "must be an event id received from /logs/stream", value, location)
    return int(value)


def _split(name: str, value: str | None) -> list[str]:
    if not value:
        return []
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) > MAX_LIST_ITEMS:
        raise param_error(name, f"at most {MAX_LIST_ITEMS} comma-separated values", value)
    return items


@dataclass(frozen=True, slots=True)
class FilterParams:
    """The row filters shared by /logs/query, /logs/entries and /logs/analytics, as given."""

    model: str | None
    service_type: str | None
    endpoint: str | None
    status_code: str | None
    streaming: bool | None
    attribution: AttributionParams | None = None

    def to_filters(self, start: datetime | None, end: datetime | None) -> LogFilters:
        """The store's filters for this window."""
        codes, classes = parse_statuses("status_code", self.status_code)
        return LogFilters(
            start_time=start,
            end_time=end,
            model=parse_names("model", self.model),
            service_type=parse_names("service_type", self.service_type),
            endpoint=parse_names("endpoint", self.endpoint),
            status_codes=codes,
            status_classes=classes,
            streaming=self.streaming,
            **(self.attribution.filter_parts() if self.attribution else {}),
        )

    def echo(self, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        """The filters as the response reports them."""
        return {
            "start_time": start.isoformat() if start else None,
            "end_time": end.isoformat() if end else None,
            "model": self.model,
            "service_type": self.service_type,
            "endpoint": self.endpoint,
            "status_code": self.status_code,
            "streaming": self.streaming,
            **(self.attribution.echo() if self.attribution else {}),
        }


def filter_params(
    model: str | None = Query(None, description="Comma list of models; prefix !name to exclude"),
    service_type: str | None = Query(None, description="Comma list: anthropic, openai; !name excludes"),
    endpoint: str | None = Query(None, description="Comma list of route templates (/v1/messages); !name excludes"),
    status_code: str | None = Query(None, description="Comma list of statuses or classes: 200,4xx,5xx"),
    streaming: str | None = Query(None, description="true or false; empty is no filter"),
    attribution: AttributionParams = Depends(attribution_params),
) -> FilterParams:
    """FastAPI dependency collecting the row filters."""
    return FilterParams(model, service_type, endpoint, status_code, parse_flag("streaming", streaming), attribution)


_TRUE, _FALSE = frozenset({"true", "1", "yes", "on", "t", "y"}), frozenset({"false", "0", "no", "off", "f", "n"})


def parse_flag(name: str, value: str | None) -> bool | None:
    """``true`` or ``false`` (in the forms FastAPI reads a boolean in); empty, as a form's blank field, is no filter."""
    given = (value or "").strip().lower()
    if not given:
        return None
    if given in _TRUE or given in _FALSE:
        return given in _TRUE
    raise param_error(name, "must be true or false (or empty for no filter)", value)


def encode_cursor(position: PagePosition, filters: FilterParams) -> str:
    """Opaque page cursor: URL-safe base64 of the last row's timestamp (µs), its request_id, and a
    fingerprint of the row filters it was made with (the time window may move between pages)."""
    micros = (position.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    raw = json.dumps([micros, position.request_id, _fingerprint(filters)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None, filters: FilterParams) -> PagePosition | None:
    """The position in a cursor made by :func:`encode_cursor` with the same row filters; 422 naming
    ``cursor`` if it is not one, or was made with other filters (its pages would skip rows)."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        micros, request_id, *made_with = json.loads(raw)
        if type(micros) is not int or not isinstance(request_id, str) or len(made_with) > 1:
            raise ValueError
        request_id.encode()  # a lone surrogate ("\\ud800" is valid JSON) is no request id
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except (ValueError, TypeError, binascii.Error, OverflowError, UnicodeDecodeError, RecursionError):
        raise param_error("cursor", "is not a cursor returned by /logs/query (next_cursor)", value) from None
    if made_with and made_with[0] != _fingerprint(filters):
        message = "was made with other filters: pass it with the filters of the page that gave it"
        raise param_error("cursor", message, value)
    return PagePosition(moment, request_id)


def _fingerprint(filters: FilterParams) -> str:
    """The rows the filters select, whatever the order or repeats of their lists."""
    selected = filters.to_filters(None, None)
    parts = {
        name: sorted(set(value)) if isinstance(value, tuple) else _canonical(value)
        for name, value in ((field.name, getattr(selected, field.name)) for field in dataclasses.fields(selected))
    }
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _canonical(value: Any) -> Any:
    if isinstance(value, NameFilter):
        return [sorted(set(value.include)), sorted(set(value.exclude))]
    return value


def parse_window(start_text: str | None, end_text: str | None) -> tuple[datetime | None, datetime | None]:
    """``start_time`` and ``end_time`` when given; 422 naming ``start_time`` if it is not before ``end_time``."""
    start, end = parse_time("start_time", start_text), parse_time("end_time", end_text)
    if start is not None and end is not None and start >= end:
        raise param_error("start_time", "must be before end_time", start_text)
    return start, end


def resolve_window(hours: float, start_text: str | None, end_text: str | None) -> tuple[datetime, datetime]:
    """The analytics window: start_time/end_time when given, else the last ``hours`` before end (or now)."""
    end = parse_time("end_time", end_text) or datetime.now(UTC)
    start = parse_time("start_time", start_text)
    if start is None:
        try:
            start = end - timedelta(hours=hours)
        except OverflowError:
            raise param_error("hours", "reaches back before the year 1 from end_time: shorten it", hours) from None
    if start >= end:  # given, or a window of hours too short to hold a microsecond
        name, given = ("start_time", start_text) if start_text is not None else ("hours", hours)
        raise param_error(name, "must be before end_time" if start_text is not None else "is too short", given)
    return start, end


def choose_bucket(bucket: str | None, start: datetime, end: datetime) -> str:
    """The requested bucket, or minute up to 2 h, hour up to 72 h, day beyond; 422 if too many points."""
    seconds = (end - start).total_seconds()
    if bucket is None:
        bucket = "minute" if seconds <= 2 * 3600 else "hour" if seconds <= 72 * 3600 else "day"
    if seconds / BUCKET_SECONDS[bucket] > MAX_TIME_BUCKETS:
        if bucket == "day":  # no larger bucket to suggest; ``hours`` cannot reach this far, so start_time does
            message = f"gives a window longer than {MAX_TIME_BUCKETS} days: give a later start_time"
            raise param_error("start_time", message, start.isoformat())
        raise param_error(
            "bucket",
            f"gives more than {MAX_TIME_BUCKETS} points for this window: use a larger bucket or a shorter window",
            bucket,
        )
    return bucket
