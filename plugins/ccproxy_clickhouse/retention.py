"""Retention on servers without table TTL (before 19.6): drop whole day partitions that are too old.

Servers with TTL get ``MODIFY TTL event_date + toIntervalDay(N)`` at start-up instead (see
:mod:`.migrate`) and this worker is not started. A day partition is dropped once all of it is
older than OBSERVABILITY__LOG_RETENTION_DAYS (rounded up to whole days), so rows are kept at
least that long and at most one day longer. With a cluster, each instance drops the
partitions of the server it connects to.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from clickhouse_driver import Client

log = logging.getLogger("ccproxy.clickhouse")

RETENTION_INTERVAL_SECONDS = 3600.0


def expired_partitions(client: Client, database: str, table: str, keep_after: date) -> list[date]:
    """The days of the partitions of ``table`` older than ``keep_after``."""
    rows = client.execute(
        "SELECT DISTINCT partition FROM system.parts WHERE active AND database = %(d)s AND table = %(t)s",
        {"d": database, "t": table},
    )
    days = (_partition_day(partition) for (partition,) in rows)
    return sorted(day for day in days if day is not None and day < keep_after)


def _partition_day(partition: str) -> date | None:
    try:
        return date.fromisoformat(partition.strip("'"))
    except ValueError:
        return None


class PartitionRetention:
    """Drops expired day partitions now and every ``interval`` seconds until closed."""

    def __init__(
        self,
        run: Callable[..., int],
        database: str,
        table: str,
        days: float,
        interval: float = RETENTION_INTERVAL_SECONDS,
    ) -> None:
        self._run = run
        self._database = database
        self._table = table
        self._days = math.ceil(days)
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ccproxy-clickhouse-retention", daemon=True)
        self.dropped_partitions = 0

    def start(self) -> None:
        """Start the thread; its first pass runs at once."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread."""
        self._stopping.set()
        self._thread.join()

    def run_once(self) -> int:
        """Drop what is too old now; return how many partitions. Blocking."""
        return self._run(self._drop_expired)

    def _drop_expired(self, client: Client) -> int:
        keep_after = datetime.now(UTC).date() - timedelta(days=self._days)
        expired = expired_partitions(client, self._database, self._table, keep_after)
        for partition in expired:
            client.execute(f"ALTER TABLE {self._database}.{self._table} DROP PARTITION '{partition.isoformat()}'")
            log.info("retention dropped access_logs partition %s", partition)
        self.dropped_partitions += len(expired)
        return len(expired)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: try again next hour
                log.error("retention could not drop old access_logs partitions (will retry): %s", exc)
            self._stopping.wait(self._interval)
