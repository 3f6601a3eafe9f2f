"""One /logs/analytics answer reads one state of the store: its parts add up to its totals while the
writer adds rows between its statements."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ccproxy_core.plugin_host.log_store import Grouping, LogFilters
from ccproxy_duckdb import rollups
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore
from tests.duckdb_records import NOW, numbered_record, write_all


@pytest.mark.parametrize("hours", [1, 5], ids=["exact-scan", "rollups"])
def test_groups_read_with_the_analytics_see_the_rows_the_analytics_saw(tmp_path, monkeypatch, hours):
    # Before, the groups were read after the analytics, and the analytics' own statements one after
    # another in autocommit: a row written between them was in some parts of the answer and not others.
    store = DuckDBLogStore.open(
        DuckDBSettings(duckdb_path=str(tmp_path / "logs.duckdb"), log_flush_interval_seconds=0.05)
    )
    try:
        write_all(store, [numbered_record(n, project="acme") for n in range(1, 21)])
        later = iter(range(100, 105))

        def a_write_after(read):
            def reading_then_writing(*args):
                result = read(*args)
                write_all(store, [numbered_record(next(later), project="acme")])  # committed by the writer
                return result

            return reading_then_writing

        monkeypatch.setattr(rollups, "analytics", a_write_after(rollups.analytics))
        monkeypatch.setattr(rollups, "rollup_analytics", a_write_after(rollups.rollup_analytics))
        window = LogFilters(start_time=NOW - timedelta(hours=hours), end_time=NOW + timedelta(minutes=1))
        result, groups = asyncio.run(store.analytics_with_groups(window, "minute", Grouping("project")))
        assert result["totals"]["requests"] == 20
        assert [(group["key"], group["requests"]) for group in groups] == [("acme", 20)]
        assert store.stats()["rows_written"] == 21  # the row written between the reads is stored
    finally:
        store.close()
