"""Rows DuckDB encodes as JSON itself decode to exactly the dicts of the plain reads, page for page."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from ccproxy_core.plugin_host.log_store import SORTABLE_COLUMNS, EncodedRowReads, EncodedRows, LogFilters, NameFilter
from ccproxy_duckdb import json_rows
from tests.duckdb_records import NOW, numbered_record, open_store, write_all

AWKWARD_TEXT = 'quote " backslash \\ newline \n nul \x00 unit \x1f del \x7f é \u2028 😀 </script>'


def awkward_record(number: int):
    """Records whose values are hard to encode: escapes, extreme floats, microseconds, nulls, empty dicts."""
    changes = {
        "timestamp": NOW - timedelta(seconds=number // 3, microseconds=number % 4),  # ties and fractions
        "model": ["claude-sonnet-4-5", "gpt-5", None][number % 3],
        "error_message": AWKWARD_TEXT if number % 2 else None,
        "duration_ms": [0.1 + 0.2, 5e-324, 1.7976931348623157e308, 812.5][number % 4],
        "ttft_ms": None if number % 5 == 0 else number / 7,
        "cost_usd": [Decimal("123456.123456789"), None, Decimal("0.000000001")][number % 3],
        "rate_limits": {} if number % 2 else {"requests_remaining": 49.0, "reset": "2026-12-01T00:00:00Z"},
        "tags": {"team": AWKWARD_TEXT, "n": str(number)} if number % 3 else {},
        "streaming": number % 2 == 0,
        "session_id": f"session-{number % 4}" if number % 5 else None,
    }
    return numbered_record(number, **changes)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = open_store(tmp_path_factory.mktemp("encoded"))
    write_all(opened, [awkward_record(number) for number in range(60)])
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def small_slices(monkeypatch):
    monkeypatch.setattr(json_rows, "ROWS_PER_SLICE", 4)  # pages span several slices


def run(coroutine):
    return asyncio.run(coroutine)


def decode(rows: EncodedRows) -> list[dict]:
    decoded = json.loads(b"[" + b",".join(rows.slices) + b"]")
    assert len(decoded) == rows.count == len(rows)
    return decoded


def test_the_store_offers_encoded_reads(store):
    assert isinstance(store, EncodedRowReads)


@pytest.mark.parametrize(
    "filters",
    [
        LogFilters(),
        LogFilters(model=NameFilter(include=("gpt-5",))),
        LogFilters(model=NameFilter(exclude=("gpt-5",)), streaming=True),
        LogFilters(start_time=NOW - timedelta(seconds=10), end_time=NOW - timedelta(seconds=2)),
    ],
)
def test_query_pages_decode_to_the_plain_pages(store, filters):
    after, pages = None, 0
    while True:
        plain = run(store.query(filters, 7, after))
        encoded, next_position = run(store.query_encoded(filters, 7, after))
        assert decode(encoded) == plain.rows
        assert next_position == plain.next_position
        pages += 1
        if next_position is None:
            break
        after = next_position
    assert pages >= 2 or filters != LogFilters()


def test_an_empty_page_is_an_empty_list(store):
    encoded, next_position = run(store.query_encoded(LogFilters(model=NameFilter(include=("none",))), 10))
    assert encoded.slices == [] and encoded.count == 0 and next_position is None


@pytest.mark.parametrize("order_by", SORTABLE_COLUMNS)
def test_entries_decode_to_the_plain_entries_for_every_order(store, order_by):
    for order_desc in (True, False):
        for page in (1, 3, 40):
            plain_rows, plain_total = run(store.entries(page, 9, order_by, order_desc))
            encoded, total = run(store.entries_encoded(page, 9, order_by, order_desc))
            assert decode(encoded) == plain_rows
            assert total == plain_total == 60


def test_entries_refuse_an_unknown_column(store):
    with pytest.raises(ValueError, match="order_by must be one of"):
        run(store.entries_encoded(1, 10, '"; DROP TABLE access_logs', True))


@pytest.mark.parametrize("session_id", ["session-1", "session-2", "no-such-session"])
def test_a_sessions_requests_decode_to_the_plain_rows(store, session_id):
    for limit in (1, 5, 100):
        plain = run(store.session_requests(session_id, limit))
        assert decode(run(store.session_requests_encoded(session_id, limit))) == plain
    assert len(plain) == (0 if session_id == "no-such-session" else 12)


def test_a_sessions_requests_stop_at_the_page_size_cap_and_say_so(store, monkeypatch):
    # Before, a session's answer held every row asked for (up to 10,000 at their size caps, some 80 MB).
    whole = run(store.session_requests_encoded("session-1", 100))
    assert (len(whole), whole.truncated) == (12, False)
    sizes = [len(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()) for row in decode(whole)]
    monkeypatch.setattr(json_rows, "PAGE_BYTES", sum(sizes[:3]) + 3)
    cut = run(store.session_requests_encoded("session-1", 100))
    assert cut.truncated and 1 <= len(cut) < 12
    assert decode(cut) == decode(whole)[: len(cut)]  # the oldest rows, in order
    assert not run(store.session_requests_encoded("session-1", len(cut))).truncated  # the limit, not the cap


def test_a_json_column_that_is_not_json_reads_as_empty_in_both_forms(tmp_path):
    store = open_store(tmp_path)
    try:
        write_all(store, [awkward_record(number) for number in range(3)])
        with store.database.read_cursor() as cursor:
            cursor.execute(
                "UPDATE access_logs SET rate_limits = 'not json', tags = '{\"cut' WHERE request_id = 'req-0001'"
            )
        plain = run(store.query(LogFilters(), 10)).rows
        encoded, _ = run(store.query_encoded(LogFilters(), 10))
        assert decode(encoded) == plain
        broken = next(row for row in plain if row["request_id"] == "req-0001")
        assert broken["rate_limits"] == {} and broken["tags"] == {}
    finally:
        store.close()
