"""A ClickHouse insert whose connection broke may still be running on the server: the retry waits for it."""

from __future__ import annotations

import threading
from dataclasses import replace

from clickhouse_driver import Client

from ccproxy_clickhouse.target import parse_url
from ccproxy_clickhouse.writer import LogWriter
from ccproxy_core.testing import wait_until
from tests.clickhouse_servers import PASSWORD, USER
from tests.test_clickhouse_parts import RECORD, open_store


def test_a_retry_waits_while_the_failed_insert_still_runs_then_stores_each_row_once(clickhouse_server):
    open_store(clickhouse_server.url).close()  # the tables
    writer = LogWriter(parse_url(clickhouse_server.url).client, "ccproxy", lambda: None, 100, 100, 0.05)
    writer._pending = [writer.to_row(replace(RECORD, request_id="once"))]
    # The insert whose connection broke, its last bytes still on their way: the server runs it on
    # (here a query with its id that takes two seconds). A retry now would store the rows a second time.
    writer._outcome_unknown, writer._last_insert_id = True, "the-failed-insert"
    slow = Client("127.0.0.1", port=clickhouse_server.port, user=USER, password=PASSWORD)
    running = threading.Thread(target=slow.execute, args=("SELECT sleep(2)",), kwargs={"query_id": "the-failed-insert"})
    running.start()
    try:
        wait_until(
            lambda: (
                clickhouse_server.query("SELECT count() FROM system.processes WHERE query_id = 'the-failed-insert'")
                == [(1,)]
            )
        )
        assert writer.write_pending() is False  # before: inserted at once
        assert clickhouse_server.query("SELECT count() FROM ccproxy.access_logs") == [(0,)]
    finally:
        running.join()
        slow.disconnect()
    assert writer.write_pending() is True
    writer.disconnect()
    assert clickhouse_server.query("SELECT request_id FROM ccproxy.access_logs") == [("once",)]
