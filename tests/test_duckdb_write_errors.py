"""A write error at run time (a full disk) is logged and counted, loses nothing, and the writer recovers.

The disk is made full for real: DuckDB's write-ahead log is pointed at /dev/full, whose every
write fails with ENOSPC, exactly as on a full filesystem.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_core.testing import wait_until
from tests.duckdb_records import numbered_record, open_store, write_all

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")


def fill_the_disk(store, wal: Path) -> None:
    cursor = store.database.cursor()
    cursor.execute("CHECKPOINT")  # folds the write-ahead log into the file, which removes it
    cursor.close()
    assert not wal.exists()
    os.symlink("/dev/full", wal)


def test_disk_full_is_counted_then_the_writer_recovers_without_losing_rows(tmp_path, caplog):
    store = open_store(tmp_path)
    store.writer.first_retry_seconds = 0.1
    wal = Path(f"{store.database.path}.wal")
    try:
        write_all(store, [numbered_record(n) for n in range(3)])
        fill_the_disk(store, wal)
        with caplog.at_level(logging.ERROR, logger="ccproxy.duckdb"):
            for n in range(3, 8):
                store.submit(numbered_record(n))
            wait_until(lambda: store.stats()["write_errors"] >= 2)
        assert store.stats()["rows_written"] == 3
        assert store.stats()["queue_depth"] == 5 and store.stats()["dropped_records"] == 0
        assert "No space left on device" in caplog.text

        wal.unlink()  # space is back
        wait_until(lambda: store.stats()["rows_written"] == 8)
        store.submit(numbered_record(8))
        wait_until(lambda: store.stats()["rows_written"] == 9)
        rows = asyncio.run(store.query(LogFilters(), 100)).rows
        assert sorted(row["request_id"] for row in rows) == [f"req-{n:04d}" for n in range(9)]
        assert store.stats()["dropped_records"] == 0
    finally:
        if wal.is_symlink():
            wal.unlink()
        store.close()


def test_shutdown_while_the_disk_is_full_drops_and_counts(tmp_path):
    store = open_store(tmp_path)
    store.writer.first_retry_seconds = 0.1
    wal = Path(f"{store.database.path}.wal")
    try:
        fill_the_disk(store, wal)
        for n in range(4):
            store.submit(numbered_record(n))
        wait_until(lambda: store.stats()["write_errors"] >= 1)
        store.writer.close()
        assert store.stats()["dropped_records"] == 4 and store.stats()["rows_written"] == 0
    finally:
        wal.unlink()
        store.close()


@pytest.mark.parametrize("removed", ["file", "folder"])
def test_a_file_removed_while_open_is_counted_and_a_new_one_takes_the_records(tmp_path, caplog, removed):
    import shutil

    import duckdb

    store = open_store(tmp_path / "store")
    path = store.database.path
    try:
        write_all(store, [numbered_record(n) for n in range(3)])
        if removed == "file":
            path.unlink()
            Path(f"{path}.wal").unlink(missing_ok=True)
        else:
            shutil.rmtree(path.parent)
        with caplog.at_level(logging.ERROR, logger="ccproxy.duckdb"):
            write_all(store, [numbered_record(n) for n in range(3, 6)])
        assert store.stats()["write_errors"] == 1 and "was removed, replaced or emptied" in caplog.text
        rows = asyncio.run(store.query(LogFilters(), 100)).rows
        assert sorted(row["request_id"] for row in rows) == [f"req-{n:04d}" for n in range(3, 6)]
    finally:
        store.close()
    # Before, these three went into the removed file, unseen: the path held nothing afterwards.
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM access_logs").fetchone() == (3,)


def test_a_file_emptied_in_place_while_open_is_noticed_and_a_new_one_takes_the_records(tmp_path, caplog):
    store = open_store(tmp_path / "store")
    store.writer.first_retry_seconds = 0.1
    path = store.database.path
    try:
        write_all(store, [numbered_record(0)])
        with path.open("r+b") as file:  # the same file, as `: > logs.duckdb` leaves it
            file.truncate(0)
        with caplog.at_level(logging.WARNING, logger="ccproxy.duckdb"):
            write_all(store, [numbered_record(n) for n in range(1, 4)])
        assert "emptied while open" in caplog.text and store.stats()["write_errors"] == 1
        assert store.stats()["dropped_records"] == 0
    finally:
        store.close()
    # Before, the three were reported written into the emptied file, which DuckDB could not open afterwards.
    assert stored_ids(path) == ["req-0001", "req-0002", "req-0003"]


def stored_ids(path: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as connection:
        return [
            row[0] for row in connection.execute("SELECT request_id FROM access_logs ORDER BY request_id").fetchall()
        ]


def test_a_write_that_failed_after_its_commit_is_not_stored_twice(tmp_path, caplog, monkeypatch):
    import duckdb

    from ccproxy_duckdb.writer import LogWriter

    # As DuckDB does when the checkpoint after a durable commit fails (a disk just full enough).
    append, failed = LogWriter._append_with_rollups, []

    def commit_then_fail(writer, connection, rows):
        append(writer, connection, rows)
        if not failed:
            failed.append(len(rows))
            raise duckdb.FatalException(
                "FATAL Error: Transaction COMMIT succeeded and is durable, but the autocheckpoint failed"
            )

    monkeypatch.setattr(LogWriter, "_append_with_rollups", commit_then_fail)
    store = open_store(tmp_path)
    store.writer.first_retry_seconds = 0.1
    try:
        with caplog.at_level(logging.WARNING, logger="ccproxy.duckdb"):
            for n in range(3):
                store.submit(numbered_record(n))
            wait_until(lambda: store.stats()["write_errors"] == 1 and store.stats()["queue_depth"] == 0)
            write_all(store, [numbered_record(3)])  # the writer goes on after the batch it left out
        assert failed == [3] and "were in" in caplog.text and "not stored twice" in caplog.text
        assert store.stats()["rows_written"] == 4
        assert asyncio.run(store.analytics(LogFilters(), "hour"))["totals"]["requests"] == 4
    finally:
        store.close()
    assert stored_ids(store.database.path) == [f"req-{n:04d}" for n in range(4)]


def test_an_empty_file_left_where_the_file_was_is_replaced_by_a_new_one(tmp_path, caplog):
    store = open_store(tmp_path / "store")
    path = store.database.path
    try:
        write_all(store, [numbered_record(0)])
        path.unlink()
        Path(f"{path}.wal").unlink(missing_ok=True)
        path.touch()  # what a try to make the file on a full disk leaves
        with caplog.at_level(logging.WARNING, logger="ccproxy.duckdb"):
            write_all(store, [numbered_record(n) for n in range(1, 3)])
        assert "removed the empty file" in caplog.text
    finally:
        store.close()
    assert stored_ids(path) == ["req-0001", "req-0002"]


def test_an_empty_file_at_the_path_at_start_up_becomes_the_store(tmp_path):
    (tmp_path / "logs.duckdb").touch()
    store = open_store(tmp_path)
    try:
        write_all(store, [numbered_record(0)])
    finally:
        store.close()
    assert stored_ids(tmp_path / "logs.duckdb") == ["req-0000"]


def test_a_read_while_the_file_is_closed_after_a_write_error_says_so_and_reads_resume(tmp_path):
    from ccproxy_duckdb.store import StoreClosed

    store = open_store(tmp_path)
    try:
        write_all(store, [numbered_record(0)])
        store.database._connection.close()  # as a reopen that could not open the file leaves it
        with pytest.raises(StoreClosed, match="closed after a write error and not reopened yet"):
            asyncio.run(store.query(LogFilters(), 10))
        store.database.reopen()
        assert [row["request_id"] for row in asyncio.run(store.query(LogFilters(), 10)).rows] == ["req-0000"]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ('IO Error: Cannot open file "/srv/ccproxy/access.duckdb.wal": Permission denied', "make its folder writable"),
        (
            'IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python (PID 1999)',
            "stop the other",
        ),
        ("IO Error: No space left on device", "free space on its disk"),
        (
            'IO Error: Could not read enough bytes from file "x.duckdb": attempted to read 262144 bytes from '
            "location 536576",
            "the file was cut short",
        ),
    ],
)
def test_a_write_error_says_what_to_do_about_its_cause(error, advice):
    from ccproxy_duckdb.writer import _what_to_do

    assert _what_to_do(error).startswith(advice)
