"""Plugins' background threads (the DuckDB store's reads, writer and workers) run below the event loop's priority."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from ccproxy_core.plugin_host.background import BACKGROUND_NICENESS, run_in_background_thread
from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore, open_database

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="threads have their own niceness on Linux only")


def niceness(thread: threading.Thread | None = None) -> int:
    native_id = thread.native_id if thread is not None else threading.get_native_id()
    assert native_id is not None
    return os.getpriority(os.PRIO_PROCESS, native_id)


def expected_background() -> int:
    return min(19, niceness() + BACKGROUND_NICENESS)


def test_work_runs_lower_and_threads_it_starts_inherit_that(tmp_path):
    seen = {}

    def work() -> str:
        seen["own"] = niceness()
        child = threading.Thread(target=lambda: seen.setdefault("child", niceness()))
        child.start()
        child.join()
        return "done"

    before = niceness()
    assert asyncio.run(run_in_background_thread("test-background", work)) == "done"
    assert seen == {"own": expected_background(), "child": expected_background()}
    assert niceness() == before  # the caller keeps its priority


def test_an_error_in_background_work_reaches_the_caller():
    def fail() -> None:
        raise LookupError("no such thing")

    with pytest.raises(LookupError, match="no such thing"):
        asyncio.run(run_in_background_thread("test-background", fail))


def test_the_duckdb_store_reads_below_the_loop_and_writes_at_its_priority(tmp_path):
    settings = DuckDBSettings(duckdb_path=str(tmp_path / "logs.duckdb"))
    database = asyncio.run(run_in_background_thread("test-open", open_database, settings))
    store = DuckDBLogStore.start(database, settings)
    try:
        asyncio.run(store.query(LogFilters(), 10))
        threads = {thread.name: thread for thread in threading.enumerate()}
        readers = [thread for name, thread in threads.items() if name.startswith("ccproxy-duckdb-read")]
        assert readers, sorted(threads)
        assert {niceness(thread) for thread in readers} == {expected_background()}
        writers = [thread for name, thread in threads.items() if name == "ccproxy-duckdb-writer"]
        assert len(writers) == 1, sorted(threads)
        assert niceness(writers[0]) == niceness()  # records keep up with proxied traffic
    finally:
        store.close()
