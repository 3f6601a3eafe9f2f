"""Other instances' records for /logs/stream, read back from a real ClickHouse shared by two stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ccproxy_clickhouse.peers import MAX_ROWS_PER_POLL, PeerFeed
from ccproxy_clickhouse.queries import row_count
from ccproxy_core.testing import make_record, wait_until
from tests.test_clickhouse_money import open_store

BACKLOG = MAX_ROWS_PER_POLL + 2_500


def test_a_peers_backlog_larger_than_one_poll_reaches_the_stream_in_the_next_polls(clickhouse_server):
    # Before, each poll read the same oldest ten thousand rows of the lookback window again, and the
    # rest waited until those had left it (some thirty seconds).
    mine, peer = open_store(clickhouse_server.url), open_store(clickhouse_server.url, log_queue_size=2 * BACKLOG)
    try:
        feed = PeerFeed(mine.pool.run, mine.layout.database, mine.writer.instance)  # polled by hand: no thread
        published: list[str] = []
        feed._publishers.append(lambda record: published.append(record.request_id))
        now = datetime.now(UTC)
        for number in range(BACKLOG):
            peer.submit(replace(make_record(), request_id=f"peer-{number:05d}", timestamp=now))
        database = mine.layout.database
        wait_until(lambda: mine.pool.run(row_count, database) == BACKLOG, timeout=60)
        counts = [feed.poll_once() for _ in range(3)]
        assert counts == [MAX_ROWS_PER_POLL, BACKLOG - MAX_ROWS_PER_POLL, 0]
        assert sorted(published) == [f"peer-{number:05d}" for number in range(BACKLOG)]
    finally:
        mine.close()
        peer.close()
