"""The ClickHouse writer: the shared batching writer, inserting over the native protocol.

Its loss policy is :mod:`ccproxy_core.plugin_host.batch_writer`'s (the queue is what holds records while
ClickHouse is unreachable: OBSERVABILITY__LOG_QUEUE_SIZE records), and:

- ClickHouse unreachable or failing: the batch is kept and retried, with a backoff from 0.5 s
  doubling up to 5 s, on a new connection each time, after creating the tables again if the
  server lost them (a new server). Nothing is dropped because of the error.
- After a failed insert the outcome is unknown (the server may have stored the batch before the
  connection broke, or may still be storing it), so before retrying, the writer waits until the
  server no longer runs that insert (looked up by its query id), then looks the rows already stored
  up by request_id and leaves them out: a retry never stores a record twice.
- A record ClickHouse cannot hold (a value out of range, text that is not UTF-8) is dropped
  alone, at conversion; should the driver still refuse a batch for its values, the batch is sent
  again row by row and only the refused rows are dropped.
- Shutdown while ClickHouse stays unreachable: the writer keeps trying for ``shutdown_grace_seconds``
  (10 s) from the signal, then drops what is left (the process is exiting). Connections made meanwhile
  wait no longer for an answer than the time left, and one still waiting after it is shut.
"""

from __future__ import annotations

import logging
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

from clickhouse_driver import Client, errors

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.batch_writer import BatchWriter
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

from .rows import record_to_row
from .schema import INSERT_COLUMNS, TABLE, quote

log = logging.getLogger("ccproxy.clickhouse")

_MISSING_TABLE_CODES = {60, 81}  # UNKNOWN_TABLE, UNKNOWN_DATABASE: the server lost its tables (a new server)
# Errors raised by the driver while encoding values, before the server has stored anything.
_ROW_ERRORS = (errors.TypeMismatchError, TypeError, ValueError, OverflowError, struct.error)
_INSERT_SETTINGS = {"insert_distributed_sync": 1}  # a Distributed insert returns once every shard has its rows


class LogWriter(BatchWriter):
    """Writes batches of records to the access-log table of one ClickHouse database (or cluster)."""

    store_name = "ClickHouse"
    first_retry_seconds = 0.5
    max_retry_seconds = 5.0
    shutdown_grace_seconds = 10.0

    def __init__(
        self,
        connect: Callable[..., Client],
        database: str,
        prepare: Callable[[], None],
        queue_size: int,
        batch_size: int,
        flush_interval: float,
    ) -> None:
        super().__init__(log, queue_size, batch_size, flush_interval)
        self._connect = connect
        self._table = f"{database}.{TABLE}"
        self._prepare = prepare
        self._outcome_unknown = False
        self._last_insert_id = ""
        self.needs_prepare = False
        """True until the tables are known to exist on the server (set again after every failure)."""
        self._client: Client | None = None
        self._client_bounded = False  # made once the shutdown began, with a timeout of the time left
        self._interrupted = False  # interrupt() closed the connection under a write: whatever it raises is that
        self.instance = uuid.uuid4().hex[:16]
        """Written into each row's ``instance`` column: tells this process's rows from its peers'."""
        self._log_write_error = RateLimitedLog(log, level=logging.ERROR)
        self._failures_in_a_row = 0

    def to_row(self, record: AccessRecord) -> tuple[Any, ...]:
        return record_to_row(record, self.instance, 0)

    def write_pending(self) -> bool:
        """Insert the pending batch; True when it is stored."""
        try:
            if self.needs_prepare:
                self._prepare()  # idempotent; the server may be new, or may have lost its tables
                self.needs_prepare = False
            client = self._client_connected()
            if self._outcome_unknown:
                if self._still_running(client, self._last_insert_id):
                    self._log_write_error.log(
                        "the failed insert of %d access record(s) is still running on ClickHouse;"
                        " waiting for its outcome before sending them again",
                        len(self._pending),
                    )
                    return False
                self._leave_out_stored_rows(client)
            if self._pending:
                try:
                    self._insert(client, self._pending)
                except _ROW_ERRORS:
                    self.disconnect()  # the block was cut off mid-way: the server drops it with the connection
                    self._outcome_unknown = False
                    self._write_row_by_row()
        except (errors.Error, OSError, EOFError, StartupError) as exc:
            self._on_failure(exc)
            return False
        except Exception as exc:  # the driver fails in any way once interrupt() closed its socket under it
            if not self._interrupted:
                raise
            self._on_failure(OSError(f"the write was cut off as the server stopped ({type(exc).__name__})"))
            return False
        self.note_written(len(self._pending))
        self._pending, self._outcome_unknown = [], False
        if self._failures_in_a_row:
            log.info("writes to ClickHouse resumed after %d failed attempt(s)", self._failures_in_a_row)
            self._failures_in_a_row = 0
        return True

    def disconnect(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail in any way; nothing to tell
                pass
            self._client = None

    def _insert(self, client: Client, rows: list[tuple[Any, ...]]) -> None:
        now_us = time.time_ns() // 1000
        stamped = [(*row[:-1], now_us) for row in rows]  # inserted_us: when the row really went in
        self._outcome_unknown = True
        self._last_insert_id = uuid.uuid4().hex
        client.execute(
            f"INSERT INTO {self._table} ({', '.join(map(quote, INSERT_COLUMNS))}) VALUES",
            stamped,
            settings=_INSERT_SETTINGS,
            query_id=self._last_insert_id,
        )

    @staticmethod
    def _still_running(client: Client, query_id: str) -> bool:
        """Whether the server still runs the query ``query_id``: an insert whose connection broke may
        still be storing its rows (its last bytes late on a slow network), and they would be missed."""
        [(running,)] = client.execute(
            "SELECT count() FROM system.processes WHERE query_id = %(id)s OR initial_query_id = %(id)s",
            {"id": query_id},
        )
        return bool(running)

    def _write_row_by_row(self) -> None:
        """Send each row alone; drop only those the driver refuses. A server error leaves the rest pending."""
        while self._pending:
            try:
                self._insert(self._client_connected(), self._pending[:1])
                self.note_written(1)
            except _ROW_ERRORS as exc:
                self.disconnect()
                self._outcome_unknown = False
                self.drop_refused(1, "dropped access record %s, which ClickHouse refused: %s", self._pending[0][0], exc)
            self._pending.pop(0)

    def _leave_out_stored_rows(self, client: Client) -> None:
        """After an insert whose outcome is unknown, drop from the batch the rows the server already has."""
        ids = [row[0] for row in self._pending]
        micros = [row[INSERT_COLUMNS.index("timestamp_us")] for row in self._pending]
        stored = {
            request_id
            for (request_id,) in client.execute(
                f"SELECT request_id FROM {self._table} WHERE timestamp_us >= %(low)s AND timestamp_us <= %(high)s "
                "AND request_id IN %(ids)s",
                {"low": min(micros), "high": max(micros), "ids": tuple(ids)},
            )
        }
        if stored:
            log.info(
                "%d access record(s) of a failed insert were stored after all; not inserting them again", len(stored)
            )
            self.rows_written += len(stored)
            self._pending = [row for row in self._pending if row[0] not in stored]

    def _on_failure(self, exc: BaseException) -> None:
        self.write_errors += 1
        self._failures_in_a_row += 1
        self._log_write_error.log(
            "cannot write %d access record(s) to ClickHouse (kept, will retry; %d queued): %s",
            len(self._pending),
            len(self._queue),
            failure_text(exc),
        )
        self.disconnect()
        self.needs_prepare = True
        if isinstance(exc, errors.ServerException) and exc.code in _MISSING_TABLE_CODES:
            self._outcome_unknown = False  # nothing can have been stored in a table that does not exist

    def interrupt(self) -> None:
        self._interrupted = True
        client = self._client
        if client is not None:
            client.disconnect()  # from the closing thread: the write waiting on its socket fails at once

    def _client_connected(self) -> Client:
        left = self.seconds_left_to_stop()
        if left is not None and self._client is not None and not self._client_bounded:
            self.disconnect()  # made before the shutdown: each of its calls may wait 30 s
        if self._client is None:
            self._client = self._connect() if left is None else self._connect(max(0.1, left))
            self._client_bounded = left is not None
        return self._client


_CHANGED_TABLE_CODES = {16, 47}  # NO_SUCH_COLUMN_IN_TABLE, UNKNOWN_IDENTIFIER: a column was changed outside ccproxy


def failure_text(exc: BaseException) -> str:
    """What went wrong, in a line: the server's message without its stack trace, a timeout named as one, and
    what to do when the table was changed by hand."""
    if isinstance(exc, errors.SocketTimeoutError):
        return f"ClickHouse did not answer in time, a timeout ({exc})"
    text = str(exc).split("Stack trace", 1)[0].replace("\n", " ").strip().rstrip(".,:")
    if isinstance(exc, errors.ServerException) and exc.code in _CHANGED_TABLE_CODES:
        text += "; the access-log table's columns were changed outside ccproxy: put them back as ccproxy made them"
    return text
