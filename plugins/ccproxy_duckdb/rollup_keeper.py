"""Keeping the rollups in step with ``access_logs``: in the writer's transaction, on retention and on reset.

The writer calls :meth:`RollupKeeper.after_append` inside the transaction that appends a batch:

- rows whose bucket is already rolled up (their timestamp is before a level's watermark: a
  request that lasted longer than the margin) are added to that level at once;
- when the clock has passed a level's next bucket (plus :data:`~.rollup_sql.MARGIN_MICROS`),
  the buckets up to it are rolled up and the watermark moves: the minutes from the raw rows,
  the hours from the minutes.

Only the writer moves watermarks, so it keeps them in memory. Retention and reset change rows
and rollups in one transaction, under the database's maintenance lock, which the writer also holds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import duckdb

from ccproxy_core.plugin_host.store_answers import datetime_to_micros, micros_to_datetime

from . import rollup_sql
from .rollup_sql import LATE_TABLE, LEVELS, MARGIN_MICROS, Level
from .schema import one_row

_TIMESTAMP = 1  # position of "timestamp" in a row


def read_watermarks(cursor: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Each level's watermark, in epoch microseconds."""
    return dict(cursor.execute("SELECT level, max(watermark_us) FROM rollup_watermark GROUP BY level").fetchall())


class RollupKeeper:
    """The writer's view of the watermarks, and the statements that keep rollups up to date."""

    def __init__(self) -> None:
        self._watermarks: dict[str, int] | None = None

    def after_append(self, cursor: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> dict[str, int]:
        """Roll up late rows and closed buckets; return the new watermarks, to :meth:`accept` after COMMIT."""
        if self._watermarks is None:
            self._watermarks = read_watermarks(cursor)
        current = self._watermarks
        self._add_late_rows(cursor, rows, current)
        moved = dict(current)
        now = int(time.time() * 1_000_000)
        finer: Level | None = None
        # Finest first: each coarser level is summed from the one below it, complete by then up to
        # at least the coarser level's target, as both are floors of the same moment.
        for level in reversed(LEVELS):
            target = level.floor(now - MARGIN_MICROS)
            if target > current[level.name]:
                self._roll_up(cursor, level, finer, current[level.name], target)
                moved[level.name] = target
            finer = level
        return moved

    def accept(self, watermarks: dict[str, int]) -> None:
        """The transaction that moved the watermarks committed."""
        self._watermarks = watermarks

    def forget(self) -> None:
        """The transaction failed, or the connection changed: read the watermarks again next time."""
        self._watermarks = None

    @staticmethod
    def _roll_up(cursor: duckdb.DuckDBPyConnection, level: Level, finer: Level | None, start: int, end: int) -> None:
        """Add the buckets from ``start`` to before ``end`` to ``level``: from the raw rows for the finest
        level, else from the ``finer`` level's rollups."""
        if finer is None:
            where = 'WHERE "timestamp" >= $start AND "timestamp" < $end'
            bounds: dict[str, Any] = {"start": micros_to_datetime(start), "end": micros_to_datetime(end)}
            statements = rollup_sql.fill_statements(level, "access_logs", where)
        else:
            bounds = {"start": start, "end": end}
            statements = rollup_sql.merge_statements(level, finer)
        for statement in statements:
            cursor.execute(statement, bounds)
        cursor.execute("UPDATE rollup_watermark SET watermark_us = ? WHERE level = ?", [end, level.name])

    @staticmethod
    def _add_late_rows(
        cursor: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], watermarks: dict[str, int]
    ) -> None:
        newest_closed = micros_to_datetime(max(watermarks.values()))
        late = [row for row in rows if _is_late(row[_TIMESTAMP], newest_closed)]
        if not late:
            return
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {LATE_TABLE} AS SELECT * FROM access_logs LIMIT 0")
        with cursor.appender(LATE_TABLE) as appender:  # executemany takes about 10 ms a row
            appender.append_rows(late)
        for level in LEVELS:
            where = 'WHERE "timestamp" < $watermark'
            for statement in rollup_sql.fill_statements(level, LATE_TABLE, where):
                cursor.execute(statement, {"watermark": micros_to_datetime(watermarks[level.name])})
        cursor.execute(f"DELETE FROM {LATE_TABLE}")


def _is_late(moment: Any, closed: datetime) -> bool:
    """Whether a row's timestamp is before ``closed`` (aware): datetimes compare exactly, to the microsecond."""
    if not isinstance(moment, datetime):
        return True
    if moment.tzinfo is None:  # naive: taken as UTC, as everywhere in the store
        moment = moment.replace(tzinfo=UTC)
    return moment < closed


def whole_buckets_before(cutoff: datetime) -> datetime:
    """``cutoff`` rounded down to the widest rollup bucket (the hour): where retention really cuts."""
    boundary = max(level.width_micros for level in LEVELS)
    return micros_to_datetime(datetime_to_micros(cutoff) // boundary * boundary)


def delete_rows_before(cursor: duckdb.DuckDBPyConnection, cutoff: datetime) -> int:
    """Delete raw rows before ``cutoff`` rounded down to the hour, and the rollups of those hours.

    Rounding keeps every rollup bucket either whole or gone. Call inside a transaction,
    under the maintenance lock. Returns the number of raw rows deleted.
    """
    cutoff_micros = datetime_to_micros(whole_buckets_before(cutoff))
    (deleted,) = one_row(
        cursor.execute('DELETE FROM access_logs WHERE "timestamp" < ?', [micros_to_datetime(cutoff_micros)])
    )
    for table in rollup_sql.rollup_tables():
        cursor.execute(f"DELETE FROM {table} WHERE t_us < ?", [cutoff_micros])
    return int(deleted)


def delete_everything(cursor: duckdb.DuckDBPyConnection) -> int:
    """Delete every raw row and every rollup (watermarks stay). Same rules as :func:`delete_rows_before`."""
    (deleted,) = one_row(cursor.execute("DELETE FROM access_logs"))
    for table in rollup_sql.rollup_tables():
        cursor.execute(f"DELETE FROM {table}")
    return int(deleted)


def in_transaction(cursor: duckdb.DuckDBPyConnection, work: Any, *args: Any) -> Any:
    """Run ``work(cursor, *args)`` in one transaction: all of it or none."""
    cursor.execute("BEGIN TRANSACTION")
    try:
        result = work(cursor, *args)
        cursor.execute("COMMIT")
    except BaseException:
        try:
            cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    return result


def rebuild(cursor: duckdb.DuckDBPyConnection) -> None:
    """Recompute every rollup from the stored rows, as the migration does (for rows loaded around the writer)."""
    in_transaction(cursor, _run_statements, rollup_sql.rebuild_statements())


def _run_statements(cursor: duckdb.DuckDBPyConnection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        cursor.execute(statement)
