"""Parsing of the /logs query parameters: times, name lists, statuses, cursors, windows, buckets."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.exceptions import RequestValidationError

from ccproxy_core.plugin_host.log_store import NameFilter, PagePosition
from ccproxy_core.runtime.settings import ServerSettings
from ccproxy_logs_api.params import (
    FilterParams,
    choose_bucket,
    decode_cursor,
    encode_cursor,
    parse_names,
    parse_statuses,
    parse_time,
    resolve_window,
)
from ccproxy_logs_api.routes import is_loopback


def error_location(caught: pytest.ExceptionInfo) -> tuple:
    return caught.value.errors()[0]["loc"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31t12:00:00.5z", datetime(2025, 1, 31, 12, 0, 0, 500000, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2025-01-31T14:00:00+02:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("1738324800", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("1738324800.25", datetime(2025, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        # Rows are timed to the microsecond: a finer time is the next microsecond (before: dropped digits
        # moved a window's end before a row it should hold, and its start before a row it should not).
        ("2025-01-31T12:00:00.8678364Z", datetime(2025, 1, 31, 12, 0, 0, 867837, tzinfo=UTC)),
        ("2025-01-31T12:00:00.867836000Z", datetime(2025, 1, 31, 12, 0, 0, 867836, tzinfo=UTC)),
        ("2025-01-31T12:00:00,0000001+00:00", datetime(2025, 1, 31, 12, 0, 0, 1, tzinfo=UTC)),
        ("1738324800.8678364", datetime(2025, 1, 31, 12, 0, 0, 867837, tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999Z", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_unix_seconds(text, expected):
    assert parse_time("start_time", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "nan",
        "inf",
        "1e300",
        "1e9",
        "-5",
        "+5",
        ".5",
        "2025-13-01",
        "' OR 1=1 --",
    ],
)
def test_bad_times_name_the_parameter(text):
    with pytest.raises(RequestValidationError) as caught:
        parse_time("end_time", text)
    assert error_location(caught) == ("query", "end_time")


def test_a_time_its_offset_takes_past_the_years_1_or_9999_is_the_first_or_last_time():
    assert parse_time("start_time", "0001-01-01T00:00+01:00") == datetime.min.replace(tzinfo=UTC)
    assert parse_time("end_time", "9999-12-31T23:00-08:00") == datetime.max.replace(tzinfo=UTC)


def test_name_lists_include_and_exclude():
    assert parse_names("model", "a, b,!c,,") == NameFilter(("a", "b"), ("c",))
    assert parse_names("model", None) == NameFilter()
    with pytest.raises(RequestValidationError) as caught:
        parse_names("service_type", "!")
    assert error_location(caught) == ("query", "service_type")
    with pytest.raises(RequestValidationError):
        parse_names("model", ",".join(["m"] * 101))


def test_any_model_name_a_record_can_hold_can_be_selected_and_excluded():
    # Before, names over 200 characters were refused, but a record keeps 256 (SERVER__MAX_MODEL_CHARS).
    longest = ServerSettings.model_fields["max_model_chars"].metadata
    most = next(bound.le for bound in longest if getattr(bound, "le", None) is not None)
    stored = "m" * (most - 1) + "…"
    assert parse_names("model", f"{stored},!{stored}") == NameFilter((stored,), (stored,))
    with pytest.raises(RequestValidationError):
        parse_names("model", "m" * (most + 1))


def test_a_backslash_makes_the_next_character_literal():
    assert parse_names("project", "acme\\,inc, \\!urgent,!\\!x,a\\\\b") == NameFilter(
        ("acme,inc", "!urgent", "a\\b"), ("!x",)
    )
    assert parse_names("project", "\\ padded\\ ,\\,") == NameFilter((" padded ", ","))
    with pytest.raises(RequestValidationError) as caught:
        parse_names("session_id", "abc\\")
    assert error_location(caught) == ("query", "session_id")


def test_statuses_are_codes_or_classes():
    assert parse_statuses("status_code", "200,4xx,5XX") == ((200,), (4, 5))
    for bad in ("600", "abc", "2xxx", "1 OR 1=1"):
        with pytest.raises(RequestValidationError) as caught:
            parse_statuses("status_code", bad)
        assert error_location(caught) == ("query", "status_code")


HAIKU = FilterParams("claude-haiku-4-5", None, None, None, None)


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_cursor_round_trips_and_refuses_anything_else():
    position = PagePosition(datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), "req-'; DROP TABLE x; --")
    assert decode_cursor(encode_cursor(position, HAIKU), HAIKU) == position
    assert decode_cursor(cursor_of([1746515289123456, position.request_id]), HAIKU) == position  # made before
    bad_ones = ["nope", "eyJhIjoxfQ", encode_cursor(position, HAIKU)[:-3] + "###", "W1siYSJdLCJiIl0"]
    bad_ones += [cursor_of([True, "x"]), cursor_of([1, "x", "a", "b"])]  # true is no timestamp
    for bad in bad_ones:
        with pytest.raises(RequestValidationError) as caught:
            decode_cursor(bad, HAIKU)
        assert error_location(caught) == ("query", "cursor")


def test_a_long_bad_value_is_echoed_cut_short():
    with pytest.raises(RequestValidationError) as caught:
        decode_cursor("A" * 60_000, HAIKU)
    assert caught.value.errors()[0]["input"] == "A" * 200 + "…"


def test_a_cursor_is_refused_with_other_row_filters_but_not_another_window():
    position = PagePosition(datetime(2025, 5, 6, tzinfo=UTC), "req-1")
    cursor = encode_cursor(position, HAIKU)
    with pytest.raises(RequestValidationError, match="made with other filters"):
        decode_cursor(cursor, FilterParams("gpt-4o", None, None, None, None))  # its pages would skip rows
    assert decode_cursor(cursor, FilterParams("claude-haiku-4-5", None, None, None, None)) == position
    # The same rows asked for in other words are the same filters.
    both = encode_cursor(position, FilterParams("ma,mb", None, None, "4xx,200", None))
    for same in (
        FilterParams("mb, ma", None, None, "200,4XX", None),
        FilterParams("ma,mb,ma", None, None, "4xx,200", None),
    ):
        assert decode_cursor(both, same) == position


def test_window_and_default_bucket():
    start, end = resolve_window(24, None, "2025-01-02T00:00:00Z")
    assert end - start == timedelta(hours=24)
    assert choose_bucket(None, start, end) == "hour"
    assert choose_bucket(None, end - timedelta(hours=2), end) == "minute"
    assert choose_bucket(None, end - timedelta(days=4), end) == "day"
    with pytest.raises(RequestValidationError) as caught:
        resolve_window(24, "2025-01-03T00:00:00Z", "2025-01-02T00:00:00Z")
    assert error_location(caught) == ("query", "start_time")
    with pytest.raises(RequestValidationError) as caught:
        choose_bucket("minute", end - timedelta(days=30), end)
    assert error_location(caught) == ("query", "bucket")
    for bucket in ("day", None):  # no larger bucket to suggest: the start is what to change
        with pytest.raises(RequestValidationError) as caught:
            choose_bucket(bucket, datetime(1, 1, 1, tzinfo=UTC), end)
        assert error_location(caught) == ("query", "start_time")
        assert "longer than 10000 days: give a later start_time" in caught.value.errors()[0]["msg"]
    assert choose_bucket(None, end - timedelta(days=10_000), end) == "day"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
