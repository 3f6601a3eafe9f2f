"""The DuckDB log store: what the ``get_log_store`` hook hands to the logs API.

It implements :class:`ccproxy_core.plugin_host.log_store.LogStore`. Writes go through :class:`LogWriter`
(a queue and one thread); every read runs in a worker thread on a cursor of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.background import background_executor
from ccproxy_core.plugin_host.batch_writer import RESET_WAIT_SECONDS
from ccproxy_core.plugin_host.log_store import Bucket, EncodedRows, Grouping, LogFilters, PagePosition, QueryPage

from . import queries, sessions
from .database import Database
from .groups import groups
from .retention import RetentionWorker
from .rollups import analytics_and_groups, answer_analytics
from .settings import DuckDBSettings
from .writer import LogWriter

T = TypeVar("T")

READER_THREADS = 4
"""Reads run at once; each runs below the event loop's priority (see :mod:`ccproxy_core.plugin_host.background`)."""


class DuckDBLogStore:
    """Access-log storage in one DuckDB file."""

    backend = "duckdb"

    def __init__(self, database: Database, writer: LogWriter, retention: RetentionWorker | None) -> None:
        self.database = database
        self.writer = writer
        self.retention = retention
        self._readers = background_executor(READER_THREADS, "ccproxy-duckdb-read")

    @classmethod
    def open(cls, settings: DuckDBSettings) -> DuckDBLogStore:
        """Open the file, migrate it, start the writer (and retention, when configured). Blocking."""
        return cls.start(open_database(settings), settings)

    @classmethod
    def start(cls, database: Database, settings: DuckDBSettings) -> DuckDBLogStore:
        """Start the writer (and retention, when configured) on an open file. Blocking.

        The writer's thread gets the priority of the calling thread: records must keep up
        with proxied traffic on a busy machine, whereas reads may wait.
        """
        writer = LogWriter(
            database, settings.log_queue_size, settings.log_batch_size, settings.log_flush_interval_seconds
        )
        retention = None
        if settings.log_retention_days is not None:
            retention = RetentionWorker(database, settings.log_retention_days)
        writer.start()
        if retention is not None:
            retention.start()
        return cls(database, writer, retention)

    def submit(self, record: AccessRecord) -> None:
        """Queue one record for writing; never blocks (see :class:`LogWriter` for the loss policy)."""
        self.writer.submit(record)

    def stats(self) -> dict[str, Any]:
        """Writer health: queue_depth, dropped_records, write_errors, rows_written, last_flush_at."""
        return self.writer.stats()

    async def describe(self) -> dict[str, Any]:
        """Path, size on disk and row count of the file."""
        return await self._read(self._describe_blocking)

    def _describe_blocking(self, cursor: queries.Cursor) -> dict[str, Any]:
        return {
            "database_path": str(self.database.path),
            "database_size_bytes": self.database.size_bytes(),
            "row_count": queries.row_count(cursor),
        }

    async def query(self, filters: LogFilters, limit: int, after: PagePosition | None = None) -> QueryPage:
        """Newest-first rows matching ``filters``, after the keyset position ``after``."""
        return await self._read(queries.query_page, filters, limit, after)

    async def entries(
        self, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of rows ordered by ``order_by``, and the number of matching rows."""
        return await self._read(queries.entries_page, page, page_size, order_by, order_desc, filters)

    async def query_encoded(
        self, filters: LogFilters, limit: int, after: PagePosition | None = None
    ) -> tuple[EncodedRows, PagePosition | None]:
        """:meth:`query` with the rows encoded as JSON by DuckDB, the GIL released meanwhile."""
        return await self._read(queries.query_page_encoded, filters, limit, after)

    async def entries_encoded(
        self, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None = None
    ) -> tuple[EncodedRows, int]:
        """:meth:`entries` with the rows encoded as JSON by DuckDB, the GIL released meanwhile."""
        return await self._read(queries.entries_page_encoded, page, page_size, order_by, order_desc, filters)

    async def analytics(self, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
        """Aggregates over the window in ``filters``: from the rollups when they can answer (see :mod:`.rollups`)."""
        return await self._read(answer_analytics, filters, bucket)

    async def analytics_with_groups(
        self, filters: LogFilters, bucket: Bucket, grouping: Grouping
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """:meth:`analytics` and :meth:`groups` read in one transaction: the groups add up to the totals."""
        result, grouped = await self._read(analytics_and_groups, filters, bucket, grouping)
        return result, grouped or []

    async def groups(self, filters: LogFilters, grouping: Grouping) -> list[dict[str, Any]]:
        """Sums per group, top N and ``other`` (see :mod:`.groups`)."""
        return await self._read(groups, filters, grouping)

    async def sessions(self, filters: LogFilters, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Sessions, most recently active first, and how many match."""
        return await self._read(sessions.session_list, filters, limit, offset)

    async def session_requests(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """One session's rows, oldest first."""
        return await self._read(sessions.session_requests, session_id, limit)

    async def session_requests_encoded(self, session_id: str, limit: int) -> EncodedRows:
        """:meth:`session_requests` with the rows encoded as JSON by DuckDB, the GIL released meanwhile."""
        return await self._read(sessions.session_requests_encoded, session_id, limit)

    async def reset(self) -> int:
        """Delete every stored row, the queued ones written first (else they would come back); return how many."""
        await asyncio.to_thread(self.writer.write_queued_now, RESET_WAIT_SECONDS)
        return await self._read(queries.delete_all, self.database.maintenance_lock)

    def close(self) -> None:
        """Write what is queued, stop the threads, close the file. Blocking."""
        if self.retention is not None:
            self.retention.close()
        self.writer.close()
        self._readers.shutdown()
        self.database.close()

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read_blocking, function, *args)

    def _read_blocking(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return self._run_on_new_cursor(function, *args)
        except duckdb.ConnectionException:
            # The writer reopened the file (recovering from a write error) under this read: its
            # cursor died with the old connection. The new connection serves a second try.
            try:
                return self._run_on_new_cursor(function, *args)
            except (duckdb.ConnectionException, duckdb.FatalException):
                raise StoreClosed(self.database.path) from None
        except duckdb.FatalException:  # a write's checkpoint failed: the writer reopens the file
            raise StoreClosed(self.database.path) from None

    def _run_on_new_cursor(self, function: Callable[..., T], *args: Any) -> T:
        with self.database.read_cursor() as cursor:
            return function(cursor, *args)


class StoreClosed(RuntimeError):
    """The file is closed while the writer, recovering from a write error, cannot reopen it yet."""

    def __init__(self, path: Any) -> None:
        super().__init__(
            f"the DuckDB file {path} is closed after a write error and not reopened yet (the server log says "
            "why); reads work again once the writer has reopened it"
        )


def open_database(settings: DuckDBSettings) -> Database:
    """Open and migrate the configured file. Blocking; DuckDB's own threads get the calling thread's priority."""
    return Database.open(
        settings.duckdb_path,
        settings.duckdb_memory_limit,
        settings.duckdb_threads,
        settings.duckdb_checkpoint_threshold,
    )
