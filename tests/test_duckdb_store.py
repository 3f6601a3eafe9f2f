"""The DuckDB log store on a real file: writing, filters, pages, entries, analytics, reset, retention."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS
from ccproxy_core.plugin_host.log_store import STATS_KEYS, LogFilters, LogStore, NameFilter
from ccproxy_core.testing import wait_until
from ccproxy_duckdb.database import Database
from ccproxy_duckdb.retention import RetentionWorker
from ccproxy_duckdb.schema import MONEY
from ccproxy_duckdb.writer import APPEND_CHUNK_ROWS, LogWriter
from tests.duckdb_records import NOW, numbered_record, open_store, write_all


@pytest.fixture
def store(tmp_path):
    opened = open_store(tmp_path)
    yield opened
    opened.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_store_satisfies_the_log_store_protocol(store):
    assert isinstance(store, LogStore)
    assert set(store.stats()) == set(STATS_KEYS)


def test_rows_keep_every_field_with_exact_types(store, tmp_path):
    record = numbered_record(3, cost_usd=Decimal("0.123456789"), cost_sdk_usd=Decimal("0.5"), error_type=None)
    write_all(store, [record])
    (row,) = run(store.query(LogFilters(), 10)).rows
    assert row == record.to_dict()
    types = dict(
        store.database.cursor()
        .execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'access_logs'")
        .fetchall()
    )
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["cost_usd"] == types["cost_cache_write_usd"] == types["cost_tools_usd"] == "DECIMAL(38,12)"
    assert types["tokens_input"] == "BIGINT" and types["status_code"] == "INTEGER"
    assert list(types) == list(ACCESS_LOG_COLUMNS)
    stored_cost = store.database.cursor().execute("SELECT cost_usd FROM access_logs").fetchone()[0]
    assert stored_cost == Decimal("0.123456789")


@pytest.mark.parametrize(
    "cost",
    [
        "0.0000000015",
        "0.0000000000015",
        "0.0000000000025",
        "-0.0000000000005",
        "1E-13",
        "4.9999999999995E-12",
        "1.23456789012345",
        "999999999.9999999999994",
        "0",
    ],
)
def test_money_is_stored_as_duckdb_rounds_a_decimal(store, cost):
    record = numbered_record(1, cost_usd=Decimal(cost), cost_output_usd=Decimal(cost), cost_tools_usd=Decimal(cost))
    write_all(store, [record])
    cursor = store.database.cursor()
    (expected,) = cursor.execute(f"SELECT ?::{MONEY}", [Decimal(cost)]).fetchone()
    stored = cursor.execute("SELECT cost_usd, cost_output_usd, cost_tools_usd FROM access_logs").fetchone()
    assert stored == (expected, expected, expected)


def test_unpriced_row_keeps_null_cost_and_the_flag(store):
    write_all(
        store,
        [
            numbered_record(
                1,
                model="mystery",
                cost_usd=None,
                cost_input_usd=None,
                cost_output_usd=None,
                cost_cache_read_usd=None,
                cost_cache_write_usd=None,
                priced=False,
            )
        ],
    )
    (row,) = run(store.query(LogFilters(), 10)).rows
    assert row["cost_usd"] is None and row["priced"] is False


def test_query_filters_combine(store):
    records = [
        numbered_record(1, model="gpt-4o", service_type="openai", endpoint="/v1/chat/completions"),
        numbered_record(2, model=None, status_code=404, error_type="not_found", endpoint="unmatched"),
        numbered_record(3, status_code=429, error_type="rate_limit_error"),
        numbered_record(4, streaming=True),
        numbered_record(5, timestamp=NOW - timedelta(hours=3)),
    ]
    write_all(store, records)

    def ids(**filters) -> list[str]:
        return [row["request_id"] for row in run(store.query(LogFilters(**filters), 100)).rows]

    assert ids(model=NameFilter(include=("gpt-4o",))) == ["req-0001"]
    assert ids(model=NameFilter(exclude=("claude-sonnet-4-5",))) == ["req-0001", "req-0002"]  # null model kept
    assert ids(service_type=NameFilter(exclude=("openai",)), streaming=False) == ["req-0003", "req-0005"]
    assert ids(status_classes=(4,)) == ["req-0002", "req-0003"]
    assert ids(status_codes=(200,), status_classes=(4,), endpoint=NameFilter(include=("unmatched",))) == ["req-0002"]
    assert ids(start_time=NOW - timedelta(hours=1)) == ["req-0001", "req-0002", "req-0003", "req-0004"]
    assert ids(end_time=NOW - timedelta(hours=1)) == ["req-0005"]


def test_keyset_pages_visit_every_row_once_even_with_equal_timestamps(store):
    same_time = NOW - timedelta(minutes=1)
    records = [numbered_record(n, timestamp=same_time if n < 7 else NOW - timedelta(seconds=n)) for n in range(12)]
    write_all(store, records)
    seen, after = [], None
    while True:
        page = run(store.query(LogFilters(), 5, after))
        seen += [row["request_id"] for row in page.rows]
        if page.next_position is None:
            break
        after = page.next_position
    assert sorted(seen) == sorted(record.request_id for record in records)
    assert len(seen) == len(set(seen))
    timestamps = [row["timestamp"] for row in run(store.query(LogFilters(), 100)).rows]
    assert timestamps == sorted(timestamps, reverse=True)


def test_entries_order_page_and_total(store):
    write_all(store, [numbered_record(n) for n in range(7)])
    rows, total = run(store.entries(1, 3, "duration_ms", False))
    assert total == 7
    assert [row["duration_ms"] for row in rows] == [10.0, 20.0, 30.0]
    rows, _ = run(store.entries(3, 3, "duration_ms", False))
    assert [row["duration_ms"] for row in rows] == [70.0]
    rows, total = run(store.entries(1, 10, "tokens_output", True, LogFilters(streaming=True)))
    assert total == 4 and [row["tokens_output"] for row in rows] == [26, 24, 22, 20]
    with pytest.raises(ValueError, match="order_by"):
        run(store.entries(1, 10, "1; DROP TABLE access_logs", True))


def test_analytics_totals_breakdowns_and_series(store):
    records = [numbered_record(n) for n in range(10)]
    records.append(
        numbered_record(10, status_code=429, error_type="rate_limit_error", model="gpt-4o", service_type="openai")
    )
    records.append(numbered_record(11, error_type="upstream_stream_aborted"))  # a 200 cut mid-stream is an error too
    records.append(numbered_record(12, timestamp=NOW - timedelta(days=3)))  # outside the window
    write_all(store, records)
    inside = records[:12]
    window = LogFilters(start_time=NOW - timedelta(hours=1), end_time=NOW + timedelta(seconds=1))
    result = run(store.analytics(window, "minute"))

    assert result["totals"] == {"requests": 12, "successes": 10, "errors": 2, "error_rate": 2 / 12}
    assert result["tokens"] == {
        "input": sum(r.tokens_input for r in inside),
        "output": sum(r.tokens_output for r in inside),
        "cache_read": sum(r.cache_read_tokens for r in inside),
        "cache_write": sum(r.cache_write_tokens for r in inside),
        "total": sum(r.tokens_input + r.tokens_output + r.cache_read_tokens + r.cache_write_tokens for r in inside),
    }
    assert result["cost"]["total_usd"] == pytest.approx(float(sum(r.cost_usd for r in inside)), abs=1e-12)
    assert result["duration_ms"]["avg"] == pytest.approx(sum(r.duration_ms for r in inside) / 12)
    assert result["duration_ms"]["p50"] == 60.0  # nearest rank: an observed duration
    assert {m["model"]: m["requests"] for m in result["by_model"]} == {"claude-sonnet-4-5": 11, "gpt-4o": 1}
    assert result["by_model"][0]["errors"] == 1
    assert {s["service_type"]: s["errors"] for s in result["by_service_type"]} == {"anthropic": 1, "openai": 1}
    points = result["timeseries"]["points"]
    assert result["timeseries"]["bucket"] == "minute"
    assert len(points) == 61 and sum(p["requests"] for p in points) == 12
    assert [e["request_id"] for e in result["recent_errors"]] == ["req-0010", "req-0011"]
    assert result["recent_errors"][0]["error_type"] == "rate_limit_error"


def test_analytics_of_an_empty_window(store):
    window = LogFilters(start_time=NOW - timedelta(days=2), end_time=NOW)
    result = run(store.analytics(window, "day"))
    assert result["totals"] == {"requests": 0, "successes": 0, "errors": 0, "error_rate": 0.0}
    assert result["duration_ms"]["p95"] is None and result["cost"]["total_usd"] == 0.0  # nothing was spent
    assert result["cost"]["per_request_usd"] is None  # before: 0, a cost per request of no request
    assert len(result["timeseries"]["points"]) in (2, 3) and result["by_model"] == []


def test_reset_deletes_and_counts(store):
    write_all(store, [numbered_record(n) for n in range(4)])
    assert run(store.reset()) == 4
    assert run(store.describe())["row_count"] == 0


def test_full_queue_drops_the_newest_records_and_counts_them(tmp_path):
    database = Database.open(str(tmp_path / "queue.duckdb"))
    writer = LogWriter(database, queue_size=3, batch_size=100, flush_interval=0.05)
    for n in range(5):  # the writer is not started yet, so the queue fills
        writer.submit(numbered_record(n))
    assert writer.stats()["queue_depth"] == 3 and writer.stats()["dropped_records"] == 2
    writer.start()
    try:
        wait_until(lambda: writer.stats()["rows_written"] == 3)
    finally:
        writer.close()
    stored = database.cursor().execute("SELECT request_id FROM access_logs ORDER BY request_id").fetchall()
    database.close()
    assert [row[0] for row in stored] == ["req-0000", "req-0001", "req-0002"]


def test_a_refused_row_costs_only_itself(store):
    bad = numbered_record(2, cost_usd=Decimal("1e27"))  # does not fit DECIMAL(38,12)
    write_all(store, [numbered_record(1), numbered_record(3)])
    store.submit(numbered_record(4))
    store.submit(bad)
    store.submit(numbered_record(5))
    wait_until(lambda: store.stats()["dropped_records"] == 1)
    wait_until(lambda: store.stats()["rows_written"] == 4)
    assert store.stats()["write_errors"] == 1
    ids = {row["request_id"] for row in run(store.query(LogFilters(), 10)).rows}
    assert ids == {"req-0001", "req-0003", "req-0004", "req-0005"}


def test_a_refused_row_late_in_a_large_batch_costs_only_itself(tmp_path):
    database = Database.open(str(tmp_path / "large.duckdb"))
    writer = LogWriter(database, queue_size=1_000, batch_size=500, flush_interval=0.05)
    records = [numbered_record(n) for n in range(APPEND_CHUNK_ROWS + 20)]
    records[-5] = numbered_record(len(records) - 5, cost_usd=Decimal("1e27"))  # in the second appender call
    for record in records:  # queued before the writer starts: one batch
        writer.submit(record)
    writer.start()
    try:
        # Then each row goes alone, in a transaction of its own: some 25 ms each.
        wait_until(lambda: writer.stats()["rows_written"] == len(records) - 1, timeout=60)
    finally:
        writer.close()
    stored = database.cursor().execute("SELECT request_id FROM access_logs ORDER BY request_id").fetchall()
    database.close()
    assert [row[0] for row in stored] == [r.request_id for r in records if r is not records[-5]]
    assert writer.stats()["dropped_records"] == 1


def test_retention_deletes_only_old_rows_and_says_where_it_cut(tmp_path, caplog):
    store = open_store(tmp_path, log_retention_days=1)
    try:
        wait_until(lambda: store.retention.runs >= 1)
        write_all(store, [numbered_record(1), numbered_record(2, timestamp=NOW - timedelta(days=2))])
        with caplog.at_level(logging.INFO, logger="ccproxy.duckdb"):
            assert store.retention.run_once() == 1
        assert [row["request_id"] for row in run(store.query(LogFilters(), 10)).rows] == ["req-0001"]
    finally:
        store.close()
    # The cut is on the hour (rollups keep whole hours): the line says so, not the age to the microsecond.
    [line] = [r.getMessage() for r in caplog.records if "retention deleted" in r.getMessage()]
    assert line.endswith(":00:00+00:00"), line


def test_retention_runs_at_start_up(tmp_path):
    store = open_store(tmp_path)
    write_all(store, [numbered_record(1), numbered_record(2, timestamp=NOW - timedelta(days=40))])
    store.close()
    store = open_store(tmp_path, log_retention_days=30)
    try:
        wait_until(lambda: store.retention.deleted == 1)
        assert run(store.describe())["row_count"] == 1
    finally:
        store.close()


def test_retention_at_its_longest_runs(tmp_path):
    store = open_store(tmp_path, log_retention_days=36_500)
    try:
        write_all(store, [numbered_record(1)])
        wait_until(lambda: store.retention.runs >= 1)
        assert store.retention.run_once() == 0
    finally:
        store.close()


def test_a_retention_pass_that_fails_unexpectedly_is_one_line_and_the_next_pass_runs(tmp_path, caplog):
    # Before, an error other than DuckDB's (a cutoff before year 1) ended the thread with a traceback.
    database = Database.open(str(tmp_path / "retention.duckdb"))
    retention = RetentionWorker(database, days=1_000_000, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="ccproxy.duckdb"):
        retention.start()
        try:
            wait_until(lambda: len(caplog.records) >= 2)
        finally:
            retention.close()
            database.close()
    assert caplog.records[0].getMessage() == "retention failed (will retry): OverflowError: date value out of range"


def test_close_writes_everything_still_queued(tmp_path):
    store = open_store(tmp_path, log_flush_interval_seconds=60, log_batch_size=1000)
    for n in range(250):
        store.submit(numbered_record(n))
    store.close()
    with duckdb.connect(str(tmp_path / "logs.duckdb")) as connection:
        assert connection.execute("SELECT count(*) FROM access_logs").fetchone()[0] == 250
