"""Money with 12 decimal places on a real ClickHouse: exact reads, and tables of Decimal(18, 9) widened on start-up.

One server, and a two-shard cluster (a MergeTree table on each shard, a Distributed table in front):
every table that holds money is converted, the rows already stored keep their values, and a cost
such as gpt-5 flex's $0.0006300625 (one cached token at $0.0625 per million) is then stored exactly.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ccproxy_clickhouse.schema import MONEY, SCHEMA_VERSION, VERSION_TABLE, Layout
from ccproxy_clickhouse.settings import ClickHouseSettings
from ccproxy_clickhouse.store import ClickHouseLogStore
from ccproxy_core.plugin_host.log_store import Grouping, LogFilters
from ccproxy_core.testing import make_record, wait_until
from tests.clickhouse_servers import clickhouse_binary, start_cluster
from tests.test_duckdb_money import FLEX  # the same gpt-5 flex request, priced to twelve decimals

NOW = datetime.now(UTC).replace(microsecond=0)
OLD_MONEY = "Nullable(Decimal(18, 9))"
WINDOW = LogFilters(start_time=NOW - timedelta(hours=3), end_time=NOW + timedelta(seconds=1))
OLD_COSTS = (Decimal("0.000630063"), Decimal("0.123456789"), Decimal("999999999.999999999"))


def open_store(url: str, **more) -> ClickHouseLogStore:
    return ClickHouseLogStore.open(ClickHouseSettings(clickhouse_url=url, log_flush_interval_seconds=0.05, **more))


def write_nine_decimal_tables(server, layout: Layout, first: int) -> None:
    """The tables as the previous ccproxy made them (schema version 1, money Decimal(18, 9)), and old rows."""
    server.query(f"CREATE DATABASE IF NOT EXISTS {layout.database}")
    server.query(
        f"CREATE TABLE {layout.database}.{VERSION_TABLE} "
        "(version UInt32, description String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
    )
    server.query(
        f"INSERT INTO {layout.database}.{VERSION_TABLE} (version, description, applied_at) VALUES",
        [{"version": 1, "description": "access_logs", "applied_at": NOW.replace(tzinfo=None)}],
    )
    server.query(layout.create_storage().replace(MONEY, OLD_MONEY))
    if layout.cluster:
        server.query(layout.create_distributed().replace(MONEY, OLD_MONEY))
    rows = [
        {
            "request_id": f"old-{first + n}",
            "timestamp_us": int((NOW - timedelta(hours=1)).timestamp() * 1_000_000) + first + n,
            "event_date": NOW.date(),
            "cost_usd": cost,
            "cost_cache_read_usd": Decimal("0.000000063"),
        }
        for n, cost in enumerate(OLD_COSTS)
    ]
    server.query(
        f"INSERT INTO {layout.database}.{layout.storage_table} "
        "(request_id, timestamp_us, event_date, cost_usd, cost_cache_read_usd) VALUES",
        rows,
    )


def money_types(server, database: str) -> set[tuple[str, str]]:
    return set(
        server.query(
            "SELECT table, type FROM system.columns WHERE database = %(db)s AND name LIKE 'cost%%usd'", {"db": database}
        )
    )


def flex_records(count: int):
    return [make_record(timestamp=NOW - timedelta(minutes=n), **FLEX) for n in range(count)]


def assert_reads_exact(store: ClickHouseLogStore, old_sum: Decimal, flex_count: int) -> None:
    flex_sum = Decimal("0.0006300625") * flex_count
    rows = asyncio.run(store.query(WINDOW, 1000)).rows
    flex = [row for row in rows if row["model"] == "gpt-5"]
    assert len(flex) == flex_count
    for row in flex:
        assert (row["cost_usd"], row["cost_cache_read_usd"], row["cost_tools_usd"]) == (0.0006300625, 6.25e-8, 1.1e-11)
    answer = asyncio.run(store.analytics(WINDOW, "hour"))
    assert answer["cost"]["total_usd"] == float(old_sum + flex_sum)
    by_model = {group["key"]: group["cost_usd"] for group in asyncio.run(store.groups(WINDOW, Grouping("model")))}
    assert by_model["gpt-5"] == float(flex_sum)
    (session,), _ = asyncio.run(store.sessions(WINDOW, 10))
    assert session["cost_usd"] == float(flex_sum)


def test_a_single_table_of_nine_decimal_money_is_widened_and_keeps_its_rows(clickhouse_server):
    write_nine_decimal_tables(clickhouse_server, Layout("ccproxy"), 0)
    assert money_types(clickhouse_server, "ccproxy") == {("access_logs", OLD_MONEY)}
    for _ in range(2):  # a second start finds nothing to change
        store = open_store(clickhouse_server.url)
        store.close()
    assert money_types(clickhouse_server, "ccproxy") == {("access_logs", MONEY)}
    versions = clickhouse_server.query(f"SELECT version FROM ccproxy.{VERSION_TABLE} ORDER BY version")
    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
    kept = clickhouse_server.query(
        "SELECT request_id, cost_usd, cost_cache_read_usd FROM ccproxy.access_logs ORDER BY 1"
    )
    assert kept == [(f"old-{n}", cost, Decimal("0.000000063")) for n, cost in enumerate(OLD_COSTS)]
    store = open_store(clickhouse_server.url)
    try:
        records = flex_records(10)
        for record in records:
            store.submit(record)
        wait_until(lambda: store.stats()["rows_written"] == len(records))
        stored = clickhouse_server.query(
            "SELECT DISTINCT cost_usd, cost_cache_read_usd, cost_tools_usd FROM ccproxy.access_logs WHERE model = 'gpt-5'"
        )
        assert stored == [(Decimal("0.0006300625"), Decimal("0.0000000625"), Decimal("0.000000000011"))]
        assert_reads_exact(store, sum(OLD_COSTS, Decimal(0)), len(records))
    finally:
        store.close()


@pytest.mark.needs_tool("clickhouse")
def test_a_cluster_of_nine_decimal_tables_is_widened_on_every_shard(tmp_path):
    shards = start_cluster(clickhouse_binary(), tmp_path, "money_cluster")
    try:
        layout = Layout("ccproxy", "money_cluster")
        for number, shard in enumerate(shards):
            write_nine_decimal_tables(shard, layout, 10 * number)
        store = open_store(shards[0].url, clickhouse_cluster="money_cluster")  # prepares both shards
        try:
            for shard in shards:
                assert money_types(shard, "ccproxy") == {("access_logs", MONEY), ("access_logs_local", MONEY)}
            kept = shards[1].query("SELECT request_id, cost_usd FROM ccproxy.access_logs ORDER BY 1")
            assert kept == [(f"old-{10 * s + n}", cost) for s in range(2) for n, cost in enumerate(OLD_COSTS)]
            records = [replace(record, request_id=f"flex-{n}") for n, record in enumerate(flex_records(20))]
            for record in records:
                store.submit(record)
            wait_until(lambda: store.stats()["rows_written"] == len(records))
            assert store.stats()["write_errors"] == 0
            per_shard = [s.query("SELECT count() FROM ccproxy.access_logs_local WHERE model = 'gpt-5'") for s in shards]
            assert all(count > 0 for ((count,),) in per_shard), "the rows must reach both shards"
            assert_reads_exact(store, 2 * sum(OLD_COSTS, Decimal(0)), len(records))
        finally:
            store.close()
    finally:
        for shard in shards:
            shard.stop()
