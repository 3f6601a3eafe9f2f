"""How fast the DuckDB log store writes and answers.

1. Writer ingest: AccessRecords queued as the proxy does (``submit``), timed until the background
   writer has inserted them all: with the queue filled first (the writer alone), and while the
   main thread is still submitting (both compete for the GIL); also the cost of one ``submit``.
   Then the writer fed at a steady ``--steady-rate`` records a second, as a busy proxy feeds it:
   the CPU time of its thread per record; and the longest the writer keeps a busy main thread
   (a pure-Python loop, as the event loop is) from running while it writes a batch of 1,000.
2. Read latency over ``--rows`` generated rows (DuckDB SQL fills the file in seconds): the store
   methods behind /logs/query, /logs/entries and /logs/analytics, median of ``--runs`` runs.

    python benchmarks/bench_storage.py [--rows 1000000] [--ingest-rows 200000] [--runs 7] [--days 1]

Rows are spread evenly over the last ``--days`` days, so with the default (1) the default
analytics window (24 h) covers every row: the worst case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchlib.processes import read_cpu_seconds
from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter
from ccproxy_core.testing import make_record
from ccproxy_duckdb.database import Database
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore
from ccproxy_duckdb.writer import LogWriter

INGEST_TARGET = 50_000
QUERY_TARGET_MS = 50
ANALYTICS_TARGET_MS = 300

# Columns named: access_logs gains columns as the schema grows; those not named stay NULL.
FILL_SQL = """
INSERT INTO access_logs (
    request_id, "timestamp", method, endpoint, path, query, client_ip, user_agent, service_type, model,
    streaming, status_code, duration_ms, duration_seconds, tokens_input, tokens_output,
    cache_read_tokens, cache_write_tokens, cost_usd, cost_sdk_usd, ttft_ms, upstream_status,
    upstream_duration_ms, proxy_overhead_ms, error_type, error_message, response_model,
    cost_input_usd, cost_output_usd, cost_cache_read_usd, cost_cache_write_usd, priced,
    request_bytes, response_bytes, rate_limits)
SELECT
    'bench-' || lpad(CAST(i AS VARCHAR), 10, '0'),
    CAST($end AS TIMESTAMPTZ) - to_microseconds(($rows - i) * $step),
    'POST',
    CASE WHEN i % 2 = 0 THEN '/v1/messages' ELSE '/v1/chat/completions' END,
    CASE WHEN i % 2 = 0 THEN '/v1/messages' ELSE '/v1/chat/completions' END,
    '', '127.0.0.1', 'bench/1.0',
    CASE WHEN i % 2 = 0 THEN 'anthropic' ELSE 'openai' END,
    (['claude-sonnet-4-5', 'gpt-4o', 'claude-haiku-4-5', 'gpt-4o-mini', 'claude-opus-4-1', 'o3'])[1 + i % 6],
    i % 3 = 0,
    CASE WHEN i % 50 = 0 THEN 429 WHEN i % 97 = 0 THEN 502 ELSE 200 END,
    50 + hash(i) % 5000, (50 + hash(i) % 5000) / 1000,
    100 + i % 2000, 20 + i % 800, i % 5000, i % 300,
    CAST((100 + i % 2000) * 0.000003 + (20 + i % 800) * 0.000015 AS DECIMAL(18, 9)), NULL,
    CASE WHEN i % 3 = 0 THEN 20 + hash(i) % 800 END, 200, 40 + hash(i) % 5000, 1.5,
    CASE WHEN i % 50 = 0 THEN 'rate_limit_error' WHEN i % 97 = 0 THEN 'upstream_unreachable' END,
    CASE WHEN i % 50 = 0 THEN 'rate limited' END, NULL,
    CAST((100 + i % 2000) * 0.000003 AS DECIMAL(18, 9)), CAST((20 + i % 800) * 0.000015 AS DECIMAL(18, 9)),
    0, 0, true, 1000 + i % 5000, 2000 + i % 9000, NULL
FROM range($rows) AS numbers(i)
"""


def sample_record(number: int) -> AccessRecord:
    """A realistic record; a fresh request_id and timestamp per ``number``."""
    return replace(_TEMPLATE, request_id=f"ingest-{number:09d}", timestamp=datetime.now(UTC))


_TEMPLATE = make_record(
    user_agent="anthropic-python/2.10",
    duration_ms=812.5,
    duration_seconds=0.8125,
    tokens_input=1200,
    tokens_output=350,
    cache_read_tokens=4000,
    cache_write_tokens=200,
    cost_usd=Decimal("0.010575"),
    ttft_ms=210.0,
    upstream_duration_ms=810.0,
    proxy_overhead_ms=0.4,
    cost_input_usd=Decimal("0.0036"),
    cost_output_usd=Decimal("0.00525"),
    cost_cache_read_usd=Decimal("0.0012"),
    cost_cache_write_usd=Decimal("0.00075"),
    request_bytes=5120,
    response_bytes=20480,
    rate_limits={"requests_remaining": 3999.0, "tokens_remaining": 1998800.0},
)


def bench_ingest(folder: Path, rows: int, batch_size: int) -> None:
    """Two figures: the writer alone (queue filled first), and while records are being submitted."""
    records = [sample_record(n) for n in range(rows)]
    database = Database.open(str(folder / f"alone-{batch_size}.duckdb"))
    writer = LogWriter(database, queue_size=rows + 1, batch_size=batch_size, flush_interval=1.0)
    for record in records:
        writer.submit(record)
    alone = _time_until_written(writer, rows, start=writer.start)
    writer.close()
    database.close()

    database = Database.open(str(folder / f"concurrent-{batch_size}.duckdb"))
    writer = LogWriter(database, queue_size=rows + 1, batch_size=batch_size, flush_interval=1.0)
    writer.start()
    submit_seconds: list[float] = []

    def submit_all() -> None:
        started = time.perf_counter()
        for record in records:
            writer.submit(record)
        submit_seconds.append(time.perf_counter() - started)

    concurrent = _time_until_written(writer, rows, start=submit_all)
    writer.close()
    database.close()
    for label, seconds in (("writer alone", alone), ("while submitting", concurrent)):
        rate = rows / seconds
        print(
            f"ingest  batch {batch_size:>5}, {label:<16} {rate:>9,.0f} rows/s   target >= {INGEST_TARGET:,}: "
            f"{'ok' if rate >= INGEST_TARGET else 'MISSED'}"
        )
    print(f"        submit() on the hot path: {1e6 * submit_seconds[0] / rows:.2f} us per record")


def bench_steady(folder: Path, rate: int, seconds: float) -> None:
    """The writer's thread CPU per record when records arrive at ``rate`` a second, at the default settings."""
    total = int(rate * seconds)
    database = Database.open(str(folder / "steady.duckdb"))
    writer = LogWriter(database, queue_size=10_000, batch_size=1_000, flush_interval=1.0)
    writer.start()
    assert writer._thread.native_id is not None
    cpu_before = read_cpu_seconds(os.getpid(), writer._thread.native_id)
    started, submitted = time.monotonic(), 0
    while submitted < total:
        due = min(total, int((time.monotonic() - started) * rate))
        for number in range(submitted, due):
            writer.submit(sample_record(number))
        submitted = due
        time.sleep(0.005)
    while writer.stats()["rows_written"] < total:
        time.sleep(0.01)
    spent = read_cpu_seconds(os.getpid(), writer._thread.native_id) - cpu_before
    writer.close()
    database.close()
    print(
        f"writer  at a steady {rate:,} records/s for {seconds:g} s: {1e6 * spent / total:.0f} us of its thread's CPU per record"
    )


def bench_hold(folder: Path, batches: int = 5) -> None:
    """The longest pause of a busy main thread while the writer writes batches of 1,000 records."""
    database = Database.open(str(folder / "hold.duckdb"))
    writer = LogWriter(database, queue_size=10_000, batch_size=1_000, flush_interval=0.5)
    writer.start()
    longest = 0.0
    for batch in range(batches):
        for number in range(1_000):
            writer.submit(sample_record(batch * 1_000 + number))
        last = time.perf_counter()
        while writer.stats()["rows_written"] < (batch + 1) * 1_000:
            sum(range(200))  # a slice of Python work; a gap between two is time the writer held the GIL
            now = time.perf_counter()
            longest, last = max(longest, now - last), now
    writer.close()
    database.close()
    print(f"writer  longest pause of a busy main thread while batches of 1,000 are written: {1000 * longest:.1f} ms")


def _time_until_written(writer: LogWriter, rows: int, start: Callable[[], None]) -> float:
    started = time.perf_counter()
    start()
    while writer.stats()["rows_written"] < rows:
        time.sleep(0.001)
    return time.perf_counter() - started


async def median_ms(call: Callable[[], Awaitable[object]], runs: int) -> float:
    await call()  # warm-up: first touch of the file's blocks
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        timings.append(1000 * (time.perf_counter() - started))
    return statistics.median(timings)


async def bench_reads(store: DuckDBLogStore, end: datetime, days: float, runs: int, rows: int) -> None:
    first_page = await store.query(LogFilters(), 100)
    day = LogFilters(start_time=end - timedelta(hours=24), end_time=end)
    hour = LogFilters(start_time=end - timedelta(hours=1), end_time=end)
    whole = LogFilters(start_time=end - timedelta(days=days), end_time=end)
    cases = [
        ("query", "newest 100", lambda: store.query(LogFilters(), 100)),
        ("query", "next page (cursor)", lambda: store.query(LogFilters(), 100, first_page.next_position)),
        (
            "query",
            "model=o3, 4xx, last 24 h",
            lambda: store.query(replace(day, model=NameFilter(include=("o3",)), status_classes=(4,)), 100),
        ),
        ("query", "limit 10000 (largest page)", lambda: store.query(LogFilters(), 10_000)),
        ("entries", "page 1, by duration_ms desc", lambda: store.entries(1, 50, "duration_ms", True)),
        ("entries", "page 1000, by timestamp", lambda: store.entries(1000, 50, "timestamp", True)),
        ("analytics", "last 1 h, minute", lambda: store.analytics(hour, "minute")),
        ("analytics", "last 24 h, hour", lambda: store.analytics(day, "hour")),
        ("analytics", f"all {days:g} day(s), day", lambda: store.analytics(whole, "day")),
    ]
    for kind, label, call in cases:
        milliseconds = await median_ms(call, runs)
        target = ANALYTICS_TARGET_MS if kind == "analytics" else QUERY_TARGET_MS
        if "largest page" in label:  # the target is for pages a person reads; 10,000 rows is an export
            print(f"{kind:<9} {label:<30} {milliseconds:>8.1f} ms   (no target: 10,000 rows to JSON-ready dicts)")
            continue
        verdict = ("ok" if milliseconds < target else "MISSED") if rows <= 1_000_000 else "for 1M rows only"
        print(f"{kind:<9} {label:<30} {milliseconds:>8.1f} ms   (target < {target} ms: {verdict})")


def fill(store: DuckDBLogStore, rows: int, days: float) -> datetime:
    end = datetime.now(UTC)
    step = max(1, int(days * 86_400_000_000 // rows))
    cursor = store.database.cursor()
    started = time.perf_counter()
    cursor.execute(FILL_SQL, {"end": end, "rows": rows, "step": step})
    cursor.execute("CHECKPOINT")
    cursor.close()
    print(
        f"filled  {rows:,} rows in {time.perf_counter() - started:.1f} s; file {store.database.size_bytes() / 1e6:.0f} MB"
    )
    return end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate for the read benchmark")
    parser.add_argument("--ingest-rows", type=int, default=200_000, help="records pushed through the writer")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per read (median reported)")
    parser.add_argument("--days", type=float, default=1.0, help="span of the generated rows, ending now")
    parser.add_argument("--steady-rate", type=int, default=600, help="records a second for the steady writer run")
    parser.add_argument("--steady-seconds", type=float, default=20, help="length of the steady writer run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-") as folder:
        for batch_size in (1000, 5000):
            bench_ingest(Path(folder), args.ingest_rows, batch_size)
        bench_steady(Path(folder), args.steady_rate, args.steady_seconds)
        bench_hold(Path(folder))
        store = DuckDBLogStore.open(DuckDBSettings(duckdb_path=str(Path(folder) / "reads.duckdb")))
        try:
            end = fill(store, args.rows, args.days)
            asyncio.run(bench_reads(store, end, args.days, args.runs, args.rows))
        finally:
            store.close()


if __name__ == "__main__":
    main()
