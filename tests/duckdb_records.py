"""Numbered records and a DuckDB store on a temporary file, shared by the store's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.testing import make_record, wait_until
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore

NOW = datetime.now(UTC).replace(microsecond=0)


def numbered_record(number: int, **changes: Any) -> AccessRecord:
    """A complete record ``number`` seconds before NOW, its values derived from ``number`` (so each differs)."""
    fields: dict[str, Any] = {
        "request_id": f"req-{number:04d}",
        "timestamp": NOW - timedelta(seconds=number),
        "user_agent": "pytest",
        "streaming": number % 2 == 0,
        "duration_ms": float(10 * (number + 1)),
        "duration_seconds": (number + 1) / 100,
        "tokens_input": 100 + number,
        "tokens_output": 20 + number,
        "cache_read_tokens": number,
        "cache_write_tokens": 2 * number,
        "cost_usd": Decimal("0.000300000") + Decimal(number) / Decimal(10**6),
        "ttft_ms": 5.0 if number % 2 == 0 else None,
        "upstream_status": 200,
        "upstream_duration_ms": 9.0,
        "proxy_overhead_ms": 0.5,
        "cost_input_usd": Decimal("0.0001"),
        "cost_output_usd": Decimal("0.0002"),
        "cost_cache_read_usd": Decimal(0),
        "cost_cache_write_usd": Decimal(number) / Decimal(10**6),
        "request_bytes": 300,
        "response_bytes": 900,
        "rate_limits": {"requests_remaining": 49.0},
    }
    return make_record(**{**fields, **changes})


def open_store(tmp_path: Any, **settings: Any) -> DuckDBLogStore:
    """A store on ``tmp_path/logs.duckdb`` that flushes every 50 ms."""
    values = {"duckdb_path": str(tmp_path / "logs.duckdb"), "log_flush_interval_seconds": 0.05, **settings}
    return DuckDBLogStore.open(DuckDBSettings(**values))


def write_all(store: DuckDBLogStore, records: list[AccessRecord]) -> None:
    """Submit ``records`` and wait until the writer has stored them."""
    before = store.stats()["rows_written"]
    for record in records:
        store.submit(record)
    wait_until(lambda: store.stats()["rows_written"] >= before + len(records))


def fill_fat_rows(store: DuckDBLogStore, count: int) -> None:
    """Write ``count`` rows whose client-chosen texts sit at their size caps (about 8.8 KB of JSON each), at once.

    Straight into the table with SQL (a second for 10,000 rows, against minutes through the proxy).
    """
    tags = "{" + ",".join(f'"t{number}":"{"T" * 200}"' for number in range(10)) + "}"
    cursor = store.database.cursor()
    try:
        cursor.execute(
            """INSERT INTO access_logs (request_id, "timestamp", method, endpoint, path, query, user_agent, model,
                   status_code, client_request_id, session_id, project, tags, rate_limits, cost_usd)
               SELECT 'fat-' || i, now() - to_microseconds(i * 1000), 'POST', '/v1/messages',
                   '/v1/messages/' || repeat('p', 2100), 'q=' || repeat('v', 2100), repeat('U', 600),
                   repeat('m', 300), 200, repeat('R', 200), 'fat' || i || '-' || repeat('S', 200), repeat('P', 200),
                   ?, '{}', 0.001
               FROM range(?) t(i)""",
            [tags, count],
        )
    finally:
        cursor.close()
