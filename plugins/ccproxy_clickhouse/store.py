"""The ClickHouse log store: what the ``get_log_store`` hook hands to the logs API.

It implements :class:`ccproxy_core.plugin_host.log_store.LogStore` like the DuckDB store does, plus
``follow_peer_records`` (other instances' records for /logs/stream, see :mod:`.peers`).
Writes go through :class:`.writer.LogWriter`; every read runs in a worker thread on a client
of its own, against ``access_logs`` (the Distributed table when a cluster is configured).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from clickhouse_driver import Client, errors

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.error_lines import error_line
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.batch_writer import RESET_WAIT_SECONDS
from ccproxy_core.plugin_host.log_store import Bucket, Grouping, LogFilters, PagePosition, QueryPage

from . import queries
from . import target as clickhouse_target
from .analytics import analytics
from .groups import groups, session_list, session_requests
from .migrate import match_distributed, prepare_server, supports_ttl
from .peers import PeerFeed
from .pool import ClientPool
from .retention import PartitionRetention
from .schema import Layout
from .settings import ClickHouseSettings
from .shards import cluster_servers, is_same_server
from .target import Target, parse_url
from .writer import LogWriter

log = logging.getLogger("ccproxy.clickhouse")

T = TypeVar("T")
UNREACHABLE = (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError)


class ClickHouseLogStore:
    """Access-log storage in ClickHouse: one server, or a cluster behind a Distributed table."""

    backend = "clickhouse"

    def __init__(self, target: Target, layout: Layout, settings: ClickHouseSettings) -> None:
        self.target = target
        self.layout = layout
        self._retention_days = settings.log_retention_days
        self.pool = ClientPool(target.client)
        self.writer = LogWriter(
            target.client,
            layout.database,
            self.prepare_now,
            settings.log_queue_size,
            settings.log_batch_size,
            settings.log_flush_interval_seconds,
        )
        self.peers = PeerFeed(self.pool.run, layout.database, self.writer.instance)
        self.retention: PartitionRetention | None = None

    @classmethod
    def open(cls, settings: ClickHouseSettings) -> ClickHouseLogStore:
        """Parse the URL, prepare the tables, start the writer (and retention). Blocking.

        An unreachable server does not stop start-up: records wait in the writer's queue and the
        tables are created when it answers. Any other refusal (bad credentials, unknown cluster,
        a schema from a newer ccproxy) does, with a line saying what to fix.
        """
        if not settings.clickhouse_url:
            raise StartupError(
                "OBSERVABILITY__LOG_STORAGE_BACKEND=clickhouse needs OBSERVABILITY__CLICKHOUSE_URL "
                "(clickhouse://user:password@host:9000/database)"
            )
        target = parse_url(settings.clickhouse_url.get_secret_value())
        store = cls(target, Layout(target.database, settings.clickhouse_cluster or None), settings)
        logging.getLogger("clickhouse_driver").setLevel(
            logging.ERROR
        )  # its per-attempt tracebacks; ours are rate-limited
        store._prepare_at_start()
        store.writer.start()
        return store

    def _prepare_at_start(self) -> None:
        client = self.target.client(database="default")
        try:
            self.prepare(client)
            if self._retention_days is not None and not supports_ttl(client):
                self.retention = PartitionRetention(
                    self.pool.run, self.layout.database, self.layout.storage_table, self._retention_days
                )
                self.retention.start()
        except UNREACHABLE as exc:
            self.writer.needs_prepare = True
            log.error(
                "ClickHouse at %s is unreachable (%s): records will wait in the queue and the tables will "
                "be created when it answers",
                self.target.masked(),
                exc,
            )
        except errors.Error as exc:
            raise StartupError(
                f"ClickHouse at {self.target.masked()} refused to set up the access log: {error_line(exc)}"
            ) from None
        except LookupError as exc:
            raise StartupError(f"{exc}: fix OBSERVABILITY__CLICKHOUSE_CLUSTER or the server's remote_servers") from None
        finally:
            client.disconnect()

    def prepare_now(self) -> None:
        """:meth:`prepare` on a new connection (to ``default``: the database itself may be missing)."""
        client = self.target.client(database="default")
        try:
            self.prepare(client)
        finally:
            client.disconnect()

    def prepare(self, client: Client) -> None:
        """Create what is missing on this server and (with a cluster) on every shard that answers.

        The MergeTree tables of every shard first, then the Distributed tables (see :mod:`.migrate`).
        """
        prepare_server(client, self.layout, self._retention_days, self.target.masked())
        shards = self._other_shards(client)
        reached = [shard for shard in shards if self._on_shard(shard, self._prepare_shard)]
        match_distributed(client, self.layout)
        for shard in reached:
            self._on_shard(shard, lambda shard_client, _: match_distributed(shard_client, self.layout))

    def _prepare_shard(self, shard_client: Client, shard: Target) -> None:
        prepare_server(
            shard_client, Layout(self.layout.database, self.layout.cluster), self._retention_days, shard.masked()
        )

    @staticmethod
    def _on_shard(shard: Target, work: Callable[[Client, Target], None]) -> bool:
        """``work(client, shard)`` on a new connection to ``shard``; False when the shard does not answer."""
        shard_client = shard.client(database="default")
        try:
            work(shard_client, shard)
            return True
        except UNREACHABLE as exc:
            log.warning("could not prepare shard %s now (%s); the instance connected to it will", shard.masked(), exc)
            return False
        finally:
            shard_client.disconnect()

    def _other_shards(self, client: Client) -> list[Target]:
        if not self.layout.cluster:
            return []
        servers = cluster_servers(client, self.target, self.layout.cluster)
        return [server for server in servers if not is_same_server(server, self.target)]

    # --- the LogStore contract ---------------------------------------------------

    def submit(self, record: AccessRecord) -> None:
        """Queue one record for writing; never blocks (see :class:`.writer.LogWriter` for the loss policy)."""
        self.writer.submit(record)

    def stats(self) -> dict[str, Any]:
        """Writer health: queue_depth, dropped_records, write_errors, rows_written, last_flush_at."""
        return self.writer.stats()

    async def describe(self) -> dict[str, Any]:
        """The masked URL (and cluster), size on disk over every server, and the row count."""
        return await self._read(self._describe_blocking)

    def _describe_blocking(self, client: Client) -> dict[str, Any]:
        where = self.target.masked() + (f" (cluster {self.layout.cluster})" if self.layout.cluster else "")
        return {
            "database_path": where,
            "database_size_bytes": self._size_on_disk(client),
            "row_count": queries.row_count(client, self.layout.database),
        }

    def _size_on_disk(self, client: Client) -> int | None:
        total = queries.bytes_on_disk(client, self.layout.database, self.layout.storage_table)
        for shard in self._other_shards(client):
            try:
                total += self._on_server(shard, queries.bytes_on_disk, self.layout.database, self.layout.storage_table)
            except UNREACHABLE:
                return None
        return total

    async def query(self, filters: LogFilters, limit: int, after: PagePosition | None = None) -> QueryPage:
        """Newest-first rows matching ``filters``, after the keyset position ``after``."""
        return await self._read(queries.query_page, self.layout.database, filters, limit, after)

    async def entries(
        self, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of rows ordered by ``order_by``, and the number of matching rows."""
        return await self._read(
            queries.entries_page, self.layout.database, page, page_size, order_by, order_desc, filters
        )

    async def analytics(self, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
        """Aggregates over the window in ``filters`` (see :mod:`.analytics`)."""
        return await self._read(analytics, self.layout.database, filters, bucket)

    async def groups(self, filters: LogFilters, grouping: Grouping) -> list[dict[str, Any]]:
        """Sums per group, top N and ``other`` (see :mod:`.groups`)."""
        return await self._read(groups, self.layout.database, filters, grouping)

    async def sessions(self, filters: LogFilters, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Sessions, most recently active first, and how many match."""
        return await self._read(session_list, self.layout.database, filters, limit, offset)

    async def session_requests(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """One session's rows, oldest first."""
        return await self._read(session_requests, self.layout.database, session_id, limit)

    async def reset(self) -> int:
        """Empty the table on every server of the cluster (or the one server), this instance's queued records
        written first (else they would come back); return how many rows were deleted."""
        await asyncio.to_thread(self.writer.write_queued_now, RESET_WAIT_SECONDS)
        return await self._read(self._reset_blocking)

    def _reset_blocking(self, client: Client) -> int:
        deleted = queries.delete_all_rows(client, self.layout.database, self.layout.storage_table)
        for shard in self._other_shards(client):
            deleted += self._on_server(shard, queries.delete_all_rows, self.layout.database, self.layout.storage_table)
        return deleted

    # --- other instances' records for /logs/stream ------------------------------

    def follow_peer_records(self, publish: Callable[[AccessRecord], None]) -> None:
        """Hand every record other instances store from now on to ``publish`` (see :mod:`.peers`)."""
        self.peers.follow(publish)

    def close(self, within: float | None = None) -> None:
        """Write what is queued, stop the threads, disconnect. Blocking. ``within``: see ``BatchWriter.close``."""
        started = time.monotonic()
        self.peers.close()
        if self.retention is not None:
            self.retention.close()
        self.writer.close(within=None if within is None else within - (time.monotonic() - started))
        self.pool.close()

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(self.pool.run, function, *args)
        except errors.SocketTimeoutError:  # its own text is only "Code: 209."
            raise TimeoutError(
                f"ClickHouse did not answer within {clickhouse_target.SEND_RECEIVE_TIMEOUT_SECONDS} s"
            ) from None

    @staticmethod
    def _on_server(server: Target, function: Callable[..., T], *args: Any) -> T:
        client = server.client()
        try:
            return function(client, *args)
        finally:
            client.disconnect()
