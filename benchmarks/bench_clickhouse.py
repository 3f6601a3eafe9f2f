"""How fast the ClickHouse log store ingests and answers, against a real clickhouse-server.

1. Ingest from one instance: AccessRecords submitted as the proxy does (``submit``), timed until
   the background writer has inserted them all (convert, send over the native protocol, store).
2. Reads over ``--rows`` generated rows spread over the last 24 h (ClickHouse fills them itself
   with INSERT ... SELECT FROM numbers): /logs/analytics for 24 h and 1 h, /logs/query pages,
   /logs/entries with a count; median of ``--runs`` runs.

    python benchmarks/bench_clickhouse.py [--rows 10000000] [--ingest-rows 200000] [--runs 5]

Starts its own clickhouse-server (Debian package ``clickhouse-server``) on a free loopback port
with a temporary data directory, or uses ``--url clickhouse://...`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_storage import sample_record

from ccproxy_clickhouse.settings import ClickHouseSettings
from ccproxy_clickhouse.store import ClickHouseLogStore
from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter
from tests.clickhouse_servers import ClickHouseServer

MODELS = "['claude-sonnet-4-5', 'gpt-4o', 'claude-haiku-4-5', 'gpt-4o-mini', 'claude-opus-4-1', 'o3']"
FILL_SQL = """
INSERT INTO {db}.access_logs (request_id, timestamp, method, endpoint, path, query, client_ip, user_agent, service_type,
    model, streaming, status_code, duration_ms, duration_seconds, tokens_input, tokens_output, cache_read_tokens,
    cache_write_tokens, cost_usd, ttft_ms, upstream_status, upstream_duration_ms, proxy_overhead_ms, error_type,
    error_message, cost_input_usd, cost_output_usd, priced, request_bytes, response_bytes, rate_limits,
    timestamp_us, event_date, instance, inserted_us)
SELECT
    concat('bench-', toString(number)), toDateTime(intDiv(ts, 1000000)), 'POST',
    if(number % 2 = 0, '/v1/messages', '/v1/chat/completions'), if(number % 2 = 0, '/v1/messages', '/v1/chat/completions'),
    '', '127.0.0.1', 'bench/1.0', if(number % 2 = 0, 'anthropic', 'openai'),
    {models}[1 + number % 6], number % 3 = 0,
    multiIf(number % 50 = 0, 429, number % 97 = 0, 502, 200),
    toFloat64(50 + cityHash64(number) % 5000), (50 + cityHash64(number) % 5000) / 1000,
    toInt64(100 + number % 2000), toInt64(20 + number % 800), toInt64(number % 5000), toInt64(number % 300),
    toDecimal64((100 + number % 2000) * 3 + (20 + number % 800) * 15, 9) / 1000000,
    if(number % 3 = 0, toFloat64(20 + cityHash64(number) % 800), NULL), 200,
    toFloat64(40 + cityHash64(number) % 5000), 1.5,
    multiIf(number % 50 = 0, 'rate_limit_error', number % 97 = 0, 'upstream_unreachable', NULL),
    if(number % 50 = 0, 'rate limited', NULL),
    toDecimal64((100 + number % 2000) * 3, 9) / 1000000, toDecimal64((20 + number % 800) * 15, 9) / 1000000,
    1, toInt64(1000 + number % 5000), toInt64(2000 + number % 9000), '',
    ts, toDate(intDiv(ts, 1000000)), 'bench', ts
FROM (SELECT number, {end_us} - intDiv(({rows} - number) * {step_us}, 1) AS ts FROM numbers({rows}))
"""


@contextlib.contextmanager
def clickhouse(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    binary = subprocess.run(["which", "clickhouse-server"], capture_output=True, text=True).stdout.strip()
    if not binary:
        sys.exit("clickhouse-server not found: install the Debian package clickhouse-server, or pass --url")
    with tempfile.TemporaryDirectory() as folder:
        server = ClickHouseServer(binary, Path(folder), "bench").start()
        try:
            yield server.url
        finally:
            server.stop()


def open_store(url: str, batch_size: int, queue_size: int) -> ClickHouseLogStore:
    settings = ClickHouseSettings(clickhouse_url=url, log_batch_size=batch_size, log_queue_size=queue_size)
    return ClickHouseLogStore.open(settings)


def bench_ingest(url: str, rows: int, batch_size: int) -> float:
    store = open_store(url, batch_size, rows + 1)
    records = [sample_record(n) for n in range(rows)]
    started = time.perf_counter()
    for record in records:
        store.submit(record)
    submitted = time.perf_counter() - started
    while store.stats()["rows_written"] < rows:
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    store.close()
    rate = rows / seconds
    print(
        f"ingest  batch {batch_size:>5}: {rate:>9,.0f} rows/s ({rows:,} records; submit() {1e6 * submitted / rows:.2f} us each)"
    )
    return rate


async def median_ms(call: Callable[[], Awaitable[object]], runs: int) -> float:
    await call()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        timings.append(1000 * (time.perf_counter() - started))
    return statistics.median(timings)


async def bench_reads(store: ClickHouseLogStore, end: datetime, runs: int, rows: int) -> None:
    day = LogFilters(start_time=end - timedelta(hours=24), end_time=end)
    hour = LogFilters(start_time=end - timedelta(hours=1), end_time=end)
    first_page = await store.query(LogFilters(), 100)
    cases = [
        ("analytics", "24 h, every row, minute buckets", lambda: store.analytics(day, "minute")),
        ("analytics", "24 h, hour buckets", lambda: store.analytics(day, "hour")),
        ("analytics", "last 1 h", lambda: store.analytics(hour, "minute")),
        (
            "analytics",
            "24 h, model=o3",
            lambda: store.analytics(LogFilters(day.start_time, day.end_time, model=NameFilter(("o3",))), "hour"),
        ),
        ("query", "newest 100", lambda: store.query(LogFilters(), 100)),
        ("query", "next page (cursor)", lambda: store.query(LogFilters(), 100, first_page.next_position)),
        (
            "query",
            "model=o3, 4xx, last 24 h",
            lambda: store.query(
                LogFilters(day.start_time, day.end_time, model=NameFilter(("o3",)), status_classes=(4,)), 100
            ),
        ),
        ("entries", "page 1 by cost, with total", lambda: store.entries(1, 50, "cost_usd", True, day)),
    ]
    print(f"reads over {rows:,} rows in 24 h (median of {runs}):")
    for kind, label, call in cases:
        print(f"  {kind:<9} {label:<34} {await median_ms(call, runs):>9.1f} ms")


def fill(store: ClickHouseLogStore, rows: int, end: datetime) -> None:
    end_us = int(end.timestamp() * 1_000_000)
    step_us = int(24 * 3600 * 1_000_000 / rows)
    client = store.target.client()
    started = time.perf_counter()
    chunk = 2_000_000  # several inserts keep the server's memory use small
    for offset in range(0, rows, chunk):
        size = min(chunk, rows - offset)
        client.execute(
            FILL_SQL.format(
                db=store.layout.database,
                models=MODELS,
                rows=size,
                end_us=end_us - (rows - offset - size) * step_us,
                step_us=step_us,
            ).replace("concat('bench-', toString(number))", f"concat('bench-', toString(number + {offset}))")
        )
    client.execute(f"OPTIMIZE TABLE {store.layout.database}.access_logs FINAL")
    ((count,),) = client.execute(f"SELECT count() FROM {store.layout.database}.access_logs")
    ((version,),) = client.execute("SELECT version()")
    client.disconnect()
    print(f"filled {count:,} rows in {time.perf_counter() - started:.1f} s (ClickHouse {version})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="use this ClickHouse instead of starting one")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--ingest-rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with clickhouse(args.url) as url:
        for batch_size in (1000, 5000):
            bench_ingest(url, args.ingest_rows, batch_size)
        store = open_store(url, 1000, 10_000)
        asyncio.run(store.reset())
        end = datetime.now(UTC)
        fill(store, args.rows, end)
        asyncio.run(bench_reads(store, end, args.runs, args.rows))
        store.close()


if __name__ == "__main__":
    main()
