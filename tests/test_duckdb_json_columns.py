"""The record's dict fields (rate limits, tags) read back from DuckDB exactly as they were, whatever their text."""

from __future__ import annotations

import asyncio

from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_duckdb.rows import record_to_row
from ccproxy_duckdb.schema import COLUMNS
from tests.duckdb_records import numbered_record, open_store, write_all

WIDE_TEXT = 'é 😀 \u2028 </script> quote " backslash \\ nul \x00'
RATE_LIMITS = {"requests-limit": 4000.0, "tokens-remaining": 1e16, "reset-seconds": 0.1 + 0.2, "ümlaut": 5e-324}


def stored_rows(store, filters=None):
    return asyncio.run(store.query(filters or LogFilters(), 10)).rows


def test_wide_text_and_extreme_numbers_read_back_unchanged_and_filter_by_tag(tmp_path):
    store = open_store(tmp_path)
    try:
        record = numbered_record(1, tags={"team": WIDE_TEXT, "n": "1"}, rate_limits=RATE_LIMITS)
        write_all(store, [record, numbered_record(2, tags={"team": "other"})])
        (row,) = stored_rows(store, LogFilters(tags=(("team", WIDE_TEXT),)))
    finally:
        store.close()
    assert row["request_id"] == record.request_id
    assert row["tags"] == {"team": WIDE_TEXT, "n": "1"}
    assert row["rate_limits"] == RATE_LIMITS


def test_text_no_utf_8_can_hold_is_stored_all_the_same(tmp_path):
    lone = "half a pair \ud800"
    row = record_to_row(numbered_record(3, tags={"team": lone}))
    assert row[COLUMNS.index("tags")] == '{"team":"half a pair \\ud800"}'
    store = open_store(tmp_path)
    try:
        write_all(store, [numbered_record(3, tags={"team": lone}), numbered_record(4)])
        rows = {row["request_id"]: row for row in stored_rows(store)}
        assert store.stats()["dropped_records"] == 0
    finally:
        store.close()
    assert rows["req-0003"]["tags"] == {"team": lone}
