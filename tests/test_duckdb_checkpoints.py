"""Checkpoints write new rows without rewriting the ones already in the file (no memory spike)."""

from __future__ import annotations

from dataclasses import replace

from tests.duckdb_records import numbered_record, open_store, write_all

ROUND = 3_000


def row_groups(store) -> list[tuple[int, int]]:
    """(row group, rows in it) of access_logs, from DuckDB's storage layout."""
    with store.database.read_cursor() as cursor:
        return cursor.execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info('access_logs') WHERE column_id = 0 "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()


def write_round(store, number: int) -> None:
    records = [replace(numbered_record(i), request_id=f"round-{number}-{i}") for i in range(ROUND)]
    write_all(store, records)
    with store.database.read_cursor() as cursor:
        cursor.execute("CHECKPOINT")


def test_each_checkpoint_leaves_the_earlier_row_groups_alone(tmp_path):
    store = open_store(tmp_path)
    try:
        for number in range(3):
            write_round(store, number)
        # Merging them, DuckDB's default, would hold the rows of earlier checkpoints in memory again.
        assert row_groups(store) == [(0, ROUND), (1, ROUND), (2, ROUND)]
    finally:
        store.close()


def test_row_groups_emptied_by_deletes_are_dropped(tmp_path):
    store = open_store(tmp_path)
    try:
        for number in range(3):
            write_round(store, number)
        with store.database.read_cursor() as cursor:
            cursor.execute("DELETE FROM access_logs WHERE request_id LIKE 'round-0-%'")
            cursor.execute("CHECKPOINT")
            assert cursor.execute("SELECT count(*) FROM access_logs").fetchone() == (2 * ROUND,)
        assert len(row_groups(store)) == 2
    finally:
        store.close()


def test_rows_are_checkpointed_once_their_log_reaches_the_threshold(tmp_path):
    """No explicit CHECKPOINT: DuckDB's own, at the configured threshold, bounds the rows held in memory."""
    store = open_store(tmp_path, duckdb_checkpoint_threshold="256KiB")
    try:
        for number in range(3):
            records = [replace(numbered_record(i), request_id=f"round-{number}-{i}") for i in range(ROUND)]
            write_all(store, records)
        groups = row_groups(store)
        assert len(groups) >= 2, groups  # at DuckDB's default (16MB) all 9,000 rows would still be waiting
        assert all(rows <= 2 * ROUND for _, rows in groups), groups
    finally:
        store.close()
