"""Times written finer than the microsecond the records are timed to are taken at the next microsecond,
wherever a window is given: the logs API's parameters and ``ccproxy report``'s options alike."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import pytest

from ccproxy_core.runtime.report import _parse_moment
from ccproxy_core.time_text import iso_time, unix_time

MOMENT = datetime(2026, 12, 7, 3, 34, 53, 82807, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07T03:34:53.082807Z", MOMENT),
        ("2026-12-07T03:34:53.082807000Z", MOMENT),  # nanoseconds that add nothing
        ("2026-12-07T03:34:53.0828071Z", MOMENT.replace(microsecond=82808)),
        ("20261207T033453.0828071Z", MOMENT.replace(microsecond=82808)),  # the basic format
        ("2026-12-07 03:34:53,0828071+00:00", MOMENT.replace(microsecond=82808)),
        # 03:34:52.9593504 exactly: the cut parts of the time (.0000001) and of its offset (.0000007) weighed.
        ("2026-12-07T09:04:53.0828071+05:30:00.1234567", datetime(2026, 12, 7, 3, 34, 52, 959351, tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999", datetime.max),  # no next microsecond: the last one
        ("9999-12-31T23:59:59.9999995+01:00", datetime(9999, 12, 31, 23, tzinfo=UTC)),  # the UTC one has
        ("2026-12-07X03:34:53.0828071", MOMENT.replace(microsecond=82808, tzinfo=None)),  # any separator
        ("2026-12-07-03:34:53.0828071", MOMENT.replace(microsecond=82808, tzinfo=None)),
        ("2026-12-07T03:34.0000001", datetime(2026, 12, 7, 3, 34, 0, 1)),  # Python's own reading, rounded up
        ("2026-12-07T03:34:53.082807z", MOMENT),
    ],
)
def test_iso_times_finer_than_a_microsecond_are_taken_at_the_next(text, expected):
    moment = iso_time(text)
    assert (moment.astimezone(UTC) if moment.tzinfo else moment) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1796614493.082807", MOMENT),
        ("1796614493.0828071", MOMENT.replace(microsecond=82808)),
        ("1796614493.08280700000000000000001", MOMENT.replace(microsecond=82808)),  # past a float's digits
        ("1796614493", MOMENT.replace(microsecond=0)),
        ("1796614493.", None),
        ("-5", None),
        ("1e9", None),
        ("9" * 20, None),  # past the year 9999
        ("0" * 5_000 + "1796614493", MOMENT.replace(microsecond=0)),  # leading zeros, past int()'s digits
    ],
)
def test_unix_seconds_are_read_exactly(text, expected):
    assert unix_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T03:34:53-00:00:00.0000001",  # Python reads this offset's microsecond as none at all
        "2026-12-07T03:34:53." + "1" * 1_001,
    ],
)
def test_a_finer_time_whose_next_microsecond_cannot_be_told_is_refused(text):
    with pytest.raises(ValueError, match="fraction"):
        iso_time(text)


def test_the_report_takes_a_finer_since_at_the_next_microsecond_as_the_logs_api_does():
    # Before, it dropped the digits: a row 100 ns before --since was counted, which /logs leaves out.
    assert _parse_moment("--since", "2026-12-07T03:34:53.0828071Z", end_of_day=False) == MOMENT.replace(
        microsecond=82808
    )
    with pytest.raises(click.BadParameter):
        _parse_moment("--since", "yesterday", end_of_day=False)


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2025-01-31", datetime(2025, 2, 1, tzinfo=UTC)),  # a date: its whole day
        ("20250131", datetime(2025, 2, 1, tzinfo=UTC)),  # before: the day left out (not 10 characters)
        ("2025-W05-5", datetime(2025, 2, 1, tzinfo=UTC)),
        ("2025W05T12", datetime(2025, 1, 27, 12, tzinfo=UTC)),  # before: a day late (10 characters)
        ("2025-01-31T12:00:00z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
    ],
)
def test_the_report_counts_a_whole_day_for_a_date_in_any_form_and_none_for_a_time(until, expected):
    assert _parse_moment("--until", until, end_of_day=True) == expected
