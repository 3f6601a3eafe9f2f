"""Analytics from rollups agree with the exact scan of the same rows, on a real DuckDB file.

Counts, tokens and cost are equal; the average duration equal up to float rounding; every
percentile within the stated relative error of the exact nearest-rank percentile.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter
from ccproxy_core.testing import wait_until
from ccproxy_duckdb import rollup_sql
from ccproxy_duckdb.analytics import analytics
from ccproxy_duckdb.database import Database
from ccproxy_duckdb.queries import delete_all, delete_older_than
from ccproxy_duckdb.rollup_keeper import RollupKeeper, read_watermarks
from ccproxy_duckdb.rollups import answer_analytics, plan, rollup_analytics, rollups_can_filter
from ccproxy_duckdb.rollups_answer import Percentiles
from ccproxy_duckdb.rows import record_to_row
from ccproxy_duckdb.schema import MIGRATIONS
from ccproxy_duckdb.writer import LogWriter

NOW = datetime.now(UTC)
ERROR = rollup_sql.MAX_RELATIVE_ERROR
MODELS = ("claude-sonnet-4-5", "gpt-4o", None, "o3")
ENDPOINTS = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
STATUSES = (200, 200, 200, 200, 429, 500, 502, 400)


def make_record(number: int, age: timedelta, chance: random.Random) -> AccessRecord:
    """A varied record ``age`` before NOW: models (one unknown), statuses, NULL ttft, errors on 200s."""
    status = chance.choice(STATUSES)
    tokens_in = chance.randint(0, 50_000)
    return AccessRecord(
        request_id=f"roll-{number:07d}",
        timestamp=NOW - age,
        method="POST",
        endpoint=chance.choice(ENDPOINTS),
        path="/v1/messages",
        query="",
        client_ip="127.0.0.1",
        user_agent="pytest",
        service_type=chance.choice(("anthropic", "openai")),
        model=chance.choice(MODELS),
        streaming=chance.random() < 0.5,
        status_code=status,
        duration_ms=chance.lognormvariate(6, 1.5),
        duration_seconds=1.0,
        tokens_input=tokens_in,
        tokens_output=chance.randint(0, 4000),
        cache_read_tokens=chance.randint(0, 9000),
        cache_write_tokens=chance.randint(0, 500),
        cost_usd=Decimal(tokens_in) * Decimal("0.000003"),
        cost_sdk_usd=None,
        ttft_ms=chance.lognormvariate(5, 1) if chance.random() < 0.6 else None,
        upstream_status=status,
        upstream_duration_ms=1.0,
        proxy_overhead_ms=0.3,
        error_type="upstream_stream_aborted" if status == 200 and chance.random() < 0.05 else None,
        response_model=None,
        cost_input_usd=None,
        cost_output_usd=None,
        cost_cache_read_usd=None,
        cost_cache_write_usd=None,
        priced=chance.random() < 0.9,
        request_bytes=100,
        response_bytes=100,
        rate_limits={},
    )


def write(database: Database, records: list[AccessRecord]) -> None:
    writer = LogWriter(database, queue_size=len(records) + 1, batch_size=500, flush_interval=0.05)
    writer.start()
    for record in records:
        writer.submit(record)
    wait_until(lambda: writer.stats()["rows_written"] >= len(records), timeout=120)
    writer.close()


def assert_same_answer(rolled: dict, exact: dict) -> None:
    """Everything equal but the percentiles (within ERROR) and averages (float rounding)."""
    assert rolled.keys() == exact.keys()
    for key in ("totals", "tokens", "recent_errors", "by_model", "by_service_type", "timeseries", "cost"):
        assert_close(rolled[key], exact[key], path=key)
    assert_close(rolled["duration_ms"], exact["duration_ms"], path="duration_ms")
    assert_close(rolled["ttft_ms"], exact["ttft_ms"], path="ttft_ms")


def assert_close(rolled, exact, path: str) -> None:
    if isinstance(exact, dict):
        assert rolled.keys() == exact.keys(), path
        for key in exact:
            assert_close(rolled[key], exact[key], f"{path}.{key}")
    elif isinstance(exact, list):
        assert len(rolled) == len(exact), path
        for index, (left, right) in enumerate(zip(rolled, exact, strict=True)):
            assert_close(left, right, f"{path}[{index}]")
    elif isinstance(exact, float) and path.endswith(("p50", "p95", "p99", "p50_ms", "p95_ms", "p99_ms")):
        assert rolled == pytest.approx(exact, rel=ERROR * (1 + 1e-9)), path
    elif isinstance(exact, float) and (path.endswith(".avg") or "error_rate" in path or "per_request" in path):
        assert rolled == pytest.approx(exact, rel=1e-9), path
    else:
        assert rolled == exact and type(rolled) is type(exact), path


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A schema-2 file with three days of rows (some after the watermarks), migrated to rollups on open."""
    path = tmp_path_factory.mktemp("rollups") / "logs.duckdb"
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    for step in MIGRATIONS[:2]:
        for statement in step.statements:
            connection.execute(statement)
        connection.execute("INSERT INTO schema_version VALUES (?, ?)", [step.version, NOW])
    connection.close()
    chance = random.Random(7)
    older = [make_record(n, timedelta(seconds=chance.uniform(180, 3 * 86_400)), chance) for n in range(6000)]
    database = Database.open(str(path))
    write(database, older)  # all before the watermarks: they reach the rollups as late rows
    database.close()
    database = Database.open(str(path))  # a second open must leave the rollups alone
    recent = [make_record(6000 + n, timedelta(seconds=chance.uniform(0, 170)), chance) for n in range(300)]
    write(database, recent)
    yield database
    database.close()


def compare(database: Database, filters: LogFilters, bucket: str) -> list:
    cursor = database.cursor()
    try:
        pieces = plan(filters, bucket, read_watermarks(cursor))
        assert any(level is not None for level, _, _ in pieces), "the window must use rollups"
        assert any(level is None for level, _, _ in pieces), "and raw rows at its edges"
        rolled = rollup_analytics(cursor, filters, bucket, pieces)
        exact = analytics(cursor, filters, bucket)
    finally:
        cursor.close()
    assert exact["totals"]["requests"] > 0
    assert_same_answer(rolled, exact)
    return pieces


WINDOWS = {
    "24h, odd seconds": (timedelta(hours=24, seconds=17), timedelta(seconds=-1)),
    "7 days": (timedelta(days=7), timedelta(seconds=-1)),
    "3h ending 1h ago": (timedelta(hours=4, seconds=29), timedelta(hours=1, seconds=3)),
}


CASES = [
    (window, bucket)
    for window in WINDOWS
    for bucket in ("minute", "hour", "day")
    if bucket != "minute" or WINDOWS[window][0] < timedelta(hours=5)
]  # the API refuses more minute points


@pytest.mark.parametrize(("window", "bucket"), CASES, ids=[f"{w}-{b}" for w, b in CASES])
def test_rollups_answer_as_the_exact_scan(filled, window, bucket):
    back, forward_gap = WINDOWS[window]
    filters = LogFilters(start_time=NOW - back, end_time=NOW - forward_gap)
    pieces = compare(filled, filters, bucket)
    if bucket != "minute":
        assert any(level is rollup_sql.HOUR for level, _, _ in pieces)


FILTERS = {
    "model in": {"model": NameFilter(include=("gpt-4o", "o3"))},
    "model not (keeps unknown)": {"model": NameFilter(exclude=("gpt-4o",))},
    "4xx and 502": {"status_classes": (4,), "status_codes": (502,)},
    "streaming, one endpoint": {"streaming": True, "endpoint": NameFilter(include=("/v1/responses",))},
    "service type": {"service_type": NameFilter(include=("openai",))},
}


@pytest.mark.parametrize("name", FILTERS, ids=list(FILTERS))
def test_rollups_apply_every_filter_as_the_exact_scan(filled, name):
    filters = LogFilters(start_time=NOW - timedelta(hours=30, seconds=5), end_time=NOW, **FILTERS[name])
    compare(filled, filters, "hour")


def test_short_windows_and_unknown_filters_take_the_exact_scan(filled):
    short = LogFilters(start_time=NOW - timedelta(hours=1), end_time=NOW)
    cursor = filled.cursor()
    try:
        observed = {
            row[0]
            for row in cursor.execute(
                'SELECT duration_ms FROM access_logs WHERE "timestamp" >= ? AND "timestamp" < ?',
                [short.start_time, short.end_time],
            ).fetchall()
        }
        answer = answer_analytics(cursor, short, "minute")
    finally:
        cursor.close()
    assert answer["duration_ms"]["p50"] in observed  # exact: an observed duration, not a bin's middle


def test_a_filter_the_rollups_do_not_keep_sends_the_query_to_the_exact_scan():
    @dataclass(frozen=True, slots=True)
    class WithRegion(LogFilters):  # a filter kind the rollups have no column for
        region: tuple[str, ...] = ()

    window = {"start_time": NOW - timedelta(days=1), "end_time": NOW}
    assert rollups_can_filter(WithRegion(**window, model=NameFilter(include=("o3",))))
    assert not rollups_can_filter(WithRegion(**window, region=("eu",)))


def test_writer_rolls_up_closed_buckets_and_late_rows(tmp_path):
    database = Database.open(str(tmp_path / "writer.duckdb"))
    cursor = database.cursor()
    hours_ago = rollup_sql.HOUR.floor(int(NOW.timestamp() * 1e6) - 5 * 3_600_000_000)
    cursor.execute("UPDATE rollup_watermark SET watermark_us = ?", [hours_ago])  # as if the proxy was down 5 h
    chance = random.Random(11)
    first = [make_record(n, timedelta(seconds=chance.uniform(0, 8 * 3600)), chance) for n in range(3000)]
    write(database, first)
    marks = read_watermarks(cursor)
    assert marks["minute"] > hours_ago and marks["hour"] > hours_ago  # the writer moved both
    late = [make_record(5000 + n, timedelta(seconds=chance.uniform(200, 9 * 3600)), chance) for n in range(500)]
    write(database, late)  # every one before the watermarks
    cursor.close()
    compare(database, LogFilters(start_time=NOW - timedelta(hours=10), end_time=NOW + timedelta(seconds=1)), "hour")
    compare(database, LogFilters(start_time=NOW - timedelta(hours=3, seconds=7), end_time=NOW), "minute")
    database.close()


def test_hours_are_summed_from_the_minute_rollups_not_read_back_from_the_raw_rows(tmp_path):
    """Rolling an hour up from its raw rows read the whole hour back from the file; its minutes hold the same sums."""
    database = Database.open(str(tmp_path / "hours.duckdb"))
    cursor = database.cursor()
    chance = random.Random(3)
    records = [make_record(n, timedelta(seconds=chance.uniform(2.2 * 3600, 4 * 3600)), chance) for n in range(2000)]
    with cursor.appender("access_logs") as appender:
        appender.append_rows([record_to_row(record) for record in records])
    now = int(time.time() * 1_000_000)
    for statement in rollup_sql.fill_statements(rollup_sql.MINUTE, "access_logs", ""):
        cursor.execute(statement)
    minute_mark = rollup_sql.MINUTE.floor(now - rollup_sql.MARGIN_MICROS)
    hour_mark = rollup_sql.HOUR.floor(now - 5 * 3_600_000_000)
    cursor.execute("UPDATE rollup_watermark SET watermark_us = ? WHERE level = 'minute'", [minute_mark])
    cursor.execute("UPDATE rollup_watermark SET watermark_us = ? WHERE level = 'hour'", [hour_mark])
    cursor.execute("DELETE FROM access_logs")  # what the hour's rollup may not need

    keeper = RollupKeeper()
    keeper.accept(keeper.after_append(cursor, []))

    sums = cursor.execute("SELECT sum(requests), sum(tokens_input), sum(cost_usd) FROM rollup_hour").fetchone()
    bins = dict(cursor.execute("SELECT metric, sum(n) FROM latency_hour GROUP BY metric").fetchall())
    hours = cursor.execute("SELECT count(DISTINCT t_us) FROM rollup_hour").fetchone()[0]
    cursor.close()
    database.close()
    assert sums == (2000, sum(r.tokens_input for r in records), sum(r.cost_usd for r in records))
    assert bins == {rollup_sql.DURATION: 2000, rollup_sql.TTFT: sum(r.ttft_ms is not None for r in records)}
    assert 2 <= hours <= 3  # the records' hours, one bucket each


def test_retention_and_reset_keep_rollups_in_step(tmp_path):
    database = Database.open(str(tmp_path / "retention.duckdb"))
    chance = random.Random(5)
    write(database, [make_record(n, timedelta(seconds=chance.uniform(200, 2 * 86_400)), chance) for n in range(3000)])
    cursor = database.cursor()
    deleted = delete_older_than(cursor, NOW - timedelta(days=1), database.maintenance_lock)
    (oldest,) = cursor.execute('SELECT min(epoch_us("timestamp")) FROM access_logs').fetchone()
    cursor.close()
    assert deleted > 0 and oldest >= (NOW - timedelta(days=1, hours=1)).timestamp() * 1e6
    compare(database, LogFilters(start_time=NOW - timedelta(days=3), end_time=NOW), "hour")
    cursor = database.cursor()
    assert delete_all(cursor, database.maintenance_lock) > 0
    counts = [cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in rollup_sql.rollup_tables()]
    answer = answer_analytics(cursor, LogFilters(start_time=NOW - timedelta(days=3), end_time=NOW), "hour")
    cursor.close()
    database.close()
    assert counts == [0, 0, 0, 0]
    assert answer["totals"]["requests"] == 0 and answer["duration_ms"]["p50"] is None


@pytest.mark.parametrize("size", [1, 2, 3, 10, 99, 1000, 5001])
def test_percentiles_from_bins_are_within_the_stated_error(size):
    chance = random.Random(size)
    values = [chance.lognormvariate(4, 2) for _ in range(size)] + [0.0, 0.004]
    connection = duckdb.connect()
    connection.execute("CREATE TABLE v (duration_ms DOUBLE)")
    connection.executemany("INSERT INTO v VALUES (?)", [(value,) for value in values])
    quantiles = [0.5, 0.9, 0.95, 0.99, 1.0]
    (exact,) = connection.execute(f"SELECT quantile_disc(duration_ms, {quantiles}) FROM v").fetchone()
    merged = Percentiles()
    for bin_number, count in connection.execute(
        f"SELECT {rollup_sql.bin_sql('duration_ms')} AS b, count(*) FROM v GROUP BY b ORDER BY b"
    ).fetchall():
        merged.add(bin_number, count)
    for found, expected in zip(merged.values(tuple(quantiles)), exact, strict=True):
        if expected < rollup_sql.SMALLEST_MS:
            assert found == 0.0
        else:
            assert math.isclose(found, expected, rel_tol=ERROR * (1 + 1e-9))


def test_many_models_give_the_busiest_ten_and_one_row_for_the_rest_by_either_path(tmp_path):
    # Only the rows shown are read out of the store (100,000 names took a read 2 s when all were).
    chance = random.Random(11)
    models = [None, *(f"model-{n:02d}" for n in range(40))]
    records = []
    for number in range(3000):
        record = make_record(number, timedelta(seconds=chance.uniform(180, 2 * 86_400)), chance)
        model = models[min(int(chance.expovariate(0.15)), len(models) - 1)]  # the unnamed model busiest
        records.append(dataclasses.replace(record, model=model))
    database = Database.open(str(tmp_path / "logs.duckdb"))
    write(database, records)
    filters = LogFilters(start_time=NOW - timedelta(days=3), end_time=NOW + timedelta(seconds=1))
    cursor = database.cursor()
    try:
        assert any(level is not None for level, _, _ in plan(filters, "hour", read_watermarks(cursor)))
        exact, rolled = analytics(cursor, filters, "hour"), answer_analytics(cursor, filters, "hour")
    finally:
        cursor.close()
        database.close()
    assert_same_answer(rolled, exact)
    counts = Counter(record.model for record in records)
    busiest = sorted(counts, key=lambda model: (-counts[model], model is None, model or ""))[:10]
    assert [row["model"] for row in exact["by_model"]] == [*busiest, "other"]
    rest = [record for record in records if record.model not in busiest]
    assert exact["by_model"][-1] == {
        "model": "other",
        "rest": True,
        **exact["by_model"][-1],
        "requests": len(rest),
        "tokens_total": sum(
            r.tokens_input + r.tokens_output + r.cache_read_tokens + r.cache_write_tokens for r in rest
        ),
        "cost_usd": pytest.approx(float(sum(record.cost_usd for record in rest))),
        "p95_ms": None,
    }
    unnamed = sorted(record.duration_ms for record in records if record.model is None)
    assert exact["by_model"][0]["p95_ms"] == unnamed[math.ceil(0.95 * len(unnamed)) - 1]
