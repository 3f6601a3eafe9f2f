"""Instances sharing a real ClickHouse: their records for each other's /logs/stream, and starting together."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ccproxy_clickhouse import migrate
from ccproxy_clickhouse.peers import MAX_ROWS_PER_POLL, PeerFeed
from ccproxy_clickhouse.queries import row_count
from ccproxy_clickhouse.schema import SCHEMA_VERSION, VERSION_TABLE
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


def test_an_instance_migrating_while_another_does_takes_its_columns_and_versions_as_applied(
    clickhouse_server, monkeypatch
):
    # Two instances starting on an older table at once: one read the columns, then the other added
    # finish_reason and recorded version 3. Before, the first failed to start ("column with this
    # name already exists"), or recorded version 3 a second time.
    store = open_store(clickhouse_server.url)  # the other instance: every migration applied
    store.close()
    stale_reads = {"versions": 1, "columns": 1}

    def versions_read_before(client, database):
        if stale_reads["versions"]:
            stale_reads["versions"] -= 1
            return SCHEMA_VERSION - 1
        return real_stored_version(client, database)

    def columns_read_before(client, layout, table):
        columns = real_column_types(client, layout, table)
        if stale_reads["columns"]:
            stale_reads["columns"] -= 1
            columns.pop("finish_reason")
        return columns

    real_stored_version, real_column_types = migrate.stored_version, migrate._column_types
    monkeypatch.setattr(migrate, "stored_version", versions_read_before)
    monkeypatch.setattr(migrate, "_column_types", columns_read_before)
    client = store.target.client(database="default")
    try:
        migrate.prepare_server(client, store.layout, None, "test")
    finally:
        client.disconnect()
    versions = clickhouse_server.query(f"SELECT version FROM {store.layout.database}.{VERSION_TABLE} ORDER BY version")
    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
