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
    ],
)
def test_unix_seconds_are_read_exactly(text, expected):
    assert unix_time(text) == expected


def test_the_report_takes_a_finer_since_at_the_next_microsecond_as_the_logs_api_does():
    # Before, it dropped the digits: a row 100 ns before --since was counted, which /logs leaves out.
    assert _parse_moment("--since", "2026-12-07T03:34:53.0828071Z", end_of_day=False) == MOMENT.replace(
        microsecond=82808
    )
    with pytest.raises(click.BadParameter):
        _parse_moment("--since", "yesterday", end_of_day=False)
