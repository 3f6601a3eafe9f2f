"""DuckDB's cached table blocks are handed back, so the process does not grow with its file."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import replace

import pytest

from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_core.testing import wait_until
from ccproxy_duckdb import block_cache
from tests.duckdb_records import numbered_record as make_record
from tests.duckdb_records import open_store


def fill(store, count: int) -> None:
    """Rows with user agents that do not compress, so the table's blocks far outweigh the trim's 1 MiB headroom."""
    for number in range(count):
        agent = hashlib.sha256(str(number).encode()).hexdigest() * 2
        store.submit(replace(make_record(number % 3000), request_id=f"cache-{number:06d}", user_agent=agent))
    wait_until(lambda: store.stats()["rows_written"] >= count, timeout=60)


def cached_after_reading_everything(store) -> int:
    with store.database.read_cursor() as cursor:  # as a read: the writer may be trimming between its writes
        cursor.execute("CHECKPOINT")
        cursor.execute("SELECT * FROM access_logs").fetchall()  # every block of the table into the cache
        return block_cache.cached_table_bytes(cursor)[1]


def cached_now(store) -> int:
    with store.database.read_cursor() as cursor:
        return block_cache.cached_table_bytes(cursor)[1]


def memory_limit(store) -> str:
    cursor = store.database.cursor()
    try:
        return cursor.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        cursor.close()


def test_trimming_drops_the_cached_blocks_and_keeps_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(block_cache, "WORTH_TRIMMING_BYTES", 0)
    store = open_store(tmp_path, log_queue_size=100_000)
    try:
        fill(store, 60_000)
        limit_before = memory_limit(store)
        cached = cached_after_reading_everything(store)
        assert cached >= 2 * 1024 * 1024
        cursor = store.database.cursor()
        try:
            assert store.database.trim_block_cache(cursor) >= cached // 2
            assert block_cache.cached_table_bytes(cursor)[1] < cached // 3
        finally:
            cursor.close()
        assert memory_limit(store) == limit_before
        assert asyncio.run(store.describe())["row_count"] == 60_000  # the rows are on disk, not lost with the cache
    finally:
        store.close()


def test_no_trim_under_a_running_read(tmp_path, monkeypatch):
    monkeypatch.setattr(block_cache, "WORTH_TRIMMING_BYTES", 0)
    store = open_store(tmp_path, log_queue_size=100_000)
    try:
        fill(store, 5_000)
        cached = cached_after_reading_everything(store)
        with store.database.read_cursor() as reading:
            cursor = store.database.cursor()
            try:
                assert store.database.trim_block_cache(cursor) is None
                assert block_cache.cached_table_bytes(cursor)[1] == cached
            finally:
                cursor.close()
            assert reading.execute("SELECT count(*) FROM access_logs").fetchone()[0] == 5_000
    finally:
        store.close()


@pytest.mark.parametrize("reads_meanwhile", [False, True])
def test_the_writer_trims_as_it_goes(tmp_path, monkeypatch, reads_meanwhile):
    monkeypatch.setattr(block_cache, "WORTH_TRIMMING_BYTES", 0)
    monkeypatch.setattr(block_cache, "TRIM_EVERY_SECONDS", 0.0)
    store = open_store(tmp_path, log_queue_size=100_000)
    try:
        fill(store, 60_000)
        cached = cached_after_reading_everything(store)
        store.submit(replace(make_record(1), request_id="after"))
        if reads_meanwhile:  # reads go on while the writer trims between its writes; then one more write
            for _ in range(20):
                page = asyncio.run(store.query(LogFilters(), limit=500))
                assert len(page.rows) == 500
            wait_until(lambda: store.stats()["rows_written"] == 60_001)
            store.submit(replace(make_record(1), request_id="after the reads"))
        wait_until(lambda: store.stats()["rows_written"] == 60_001 + reads_meanwhile)
        ticks = itertools.count()

        def trimmed() -> bool:  # traffic goes on: each write is a chance to trim, as in a running proxy
            store.submit(replace(make_record(1), request_id=f"tick-{next(ticks)}"))
            return cached_now(store) < cached // 3

        wait_until(trimmed, timeout=20, interval=0.2)
    finally:
        store.close()
