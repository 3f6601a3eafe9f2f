"""The background writer: a bounded queue filled on the hot path, drained by one thread in batches.

Loss policy, all of it counted in ``dropped_records`` and logged:

- Queue full: the NEWEST record (the one being submitted) is dropped.
- Write error (disk full, I/O error): the batch is kept and retried, with a backoff from 1 s
  doubling up to 30 s, reopening the file before each retry; while it fails, new records wait
  in the queue (and once it is full, the newest are dropped as above). Nothing is dropped
  because of the error itself, except:
- A row DuckDB refuses (a value out of range): the batch is rewritten row by row and only the
  refused rows are dropped.
- Shutdown while writes still fail: what cannot be written is dropped (the process is exiting).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import duckdb

from ccproxy_core.rate_limited_log import RateLimitedLog
from ccproxy_core.record import AccessRecord

from .database import Database
from .rollup_keeper import RollupKeeper
from .rows import record_to_row

log = logging.getLogger("ccproxy.duckdb")
_drop_log = RateLimitedLog(log)
_refused_log = RateLimitedLog(log, level=logging.ERROR)

TABLE = "access_logs"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
_WAKE = object()  # put in the queue to end a wait early at shutdown

# Errors caused by the values of some row, not by the file: retrying the same batch would fail again.
# DataError: a value that does not convert (out of range, wrong type); IntegrityError: NOT NULL;
# NotImplementedException: a Python type DuckDB cannot take.
# InvalidInputException and ConversionException: a value Python cannot hand over (text that is not UTF-8).
_ROW_ERRORS = (duckdb.DataError, duckdb.IntegrityError, duckdb.NotImplementedException, duckdb.InvalidInputException,
               duckdb.ConversionException, TypeError, ValueError, OverflowError)


class LogWriter:
    """Owns the queue and the writer thread of one store."""

    def __init__(self, database: Database, queue_size: int, batch_size: int, flush_interval: float) -> None:
        self._database = database
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: list[tuple[Any, ...]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccproxy-duckdb-writer", daemon=True)
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._must_reopen = False
        self._rollups = RollupKeeper()
        self._dropped_when_full = 0  # written only by the submitting (event-loop) thread
        self._dropped_by_writer = 0  # written only by the writer thread
        self.first_retry_seconds = FIRST_RETRY_SECONDS
        self.write_errors = 0
        self.rows_written = 0
        self.last_flush_at: float | None = None

    # --- any thread -----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def submit(self, record: AccessRecord) -> None:
        """Queue one record without blocking; when the queue is full the record is dropped and counted."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._dropped_when_full += 1
            _drop_log.log("the access-log queue is full (OBSERVABILITY__LOG_QUEUE_SIZE=%d): dropped record %s; "
                          "%d dropped so far", self._queue_size, record.request_id, self._dropped_when_full)

    def stats(self) -> dict[str, Any]:
        """Queue depth (queued plus taken for the next insert), losses, errors, rows written, last flush."""
        return {
            "queue_depth": self._queue.qsize() + len(self._pending),
            "dropped_records": self._dropped_when_full + self._dropped_by_writer,
            "write_errors": self.write_errors,
            "rows_written": self.rows_written,
            "last_flush_at": self.last_flush_at,
        }

    def close(self, timeout: float | None = None) -> None:
        """Write everything still queued, then stop the thread. Blocking: call it from a thread."""
        self._stopping.set()
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:
            pass  # the writer is busy draining and will see the stop flag without waiting
        self._thread.join(timeout)

    # --- writer thread --------------------------------------------------------

    def _run(self) -> None:
        retry_delay = self.first_retry_seconds
        while not (self._stopping.is_set() and not self._pending and self._queue.empty()):
            try:
                written = self._collect_and_write()
            except Exception:  # a bug here must not silently end the writer
                log.exception("unexpected error in the DuckDB writer")
                self.write_errors += 1
                written = False
            if written:
                retry_delay = self.first_retry_seconds
            elif self._stopping.is_set():
                self._drop_pending("the writer is stopping and the file still cannot be written")
            else:
                self._stopping.wait(retry_delay)
                retry_delay = min(retry_delay * 2, MAX_RETRY_SECONDS)
        if self._connection is not None:
            self._connection.close()

    def _collect_and_write(self) -> bool:
        """One round: gather a batch and insert it. False when the insert failed and must be retried."""
        self._collect()
        return not self._pending or self._write_pending()

    def _collect(self) -> None:
        """Move queued records into the pending batch until it is full or the first one has waited long enough."""
        retrying = bool(self._pending)
        deadline = time.monotonic() + self._flush_interval
        while len(self._pending) < self._batch_size:
            timeout = deadline - time.monotonic()
            if retrying or self._stopping.is_set() or timeout <= 0:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
            else:
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    return
            if item is _WAKE:
                continue
            self._add_pending(item)
            if len(self._pending) == 1:
                deadline = time.monotonic() + self._flush_interval

    def _add_pending(self, record: AccessRecord) -> None:
        try:
            self._pending.append(record_to_row(record))
        except Exception:  # noqa: BLE001 - a malformed record from a buggy core must not stop the writer
            self._dropped_by_writer += 1
            _refused_log.log("dropped access record %s, which could not be converted to a row",
                             getattr(record, "request_id", "?"), exc_info=True)

    def _write_pending(self) -> bool:
        """Insert the pending batch; True when it is written (or reduced to what DuckDB accepts)."""
        try:
            try:
                self._append(self._pending)
            except _ROW_ERRORS as exc:
                self._count_error(exc, len(self._pending))
                self._write_row_by_row()
        except (duckdb.Error, OSError) as exc:
            self._count_error(exc, len(self._pending))
            self._must_reopen = True
            return False
        self._pending = []
        return True

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        if self._must_reopen or self._connection is None:
            self._reconnect()
        connection = self._connection
        if connection is None:  # reopening failed: the caller counts the failed write
            raise duckdb.ConnectionException("the DuckDB file is not open")
        with self._database.maintenance_lock:
            self._append_with_rollups(connection, rows)
        self.rows_written += len(rows)
        self.last_flush_at = time.time()

    def _append_with_rollups(self, connection: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
        """Append the rows and bring the rollups up to date, in one transaction."""
        connection.execute("BEGIN TRANSACTION")
        try:
            with connection.appender(TABLE) as appender:
                appender.append_rows(rows)
            watermarks = self._rollups.after_append(connection, rows)
            connection.execute("COMMIT")
        except BaseException:
            self._rollups.forget()
            try:
                connection.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        self._rollups.accept(watermarks)

    def _reconnect(self) -> None:
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
                self._dropped_by_writer += 1
                _refused_log.log("dropped access record %s, which DuckDB refused: %s", self._pending[0][0], exc)
            self._pending.pop(0)

    def _count_error(self, exc: BaseException, batch_size: int) -> None:
        self.write_errors += 1
        log.error("cannot write %d access record(s) to %s: %s", batch_size, self._database.path, exc)

    def _drop_pending(self, reason: str) -> None:
        self._dropped_by_writer += len(self._pending)
        log.error("dropped %d access record(s): %s", len(self._pending), reason)
        self._pending = []
