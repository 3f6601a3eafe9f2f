"""Retention: delete rows older than OBSERVABILITY__LOG_RETENTION_DAYS, in the background.

The cutoff is rounded down to the hour, so rollups keep whole hours: a row is deleted at most
an hour after it passes the retention age.

Runs at start-up and then every hour in a thread of its own, on its own cursor. DuckDB lets
appends and reads go on while a DELETE runs, so neither the writer nor queries wait for it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import duckdb

from .database import Database, one_line
from .queries import delete_older_than
from .rollup_keeper import whole_buckets_before

log = logging.getLogger("ccproxy.duckdb")

RETENTION_INTERVAL_SECONDS = 3600.0


class RetentionWorker:
    """Deletes rows older than ``days`` now and every ``interval`` seconds until closed."""

    def __init__(self, database: Database, days: float, interval: float = RETENTION_INTERVAL_SECONDS) -> None:
        self._database = database
        self._age = timedelta(days=days)
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccproxy-duckdb-retention", daemon=True)
        self.runs = 0
        self.deleted = 0

    def start(self) -> None:
        """Start the background thread; its first pass runs at once."""
        self._thread.start()

    def run_once(self) -> int:
        """Delete the rows that are too old now; return how many. Blocking."""
        cutoff = datetime.now(UTC) - self._age
        cursor = self._database.cursor()
        try:
            deleted = delete_older_than(cursor, cutoff, self._database.maintenance_lock)
        finally:
            cursor.close()
        self.runs += 1
        self.deleted += deleted
        if deleted:
            cut_at = whole_buckets_before(cutoff).isoformat()
            log.info("retention deleted %d access log row(s) older than %s", deleted, cut_at)
        return deleted

    def close(self) -> None:
        """Stop the thread (a pass under way finishes first)."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except duckdb.Error as exc:
                log.error("retention could not delete old access log rows (will retry): %s", one_line(str(exc)))
            except Exception as exc:  # noqa: BLE001 - a bug here must not end retention for good
                log.error("retention failed (will retry): %s: %s", type(exc).__name__, one_line(str(exc)))
            self._stopping.wait(self._interval)
