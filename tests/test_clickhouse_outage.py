"""ClickHouse goes away for 30 seconds under 100 requests a second: nothing is lost, nothing is stored twice.

A real clickhouse-server is stopped (SIGTERM) and started again on the same port and data.
While it is away the proxy keeps answering, the records wait in the writer's queue and are
retried; afterwards every request is stored exactly once and no record was dropped.
"""

from __future__ import annotations

import threading
import time

import httpx

from ccproxy_core.testing import wait_until
from tests.clickhouse_instances import ANTHROPIC_HEADERS, MESSAGE
from tests.test_clickhouse_logs_api import clickhouse_storage

RATE = 100  # requests per second
BEFORE, OUTAGE, AFTER = 5.0, 30.0, 5.0


class PacedLoad:
    """Sends one small request every 1/RATE s from a thread until stopped; keeps ids and statuses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[str] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": MESSAGE}
        started = time.monotonic()
        with httpx.Client(base_url=self.url, headers=ANTHROPIC_HEADERS, timeout=30) as client:
            sent = 0
            while not self._stop.is_set():
                delay = started + sent / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                response = client.post("/v1/messages", json=body)
                self.statuses.append(response.status_code)
                self.ids.append(response.headers["x-request-id"])
                sent += 1

    def __enter__(self) -> PacedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_30_second_outage_at_100_requests_a_second_loses_nothing(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url, log_flush_interval_seconds=0.2))
    status = lambda: httpx.get(f"{proxy.url}/logs/status").json()  # noqa: E731
    with PacedLoad(proxy.url) as load:
        time.sleep(BEFORE)
        clickhouse_server.stop()
        during_outage = len(load.ids)
        time.sleep(OUTAGE)
        waiting = httpx.get(f"{proxy.url}/logs/status")
        queued_in_outage = len(load.ids) - during_outage
        clickhouse_server.start()
        time.sleep(AFTER)
    assert set(load.statuses) == {200}  # the proxy never stopped answering
    assert queued_in_outage >= 0.8 * RATE * OUTAGE  # the load kept its pace through the outage
    assert waiting.status_code == 503  # reads fail while ClickHouse is away; the writer holds the records
    final = wait_until(lambda: (s := status())["queue_depth"] == 0 and s["rows_written"] >= len(load.ids) and s,
                       timeout=60, interval=0.5)
    assert final["dropped_records"] == 0 and final["write_errors"] > 0
    stored = clickhouse_server.query("SELECT request_id FROM ccproxy.access_logs")
    stored_ids = [request_id for (request_id,) in stored]
    assert len(stored_ids) == len(load.ids) and set(stored_ids) == set(load.ids)  # each once, none lost
