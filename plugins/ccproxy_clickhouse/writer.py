"""The background writer: a bounded queue filled on the request path, drained by one thread in batches.

Loss policy, all of it counted in ``dropped_records`` and logged (at most one line per 10 s):

- Queue full: the NEWEST record (the one being submitted) is dropped. The queue is what holds
  records while ClickHouse is unreachable: OBSERVABILITY__LOG_QUEUE_SIZE records.
- ClickHouse unreachable or failing: the batch is kept and retried, with a backoff from 0.5 s
  doubling up to 5 s, on a new connection each time, after creating the tables again if the
  server lost them (a new server). Nothing is dropped because of the error.
- After a failed insert the outcome is unknown (the server may have stored the batch before the
  connection broke), so before retrying, the rows already stored are looked up by request_id and
  left out: a retry never stores a record twice.
- A record ClickHouse cannot hold (a value out of range, text that is not UTF-8) is dropped
  alone, at conversion; should the driver still refuse a batch for its values, the batch is sent
  again row by row and only the refused rows are dropped.
- Shutdown while ClickHouse stays unreachable: the writer keeps trying for ``shutdown_grace``
  seconds, then drops what is left (the process is exiting).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from clickhouse_driver import Client, errors

from ccproxy_core.errors import StartupError
from ccproxy_core.record import AccessRecord

from .ratelimit import RateLimitedLog
from .rows import record_to_row
from .schema import INSERT_COLUMNS, TABLE, quote

log = logging.getLogger("ccproxy.clickhouse")

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 10.0
_MISSING_TABLE_CODES = {60, 81}  # UNKNOWN_TABLE, UNKNOWN_DATABASE: the server lost its tables (a new server)
_WAKE = object()
# Errors raised by the driver while encoding values, before the server has stored anything.
_ROW_ERRORS = (errors.TypeMismatchError, TypeError, ValueError, OverflowError, struct.error)
_INSERT_SETTINGS = {"insert_distributed_sync": 1}  # a Distributed insert returns once every shard has its rows


class LogWriter:
    """Owns the queue and the writer thread of one store."""

    def __init__(self, connect: Callable[[], Client], database: str, prepare: Callable[[], None],
                 queue_size: int, batch_size: int, flush_interval: float) -> None:
        self._connect = connect
        self._table = f"{database}.{TABLE}"
        self._prepare = prepare
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: list[tuple[Any, ...]] = []
        self._outcome_unknown = False
        self.needs_prepare = False
        """True until the tables are known to exist on the server (set again after every failure)."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccproxy-clickhouse-writer", daemon=True)
        self._client: Client | None = None
        self.instance = uuid.uuid4().hex[:16]
        """Written into each row's ``instance`` column: tells this process's rows from its peers'."""
        self.first_retry_seconds = FIRST_RETRY_SECONDS
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self._dropped_when_full = 0  # written only by the submitting (event-loop) thread
        self._dropped_by_writer = 0  # written only by the writer thread
        self.write_errors = 0
        self.rows_written = 0
        self.last_flush_at: float | None = None
        self._log_drop = RateLimitedLog(log, logging.ERROR)
        self._log_write_error = RateLimitedLog(log, logging.ERROR)

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
            self._log_drop("access-log queue full (OBSERVABILITY__LOG_QUEUE_SIZE=%d): dropped a record; "
                           "%d dropped so far", self._queue.maxsize, self._dropped_when_full + self._dropped_by_writer)

    def stats(self) -> dict[str, Any]:
        """Queue depth (queued plus taken for the next insert), losses, errors, rows written, last flush."""
        return {
            "queue_depth": self._queue.qsize() + len(self._pending),
            "dropped_records": self._dropped_when_full + self._dropped_by_writer,
            "write_errors": self.write_errors,
            "rows_written": self.rows_written,
            "last_flush_at": self.last_flush_at,
        }

    def close(self) -> None:
        """Write everything still queued (trying for up to ``shutdown_grace`` s), then stop. Blocking."""
        self._stopping.set()
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:
            pass  # the writer is busy draining and will see the stop flag without waiting
        self._thread.join()

    # --- writer thread --------------------------------------------------------

    def _run(self) -> None:
        retry_delay = self.first_retry_seconds
        give_up_at: float | None = None
        while not (self._stopping.is_set() and not self._pending and self._queue.empty()):
            try:
                written = self._collect_and_write()
            except Exception:  # a bug here must not silently end the writer
                log.exception("unexpected error in the ClickHouse writer")
                self.write_errors += 1
                written = False
            if written:
                retry_delay = self.first_retry_seconds
                continue
            if not self._stopping.is_set():
                self._stopping.wait(retry_delay)  # returns early when shutdown begins
            else:
                give_up_at = give_up_at or time.monotonic() + self.shutdown_grace
                if time.monotonic() >= give_up_at:
                    self._drop_everything("the server is stopping and ClickHouse still cannot be written")
                    continue
                time.sleep(min(retry_delay, max(0.0, give_up_at - time.monotonic())))
            retry_delay = min(retry_delay * 2, MAX_RETRY_SECONDS)
        self._disconnect()

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
            try:
                if retrying or self._stopping.is_set() or timeout <= 0:
                    item = self._queue.get_nowait()
                else:
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
            self._pending.append(record_to_row(record, self.instance, 0))
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the writer
            self._dropped_by_writer += 1
            self._log_drop("dropped an access record ClickHouse cannot hold: %s", exc)

    def _write_pending(self) -> bool:
        """Insert the pending batch; True when it is stored."""
        try:
            if self.needs_prepare:
                self._prepare()  # idempotent; the server may be new, or may have lost its tables
                self.needs_prepare = False
            client = self._client_connected()
            if self._outcome_unknown:
                self._leave_out_stored_rows(client)
            if self._pending:
                try:
                    self._insert(client, self._pending)
                except _ROW_ERRORS:
                    self._disconnect()  # the block was cut off mid-way: the server drops it with the connection
                    self._outcome_unknown = False
                    self._write_row_by_row()
        except (errors.Error, OSError, EOFError, StartupError) as exc:
            self._on_failure(exc)
            return False
        self.rows_written += len(self._pending)
        self.last_flush_at = time.time()
        self._pending, self._outcome_unknown = [], False
        return True

    def _insert(self, client: Client, rows: list[tuple[Any, ...]]) -> None:
        now_us = time.time_ns() // 1000
        stamped = [(*row[:-1], now_us) for row in rows]  # inserted_us: when the row really went in
        self._outcome_unknown = True
        client.execute(f"INSERT INTO {self._table} ({', '.join(map(quote, INSERT_COLUMNS))}) VALUES", stamped,
                       settings=_INSERT_SETTINGS)

    def _write_row_by_row(self) -> None:
        """Send each row alone; drop only those the driver refuses. A server error leaves the rest pending."""
        while self._pending:
            try:
                self._insert(self._client_connected(), self._pending[:1])
                self.rows_written += 1
            except _ROW_ERRORS as exc:
                self._disconnect()
                self._outcome_unknown = False
                self._dropped_by_writer += 1
                self._log_drop("dropped an access record ClickHouse refused: %s", exc)
            self._pending.pop(0)

    def _leave_out_stored_rows(self, client: Client) -> None:
        """After an insert whose outcome is unknown, drop from the batch the rows the server already has."""
        ids = [row[0] for row in self._pending]
        micros = [row[INSERT_COLUMNS.index("timestamp_us")] for row in self._pending]
        stored = {request_id for (request_id,) in client.execute(
            f"SELECT request_id FROM {self._table} WHERE timestamp_us >= %(low)s AND timestamp_us <= %(high)s "
            "AND request_id IN %(ids)s", {"low": min(micros), "high": max(micros), "ids": tuple(ids)})}
        if stored:
            log.info("%d access record(s) of a failed insert were stored after all; not inserting them again",
                     len(stored))
            self.rows_written += len(stored)
            self._pending = [row for row in self._pending if row[0] not in stored]

    def _on_failure(self, exc: BaseException) -> None:
        self.write_errors += 1
        self._log_write_error("cannot write %d access record(s) to ClickHouse (kept, will retry; %d queued): %s",
                              len(self._pending), self._queue.qsize(), exc)
        self._disconnect()
        self.needs_prepare = True
        if isinstance(exc, errors.ServerException) and exc.code in _MISSING_TABLE_CODES:
            self._outcome_unknown = False  # nothing can have been stored in a table that does not exist

    def _client_connected(self) -> Client:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _disconnect(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail in any way
                pass
            self._client = None

    def _drop_everything(self, reason: str) -> None:
        lost = len(self._pending)
        while True:
            try:
                if self._queue.get_nowait() is not _WAKE:
                    lost += 1
            except queue.Empty:
                break
        self._pending = []
        self._dropped_by_writer += lost
        log.error("dropped %d access record(s): %s", lost, reason)
