"""The DuckDB writer: the shared batching writer, inserting with DuckDB's appender.

Its loss policy is :mod:`ccproxy_core.plugin_host.batch_writer`'s, and for write errors:

- Write error (disk full, I/O error): the batch is kept and retried, with a backoff from 1 s
  doubling up to 30 s, reopening the file before each retry; while it fails, new records wait
  in the queue (and once it is full, the newest are dropped). Nothing is dropped because of
  the error itself, except:
- A row DuckDB refuses (a value out of range): the batch is rewritten row by row and only the
  refused rows are dropped.
- Shutdown while writes still fail: what cannot be written is dropped at once (the process is exiting).

A write that failed may still have committed (DuckDB raises when the checkpoint after a durable
commit fails, on a disk just full enough): before a batch is written again, the rows the file
already holds, known by their request id, are left out, so no record is stored twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import duckdb

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.batch_writer import BatchWriter

from . import block_cache
from .database import Database
from .rollup_keeper import RollupKeeper
from .rows import record_to_row
from .schema import COLUMNS

log = logging.getLogger("ccproxy.duckdb")

TABLE = "access_logs"
_REQUEST_ID, _TIMESTAMP = COLUMNS.index("request_id"), COLUMNS.index("timestamp")
APPEND_CHUNK_ROWS = 100
"""Rows handed to the appender per call. It holds the GIL for a whole call, some 35 µs a row: a
batch of 1,000 in one call kept a busy event loop waiting up to 23 ms, 100 at a time up to 8
(``benchmarks/bench_storage.py``)."""

# Errors caused by the values of some row, not by the file: retrying the same batch would fail again.
# DataError: a value that does not convert (out of range, wrong type); IntegrityError: NOT NULL;
# NotImplementedException: a Python type DuckDB cannot take.
# InvalidInputException and ConversionException: a value Python cannot hand over (text that is not UTF-8).
_ROW_ERRORS = (
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.NotImplementedException,
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    TypeError,
    ValueError,
    OverflowError,
)


class LogWriter(BatchWriter):
    """Writes batches of records, and the rollups that follow them, to one DuckDB file."""

    store_name = "DuckDB"

    def __init__(self, database: Database, queue_size: int, batch_size: int, flush_interval: float) -> None:
        super().__init__(log, queue_size, batch_size, flush_interval)
        self._database = database
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._appender: duckdb.Appender | None = None
        self._must_reopen = False
        self._maybe_written = False
        """The last write failed, perhaps after its commit: the next one leaves out the rows the file holds."""
        self._rollups = RollupKeeper()
        self._next_trim_at = time.monotonic() + block_cache.TRIM_EVERY_SECONDS

    def to_row(self, record: AccessRecord) -> tuple[Any, ...]:
        return record_to_row(record)

    def write_pending(self) -> bool:
        """Insert the pending batch; True when it is written (or reduced to what DuckDB accepts)."""
        try:
            try:
                self._append(self._pending)
            except _ROW_ERRORS as exc:
                self._count_error(exc, len(self._pending))
                self._write_row_by_row()
        except (duckdb.Error, OSError) as exc:
            self._count_error(exc, len(self._pending))
            self._must_reopen = self._maybe_written = True
            return False
        self._pending = []
        self._trim_block_cache_now_and_then()
        return True

    def _trim_block_cache_now_and_then(self) -> None:
        now = time.monotonic()
        if now < self._next_trim_at or self._connection is None:
            return
        try:
            with self._database.maintenance_lock:  # retention deletes run under it: keep them out too
                trimmed = self._database.trim_block_cache(self._connection)
        except duckdb.Error as exc:
            log.warning("could not hand DuckDB's cached blocks back: %s", exc)
            trimmed = 0
        if trimmed is not None:  # else a read was running: try again after the next write
            self._next_trim_at = now + block_cache.TRIM_EVERY_SECONDS

    def disconnect(self) -> None:
        self._appender = None
        if self._connection is not None:
            self._connection.close()

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        if self._database.file_replaced():
            # Rows written now would go to a file no one can open again: they would be lost unseen.
            self.write_errors += 1
            log.error(
                "DuckDB file %s was removed, replaced or emptied while open; opening what is at that path now "
                "(a new file if nothing is)",
                self._database.path,
            )
            self._must_reopen = True
        if self._must_reopen or self._connection is None:
            self._reconnect()
        assert self._connection is not None
        with self._database.maintenance_lock:
            new_rows = self._not_in_file(self._connection, rows) if self._maybe_written else rows
            if new_rows:
                self._append_with_rollups(self._connection, new_rows)
        self._maybe_written = False
        self.note_written(len(rows))  # those the failed write had stored are written too

    def _not_in_file(self, connection: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows whose request id the file does not hold (looked for from the batch's first timestamp on)."""
        ids = [row[_REQUEST_ID] for row in rows]
        since = min(row[_TIMESTAMP] for row in rows)
        found = connection.execute(
            f'SELECT request_id FROM {TABLE} WHERE "timestamp" >= ? AND list_contains(?, request_id)', [since, ids]
        ).fetchall()
        if not found:
            return rows
        held = {request_id for (request_id,) in found}
        log.warning(
            "%d of %d access record(s) written again were in %s already (the write that failed had stored "
            "them): left out, not stored twice",
            len(held),
            len(rows),
            self._database.path,
        )
        return [row for row in rows if row[_REQUEST_ID] not in held]

    def _append_with_rollups(self, connection: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
        """Append the rows and bring the rollups up to date, in one transaction."""
        connection.execute("BEGIN TRANSACTION")
        try:
            if self._appender is None:  # kept between batches: making one costs some 3 ms
                self._appender = connection.appender(TABLE)
            for start in range(0, len(rows), APPEND_CHUNK_ROWS):
                self._appender.append_rows(rows[start : start + APPEND_CHUNK_ROWS])
            self._appender.flush()
            watermarks = self._rollups.after_append(connection, rows)
            connection.execute("COMMIT")
        except BaseException:
            self._appender = None  # it may still hold some of the rows: never flush it again
            self._rollups.forget()
            try:
                connection.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        self._rollups.accept(watermarks)

    def _reconnect(self) -> None:
        self._appender = None
        if self._connection is not None:
            try:
                self._connection.close()
            except duckdb.Error:
                pass
            self._connection = None
        self._rollups.forget()
        if self._must_reopen:
            self._database.reopen()
            self._must_reopen = False
            log.info("reopened DuckDB file %s after a write error", self._database.path)
        self._connection = self._database.cursor()

    def _write_row_by_row(self) -> None:
        """Find the rows DuckDB refuses and drop only those; a file error leaves the rest pending."""
        while self._pending:
            try:
                self._append(self._pending[:1])
            except _ROW_ERRORS as exc:
                self.drop_refused(1, "dropped access record %s, which DuckDB refused: %s", self._pending[0][0], exc)
            self._pending.pop(0)

    def _count_error(self, exc: BaseException, batch_size: int) -> None:
        self.write_errors += 1
        log.error(
            "cannot write %d access record(s) to %s: %s; they are written once the file can be (%s, or set "
            "OBSERVABILITY__DUCKDB_PATH to another), new ones wait in the queue meanwhile",
            batch_size,
            self._database.path,
            exc,
            _what_to_do(str(exc)),
        )


def _what_to_do(error: str) -> str:
    """What the operator can do about a write error, by its cause."""
    lowered = error.lower()
    if "permission denied" in lowered or "read-only file system" in lowered:
        return "make its folder writable by the user ccproxy runs as"
    if "conflicting lock" in lowered:
        return "stop the other process that holds the file"
    if "could not read enough bytes" in lowered:  # no space to free: its blocks are gone
        return "the file was cut short: stop ccproxy, move the file away and put back a copy from a backup"
    return "free space on its disk"
