"""Opening the DuckDB file: migrations of older files, restarts, and the one-line start-up errors."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pytest

from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_duckdb import database as database_module
from ccproxy_duckdb.database import Database
from ccproxy_duckdb.schema import COLUMN_TYPES, MIGRATIONS, SCHEMA_VERSION
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore

# The schema as the first release wrote it (schema version 1): the twenty documented columns only.
VERSION_1_DDL = """
CREATE TABLE access_logs (
    request_id VARCHAR NOT NULL, "timestamp" TIMESTAMPTZ NOT NULL, method VARCHAR, endpoint VARCHAR,
    path VARCHAR, query VARCHAR, client_ip VARCHAR, user_agent VARCHAR, service_type VARCHAR, model VARCHAR,
    streaming BOOLEAN, status_code INTEGER, duration_ms DOUBLE, duration_seconds DOUBLE, tokens_input BIGINT,
    tokens_output BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT, cost_usd DECIMAL(18,9),
    cost_sdk_usd DECIMAL(18,9)
);
"""
OLD_ROW = (
    "old-1",
    datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    "POST",
    "/v1/messages",
    "/v1/messages",
    "",
    "127.0.0.1",
    "curl",
    "anthropic",
    "claude-3-haiku",
    False,
    200,
    12.5,
    0.0125,
    10,
    20,
    0,
    0,
    Decimal("0.000042"),
    None,
)


def open_store(path) -> DuckDBLogStore:
    return DuckDBLogStore.open(DuckDBSettings(duckdb_path=str(path), log_flush_interval_seconds=0.05))


def write_old_file(path, with_version_table: bool) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute(VERSION_1_DDL)
        if with_version_table:
            connection.execute(
                "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            connection.execute("INSERT INTO schema_version VALUES (1, ?)", [datetime.now(UTC)])
        connection.execute(f"INSERT INTO access_logs VALUES ({', '.join('?' * len(OLD_ROW))})", list(OLD_ROW))


@pytest.mark.parametrize("with_version_table", [True, False], ids=["version-1", "before-versioning"])
def test_an_older_file_is_migrated_and_keeps_its_rows(tmp_path, with_version_table):
    path = tmp_path / "old.duckdb"
    write_old_file(path, with_version_table)
    store = open_store(path)
    try:
        (row,) = asyncio.run(store.query(LogFilters(), 10)).rows
        cursor = store.database.cursor()
        columns = {
            name
            for (name,) in cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'access_logs'"
            ).fetchall()
        }
        version = cursor.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    finally:
        store.close()
    assert row["request_id"] == "old-1" and row["cost_usd"] == pytest.approx(0.000042)
    assert row["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert row["ttft_ms"] is None and row["rate_limits"] == {}
    assert row["priced"] is True  # its cost is stored; before, None: counted among the unpriced
    assert {"ttft_ms", "error_type", "cost_input_usd", "priced", "rate_limits", "response_bytes"} <= columns
    assert version == SCHEMA_VERSION


def test_rows_an_earlier_migration_left_without_priced_are_marked_and_rolled_up_again(tmp_path):
    """Version 2 added ``priced`` without filling it: a first-schema file migrated then counted every old
    row as unpriced, its cost in the totals all the same."""
    path = tmp_path / "migrated-before.duckdb"
    write_old_file(path, with_version_table=True)
    with duckdb.connect(str(path)) as connection:  # the first row's twin without a cost, 2 hours later
        connection.execute(
            "INSERT INTO access_logs SELECT * REPLACE ('old-2' AS request_id, NULL AS cost_usd, "
            '"timestamp" + INTERVAL 2 HOUR AS "timestamp") FROM access_logs'
        )
        for statement in [s for step in MIGRATIONS[1:7] for s in step.statements if "SET priced" not in s]:
            connection.execute(statement)  # as the ccproxy before version 8 migrated it
        connection.executemany("INSERT INTO schema_version VALUES (?, now())", [[v] for v in range(2, 8)])
        assert connection.execute("SELECT count(*) FROM access_logs WHERE priced IS NULL").fetchone() == (2,)
        assert connection.execute("SELECT sum(unpriced) FROM rollup_hour").fetchone() == (2,)
    store = open_store(path)
    cursor = store.database.cursor()
    try:
        priced = cursor.execute("SELECT request_id, priced FROM access_logs ORDER BY request_id").fetchall()
        unpriced = cursor.execute("SELECT sum(unpriced) FROM rollup_hour").fetchone()
    finally:
        cursor.close()
        store.close()
    assert priced == [("old-1", True), ("old-2", False)]
    assert unpriced == (1,)


def test_a_file_from_a_newer_ccproxy_is_refused_untouched(tmp_path):
    path = tmp_path / "newer.duckdb"
    store = open_store(path)
    store.close()
    with duckdb.connect(str(path)) as connection:
        connection.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION + 1, datetime.now(UTC)])
    with pytest.raises(StartupError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        open_store(path)


def test_restart_on_the_same_file_keeps_rows(tmp_path):
    from tests.duckdb_records import numbered_record, write_all

    path = tmp_path / "kept.duckdb"
    store = open_store(path)
    write_all(store, [numbered_record(n) for n in range(5)])
    store.close()
    store = open_store(path)
    try:
        assert asyncio.run(store.describe())["row_count"] == 5
    finally:
        store.close()


def test_home_is_expanded_and_folders_are_created(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = open_store("~/deep/er/logs.duckdb")
    store.close()
    assert (tmp_path / "deep" / "er" / "logs.duckdb").is_file()


def test_a_file_locked_by_another_process_stops_start_up_with_one_line(tmp_path):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StartupError) as caught:
            open_store(path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    message = str(caught.value)
    assert message.startswith(f"cannot open DuckDB file {path}: ")
    assert "lock" in message.lower() and "OBSERVABILITY__DUCKDB_PATH" in message
    assert "\n" not in message


def test_an_unwritable_path_stops_start_up_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = blocker / "logs.duckdb"
    with pytest.raises(StartupError) as caught:
        open_store(path)
    message = str(caught.value)
    assert message.startswith(f"cannot open DuckDB file {path}: {blocker} is a file, not a folder - ")
    assert "\n" not in message


def test_a_file_that_is_not_duckdb_stops_start_up(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StartupError, match="cannot open DuckDB file"):
        open_store(path)
    assert path.read_text().startswith("these are my notes")


def test_a_file_cut_short_stops_start_up_rather_than_losing_every_record_written_to_it(tmp_path):
    from tests.duckdb_records import numbered_record, write_all

    path = tmp_path / "cut.duckdb"
    store = open_store(path)
    write_all(store, [numbered_record(n) for n in range(4)])
    store.close()
    size = path.stat().st_size
    with open(path, "r+b") as file:  # half of it: DuckDB reads the headers and metadata in the first half
        file.truncate(size // 2)
    # Before, start-up went well, and every write then failed: each request was answered, none recorded.
    with pytest.raises(StartupError) as caught:
        open_store(path)
    message = str(caught.value)
    assert (
        f"cannot open DuckDB file {path}: it is {size // 2:,} bytes, where its tables' blocks need {size:,}" in message
    )
    assert "cut short or damaged" in message and "OBSERVABILITY__DUCKDB_PATH" in message
    assert path.stat().st_size == size // 2  # left as it was


def test_a_file_whose_freed_blocks_were_cut_off_its_end_opens(tmp_path):
    # After a checkpoint frees the blocks at its end (rows deleted: a reset, retention), DuckDB shrinks the
    # file but its header counts those blocks until the next checkpoint. Such a healthy file was refused.
    from tests.duckdb_records import numbered_record, write_all

    path = tmp_path / "shrunk.duckdb"
    store = open_store(path)
    write_all(store, [numbered_record(n) for n in range(3)])
    store.close()
    with duckdb.connect(str(path)) as connection:
        connection.execute("INSERT INTO access_logs SELECT logs.* FROM access_logs AS logs, range(400_000)")
        connection.execute("CHECKPOINT")
    with duckdb.connect(str(path)) as connection:
        connection.execute("DELETE FROM access_logs")  # as POST /logs/reset does
        connection.execute("CHECKPOINT")
    with duckdb.connect(str(path), read_only=True) as connection:
        block_size, blocks = connection.execute(
            "SELECT block_size, total_blocks FROM pragma_database_size()"
        ).fetchone()
    assert path.stat().st_size < 3 * 4096 + block_size * blocks  # the case: the header counts blocks past the end
    store = open_store(path)
    try:
        assert asyncio.run(store.describe())["row_count"] == 0
    finally:
        store.close()


def test_an_sqlite_database_is_refused_before_duckdb_would_fetch_an_extension_to_open_it(tmp_path):
    """DuckDB left to itself downloads and loads its SQLite extension, and opens the other program's data."""
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
        other.commit()
    before = path.read_bytes()
    with pytest.raises(StartupError) as caught:
        open_store(path)
    message = str(caught.value)
    assert f"cannot open DuckDB file {path}: it is an SQLite database, not a DuckDB file" in message, message
    assert "extension" not in message and "OBSERVABILITY__DUCKDB_PATH" in message
    assert "- move it away, or set" in message and "writable" not in message  # before: advice for another cause
    assert path.read_bytes() == before


def current_settings(store: DuckDBLogStore, *names: str) -> tuple | None:
    """The values of DuckDB settings on a connection of ``store``, which is then closed."""
    cursor = store.database.cursor()
    try:
        return cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in names)).fetchone()
    finally:
        cursor.close()
        store.close()


def test_no_connection_may_load_an_extension_duckdb_does_not_carry(tmp_path):
    store = open_store(tmp_path / "logs.duckdb")
    assert current_settings(store, "autoinstall_known_extensions", "autoload_known_extensions") == (False, False)


def test_duckdb_memory_limit_threads_and_checkpoint_threshold_come_from_the_settings(tmp_path):
    settings = DuckDBSettings(
        duckdb_path=str(tmp_path / "capped.duckdb"),
        duckdb_memory_limit="100 MiB",
        duckdb_threads=1,
        duckdb_checkpoint_threshold="2 MiB",
    )
    store = DuckDBLogStore.open(settings)
    applied = current_settings(store, "memory_limit", "threads", "checkpoint_threshold")
    assert applied == ("100.0 MiB", 1, "2.0 MiB")
    defaults = DuckDBSettings()
    assert (defaults.duckdb_memory_limit, defaults.duckdb_threads, defaults.duckdb_checkpoint_threshold) == (
        "256MB",
        2,
        "4MB",
    )


def test_a_large_file_migrates_beyond_the_memory_cap_which_then_applies(tmp_path):
    """Building the rollups of every stored row needs more than the cap a running ccproxy keeps."""
    path = tmp_path / "large.duckdb"
    write_old_file(path, with_version_table=True)
    with duckdb.connect(str(path)) as connection:  # half a million version-1 rows over the last two days
        connection.execute(
            "INSERT INTO access_logs SELECT 'r' || i, now() - to_microseconds(i * 345_600), 'POST', '/v1/messages', "
            "'/v1/messages', '', '127.0.0.1', 'ua-' || (i % 97), 'anthropic', 'model-' || (i % 13), i % 2 = 0, "
            "CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END, (i % 5000) + 0.5, ((i % 5000) + 0.5) / 1000, i % 900, i % 300, "
            "0, 0, 0.000042, NULL FROM range(500_000) t(i)"
        )
    store = DuckDBLogStore.open(DuckDBSettings(duckdb_path=str(path), duckdb_memory_limit="32MB"))
    try:
        cursor = store.database.cursor()
        assert cursor.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert cursor.execute("SELECT sum(requests) FROM rollup_hour").fetchone()[0] > 400_000
        assert (
            cursor.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "30.5 MiB"
        )  # 32MB as DuckDB shows it
    finally:
        store.close()


def test_a_migration_duckdb_runs_out_of_memory_for_stops_start_up_with_one_line_naming_the_setting(
    tmp_path, monkeypatch
):
    # Before, DuckDB's own nine lines of advice in SQL, naming no setting. A machine short of memory is stood for
    # by a migration step needing one list of ten million integers under a cap of a megabyte: a single aggregate
    # value cannot be moved to DuckDB's temporary files, so every machine refuses it.
    def migrate_on_a_short_machine(connection, path):
        connection.execute("SET memory_limit='1MB'")
        return connection.execute("SELECT list(i) FROM range(10_000_000) t(i)").fetchone()

    monkeypatch.setattr(database_module, "migrate", migrate_on_a_short_machine)
    with pytest.raises(StartupError) as caught:
        Database.open(str(tmp_path / "tiny.duckdb"), memory_limit="64MB")
    message = str(caught.value)
    assert "\n" not in message and "SET " not in message
    assert message.startswith(f"DuckDB ran out of memory preparing {tmp_path / 'tiny.duckdb'} (Out of Memory Error")
    assert "raise OBSERVABILITY__DUCKDB_MEMORY_LIMIT (now 64MB)" in message


FOREIGN_FILES = {
    "other-columns": ["CREATE TABLE access_logs (id INTEGER, name VARCHAR, timestamp VARCHAR)"],
    "a-view": ["CREATE TABLE hits (n INTEGER)", "CREATE VIEW access_logs AS SELECT * FROM hits"],
    "text-versions": ["CREATE TABLE schema_version (version VARCHAR, applied_at VARCHAR)"],
    # Close enough to ccproxy's that every migration would succeed, adding its columns and tables.
    "near-miss": [
        "CREATE TABLE access_logs ("
        + ", ".join(
            f'"{name}" {sql_type.replace(" NOT NULL", "")}'
            for name, sql_type in COLUMN_TYPES[:20]
            if name not in ("client_ip", "user_agent", "query")
        )
        + ")"
    ],
}


@pytest.mark.parametrize("statements", FOREIGN_FILES.values(), ids=FOREIGN_FILES.keys())
def test_another_programs_file_stops_start_up_with_one_line_and_is_left_untouched(tmp_path, statements):
    path = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(path)) as connection:
        for statement in statements:
            connection.execute(statement)
        before = connection.execute("SELECT table_name, column_name FROM duckdb_columns() ORDER BY ALL").fetchall()
    with pytest.raises(StartupError) as caught:
        open_store(path)
    assert str(caught.value).startswith(f"DuckDB file {path} holds no ccproxy access records (")
    assert str(caught.value).endswith("set OBSERVABILITY__DUCKDB_PATH to ccproxy's file or a new one")
    with duckdb.connect(str(path)) as connection:
        after = connection.execute("SELECT table_name, column_name FROM duckdb_columns() ORDER BY ALL").fetchall()
    assert after == before
