"""Money with 12 decimal places in DuckDB: every read shows the exact cost, and older files are widened on open.

gpt-5 flex prices cached input at $0.0625 per million tokens: one cached token costs $0.0000000625.
1000 input, 1 cached and 1 output token cost exactly $0.0006300625 (0.000625 + 0.0000000625 + 0.000005).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import duckdb

from ccproxy_core.plugin_host.log_store import Grouping, LogFilters
from ccproxy_core.runtime.report.build import build_rows, totals
from ccproxy_core.runtime.report.sources import FileSource
from ccproxy_duckdb import rollup_sql
from ccproxy_duckdb.analytics import analytics
from ccproxy_duckdb.rollup_keeper import read_watermarks
from ccproxy_duckdb.rollups import answer_analytics, plan
from ccproxy_duckdb.schema import MIGRATIONS, MONEY_COLUMNS, SCHEMA_VERSION
from tests.duckdb_records import NOW, numbered_record, open_store, write_all

FLEX = {
    "model": "gpt-5",
    "service_type": "openai",
    "session_id": "flex-session",
    "cost_usd": Decimal("0.0006300625"),
    "cost_input_usd": Decimal("0.000625"),
    "cost_output_usd": Decimal("0.000005"),
    "cost_cache_read_usd": Decimal("0.0000000625"),
    "cost_cache_write_usd": Decimal(0),
    "cost_tools_usd": Decimal("0.000000000011"),  # twelve decimals: 0.0000000625 x 0.5 batch x 1.1 US-only, rounded
}
WINDOW = LogFilters(start_time=NOW - timedelta(hours=30), end_time=NOW + timedelta(seconds=1))


def flex_record(number: int, hours_ago: float):
    return numbered_record(number, timestamp=NOW - timedelta(hours=hours_ago), **FLEX)


def rollup_and_exact(cursor) -> tuple[dict, dict]:
    pieces = plan(WINDOW, "hour", read_watermarks(cursor))
    assert any(level is rollup_sql.HOUR for level, _, _ in pieces), "the window must use the hour rollups"
    return answer_analytics(cursor, WINDOW, "hour"), analytics(cursor, WINDOW, "hour")


def test_twelve_decimal_costs_read_back_exactly_everywhere(tmp_path):
    store = open_store(tmp_path)
    records = [flex_record(n, hours_ago=3 + n) for n in range(10)]  # rolled up as they arrive
    exact_sum = sum((r.cost_usd for r in records), Decimal(0))
    assert exact_sum == Decimal("0.006300625")
    try:
        write_all(store, records)
        cursor = store.database.cursor()
        stored = cursor.execute(
            "SELECT DISTINCT cost_usd, cost_cache_read_usd, cost_tools_usd FROM access_logs"
        ).fetchall()
        assert stored == [(Decimal("0.0006300625"), Decimal("0.0000000625"), Decimal("0.000000000011"))]
        assert cursor.execute("SELECT sum(cost_usd) FROM rollup_hour").fetchone()[0] == exact_sum
        rows = asyncio.run(store.query(WINDOW, 100)).rows
        encoded = asyncio.run(store.query_encoded(WINDOW, 100))[0]
        for row in [*rows, *json.loads(b"[" + b",".join(encoded.slices) + b"]")]:
            assert (row["cost_usd"], row["cost_cache_read_usd"]) == (0.0006300625, 6.25e-8)
            assert row["cost_tools_usd"] == 1.1e-11
        rolled, exact = rollup_and_exact(cursor)
        for answer in (rolled, exact, asyncio.run(store.analytics(WINDOW, "hour"))):
            assert answer["cost"]["total_usd"] == float(exact_sum)
            assert [m["cost_usd"] for m in answer["by_model"]] == [float(exact_sum)]
        (session,), _ = asyncio.run(store.sessions(WINDOW, 10))
        assert session["cost_usd"] == float(exact_sum)
        (group,) = asyncio.run(store.groups(WINDOW, Grouping("model", None, 10, None)))
        assert group["cost_usd"] == float(exact_sum)
        source = FileSource(cursor)
        for kind in ("daily", "model", "session"):
            rows = build_rows(source, kind, WINDOW.start_time, WINDOW.end_time, None, 10)
            assert totals(rows)["cost_usd"] == float(exact_sum), kind
    finally:
        store.close()


def write_nine_decimal_file(path) -> None:
    """A file as the schema-5 code wrote it: money DECIMAL(18,9), rollup cost sums DECIMAL(38,9), rows rolled up."""
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    for step in MIGRATIONS[:5]:
        if step.version == 5:  # rows stored before the rollups came, so that the migration rolls them up
            for number, cost in enumerate(("0.000630063", "0.123456789", "999999999.999999999")):
                connection.execute(
                    'INSERT INTO access_logs (request_id, "timestamp", model, status_code, cost_usd, '
                    "cost_cache_read_usd, priced) VALUES (?, ?, 'gpt-5', 200, ?, ?, true)",
                    [f"old-{number}", NOW - timedelta(hours=5 + number), cost, "0.000000063"],
                )
        for statement in step.statements:
            old = "DECIMAL(38,9)" if statement.startswith("CREATE TABLE IF NOT EXISTS rollup_") else "DECIMAL(18,9)"
            connection.execute(statement.replace("DECIMAL(38,12)", old))
        connection.execute("INSERT INTO schema_version VALUES (?, ?)", [step.version, NOW])
    types = connection.execute(
        "SELECT DISTINCT table_name, data_type FROM information_schema.columns WHERE column_name LIKE 'cost%usd'"
    ).fetchall()
    assert sorted(types) == [
        ("access_logs", "DECIMAL(18,9)"),
        ("rollup_hour", "DECIMAL(38,9)"),
        ("rollup_minute", "DECIMAL(38,9)"),
    ]
    connection.close()


def test_a_file_with_nine_decimal_money_is_widened_on_open_and_keeps_every_value(tmp_path):
    path = tmp_path / "logs.duckdb"
    write_nine_decimal_file(path)
    old_sum = Decimal("0.000630063") + Decimal("0.123456789") + Decimal("999999999.999999999")
    store = open_store(tmp_path)
    try:
        cursor = store.database.cursor()
        types = cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE data_type LIKE 'DECIMAL%' ORDER BY ALL"
        ).fetchall()
        assert {(table, column) for table, column, _ in types} == {
            *(("access_logs", name) for name in MONEY_COLUMNS),
            ("rollup_hour", "cost_usd"),
            ("rollup_minute", "cost_usd"),
        }
        assert {data_type for _, _, data_type in types} == {"DECIMAL(38,12)"}
        assert cursor.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        kept = cursor.execute("SELECT request_id, cost_usd, cost_cache_read_usd FROM access_logs ORDER BY 1").fetchall()
        assert kept == [
            ("old-0", Decimal("0.000630063"), Decimal("0.000000063")),
            ("old-1", Decimal("0.123456789"), Decimal("0.000000063")),
            ("old-2", Decimal("999999999.999999999"), Decimal("0.000000063")),
        ]
        assert cursor.execute("SELECT sum(cost_usd) FROM rollup_hour").fetchone()[0] == old_sum
        write_all(store, [flex_record(1, hours_ago=4)])
        (new,) = cursor.execute(
            "SELECT cost_usd, cost_cache_read_usd FROM access_logs WHERE model = 'gpt-5' "
            "AND request_id NOT LIKE 'old-%'"
        ).fetchall()
        assert new == (Decimal("0.0006300625"), Decimal("0.0000000625"))
        total = old_sum + Decimal("0.0006300625")
        assert cursor.execute("SELECT sum(cost_usd) FROM rollup_hour").fetchone()[0] == total
        rolled, exact = rollup_and_exact(cursor)
        assert rolled["cost"]["total_usd"] == exact["cost"]["total_usd"] == float(total)
    finally:
        store.close()
    store = open_store(tmp_path)  # a second start finds nothing to do
    try:
        assert asyncio.run(store.describe())["row_count"] == 4
    finally:
        store.close()
