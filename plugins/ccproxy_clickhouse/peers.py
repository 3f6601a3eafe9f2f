"""Other instances' records for this instance's /logs/stream, read back from the shared table.

Each instance sees its own requests in memory (the logs API's ``on_request_end`` observer) and
only those. Every row carries the ``instance`` that wrote it and ``inserted_us``, the moment its
batch was inserted. Once a stream subscriber exists, a thread asks the table every
``interval`` seconds for rows of other instances inserted since the previous poll (less a
``lookback`` margin for clocks and inserts in flight), publishes each one it has not published
yet, and remembers the request_ids of the lookback window so none is published twice. A poll
that reads :data:`MAX_ROWS_PER_POLL` rows (a peer's backlog after an outage) is followed by one
that starts right after its last row, without the lookback, so a backlog reaches the stream
ten thousand rows a second instead of each poll reading the same oldest rows again.

A peer's record reaches the stream after its writer's flush interval plus up to one poll
interval. Insert times come from each instance's clock, so the instances' clocks must agree
(NTP) to within the lookback. The poll only reads rows whose request started within ``max_request_age`` (one hour):
that keeps each poll on the newest part of the table; a request that ran longer than that is
stored and queryable but not streamed to the other instances.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from clickhouse_driver import Client

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.store_answers import micros_to_datetime
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

from .rows import SELECT_LIST, row_to_record
from .schema import TABLE

log = logging.getLogger("ccproxy.clickhouse")

POLL_INTERVAL_SECONDS = 1.0
LOOKBACK_SECONDS = 30.0
MAX_REQUEST_AGE_SECONDS = 3600.0
MAX_ROWS_PER_POLL = 10_000


class PeerFeed:
    """Polls for other instances' rows and hands each to ``publish`` once."""

    def __init__(
        self,
        run: Callable[..., list],
        database: str,
        instance: str,
        interval: float = POLL_INTERVAL_SECONDS,
        lookback: float = LOOKBACK_SECONDS,
    ) -> None:
        self._run = run
        self._table = f"{database}.{TABLE}"
        self._instance = instance
        self._interval = interval
        self._lookback_us = int(lookback * 1_000_000)
        self._publishers: list[Callable[[AccessRecord], None]] = []
        self._seen: set[str] = set()
        self._seen_order: deque[tuple[int, str]] = deque()
        self._since_us = self._floor_us = time.time_ns() // 1000
        self._resume_after: tuple[int, str] | None = None
        """(inserted_us, request_id) of the last row of a poll that stopped at its row limit."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log_error = RateLimitedLog(log, level=logging.WARNING)
        self.published = 0

    def follow(self, publish: Callable[[AccessRecord], None]) -> None:
        """Start handing other instances' new records to ``publish`` (thread-safe, must not block)."""
        with self._lock:
            self._publishers.append(publish)
            if self._thread is None:
                self._since_us = self._floor_us = time.time_ns() // 1000  # from now on, never the table's past
                self._thread = threading.Thread(target=self._loop, name="ccproxy-clickhouse-peers", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop polling."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: the stream goes on with local records
                self._log_error.log("cannot read other instances' records for /logs/stream: %s", exc)

    def poll_once(self) -> int:
        """One poll; return how many records were published."""
        now_us = time.time_ns() // 1000
        since = max(self._since_us - self._lookback_us, self._floor_us)
        rows = self._run(self._select, since, now_us, self._resume_after)
        published = 0
        for inserted_us, row in rows:
            request_id = row[0]
            if request_id in self._seen:
                continue
            self._remember(inserted_us, request_id)
            record = row_to_record(row)
            for publish in list(self._publishers):
                publish(record)
            published += 1
        if len(rows) >= MAX_ROWS_PER_POLL:
            self._resume_after = (rows[-1][0], rows[-1][1][0])
        else:
            self._resume_after = None
            self._since_us = max(self._since_us, now_us)
        self._forget_before(since)
        self.published += published
        return published

    def _select(
        self, client: Client, since_us: int, now_us: int, after: tuple[int, str] | None
    ) -> list[tuple[int, tuple]]:
        oldest_start = now_us - int(MAX_REQUEST_AGE_SECONDS * 1_000_000)
        # The rows of one batch share their inserted_us: request_id orders them, so a poll can
        # resume inside a batch.
        resume = (
            "AND (inserted_us > %(after_us)s OR (inserted_us = %(after_us)s AND request_id > %(after_id)s)) "
            if after
            else ""
        )
        rows = client.execute(
            f"SELECT inserted_us, {SELECT_LIST} FROM {self._table} "
            "WHERE event_date >= %(day)s AND timestamp_us >= %(oldest)s AND inserted_us >= %(since)s "
            f"AND instance != %(me)s {resume}ORDER BY inserted_us, request_id LIMIT {MAX_ROWS_PER_POLL}",
            {
                "day": micros_to_datetime(oldest_start).date(),
                "oldest": oldest_start,
                "since": since_us,
                "me": self._instance,
                "after_us": after[0] if after else 0,
                "after_id": after[1] if after else "",
            },
        )
        return [(row[0], row[1:]) for row in rows]

    def _remember(self, inserted_us: int, request_id: str) -> None:
        self._seen.add(request_id)
        self._seen_order.append((inserted_us, request_id))

    def _forget_before(self, cutoff_us: int) -> None:
        while self._seen_order and self._seen_order[0][0] < cutoff_us:
            self._seen.discard(self._seen_order.popleft()[1])
