"""ClickHouse goes away for 30 seconds under 100 requests a second: nothing is lost, nothing is stored twice.

A real clickhouse-server is stopped (SIGTERM) and started again on the same port and data.
While it is away, the 3,000 requests that 30 s at 100 req/s bring are sent (paced to at most
100 a second; a slow machine takes longer, and the outage with it), and it stays away 30 s at least.
While it is away the proxy keeps answering, the records wait in the writer's queue and are
retried; afterwards every request is stored exactly once and no record was dropped.
"""

from __future__ import annotations

import time

import httpx
import pytest

from ccproxy_core.testing import wait_until
from tests.clickhouse_instances import ANTHROPIC_HEADERS, MESSAGE
from tests.test_clickhouse_logs_api import clickhouse_storage

RATE = 100  # requests per second, at most
OUTAGE_SECONDS = 30.0
DURING_OUTAGE = int(RATE * OUTAGE_SECONDS)  # what 30 s at 100 req/s sends; a slower machine takes longer
AROUND = 300  # requests before the outage and after it


def send_paced(client: httpx.Client, count: int, ids: list[str], statuses: list[int]) -> None:
    """``count`` small requests, at most RATE a second; their ids and statuses are appended."""
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": MESSAGE}
    started = time.monotonic()
    for sent in range(count):
        delay = started + sent / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = client.post("/v1/messages", json=body)
        statuses.append(response.status_code)
        ids.append(response.headers["x-ccproxy-request-id"])


@pytest.mark.timeout(900)
def test_a_30_second_outage_at_100_requests_a_second_loses_nothing(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url, log_flush_interval_seconds=0.2))
    ids: list[str] = []
    statuses: list[int] = []
    with httpx.Client(base_url=proxy.url, headers=ANTHROPIC_HEADERS, timeout=30) as client:
        send_paced(client, AROUND, ids, statuses)
        clickhouse_server.stop()
        stopped = time.monotonic()
        send_paced(client, DURING_OUTAGE, ids, statuses)  # ClickHouse is away all along
        waiting = client.get("/logs/status")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))  # the outage lasts 30 s at least
        clickhouse_server.start()
        send_paced(client, AROUND, ids, statuses)
    assert set(statuses) == {200} and len(ids) == 2 * AROUND + DURING_OUTAGE  # the proxy never stopped answering
    # While ClickHouse is away the status still answers, with the writer's queue and why the store is silent.
    assert waiting.status_code == 200 and "could not answer" in waiting.json()["store_error"]
    assert waiting.json()["queue_depth"] > 0 and waiting.json()["row_count"] is None

    def status() -> dict:
        return httpx.get(f"{proxy.url}/logs/status").json()

    final = wait_until(
        lambda: (s := status())["queue_depth"] == 0 and s["rows_written"] >= len(ids) and s, timeout=120, interval=0.5
    )
    assert final["dropped_records"] == 0 and final["write_errors"] > 0
    stored_ids = [request_id for (request_id,) in clickhouse_server.query("SELECT request_id FROM ccproxy.access_logs")]
    assert len(stored_ids) == len(ids) and set(stored_ids) == set(ids)  # each once, none lost


def test_a_frozen_clickhouse_does_not_freeze_the_status(proxy_factory, clickhouse_server):
    import signal

    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    clickhouse_server.process.send_signal(signal.SIGSTOP)  # the port stays open, nothing answers
    try:
        started = time.monotonic()
        status = httpx.get(f"{proxy.url}/logs/status", timeout=60)
        took = time.monotonic() - started
    finally:
        clickhouse_server.process.send_signal(signal.SIGCONT)
    assert status.status_code == 200 and "within 3 s" in status.json()["store_error"]
    assert took < 10  # before, it waited for the driver's 30 s timeout


def test_a_frozen_clickhouse_is_named_in_the_logs_api_503(proxy_factory, clickhouse_server, monkeypatch):
    import signal

    from ccproxy_clickhouse import target

    monkeypatch.setattr(target, "SEND_RECEIVE_TIMEOUT_SECONDS", 2)  # clients made from now on wait 2 s, not 30
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    assert httpx.get(f"{proxy.url}/logs/query").status_code == 200  # the read pool holds a connected client
    clickhouse_server.process.send_signal(signal.SIGSTOP)
    try:
        answer = httpx.get(f"{proxy.url}/logs/query", timeout=60)
    finally:
        clickhouse_server.process.send_signal(signal.SIGCONT)
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the log store could not answer: ClickHouse did not answer within 2 s"
