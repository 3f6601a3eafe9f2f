"""Nothing lost under load: N concurrent requests give N rows, N counted, N live events, same ids.

One real ccproxy (metrics, DuckDB collection and the logs API on) in front of the mock
provider takes N requests, 64 at a time: both providers, streamed and not, some answered
with a provider error. An SSE client is subscribed to /logs/stream from before the first
request until after the last. Every request id the clients were given must then be in
DuckDB, on the stream (once) and counted in ccproxy_requests_total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter

import aiohttp
import httpx
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import wait_until

N = 2000
CONCURRENCY = 64
# The stream's per-subscriber buffer is raised to N: this test is about loss in the
# pipeline, not about the documented drop of a subscriber that falls 1000 events behind
# (tests/test_logs_api_stream.py shows that one).
OBSERVABILITY = {
    "metrics_endpoint_enabled": True,
    "logs_collection_enabled": True,
    "logs_endpoints_enabled": True,
    "log_flush_interval_seconds": 0.2,
    "stream_queue_size": N,
}
ANTHROPIC = {"x-api-key": "sk-ant-volume", "anthropic-version": "2023-06-01", "x-mock-delta-count": "3"}
OPENAI = {"authorization": "Bearer sk-volume", "x-mock-delta-count": "3"}
HELLO = [{"role": "user", "content": "hello"}]


def request_for(index: int) -> tuple[str, dict, dict]:
    """(path, headers, body) of request ``index``: eight kinds in turn, two of them provider errors."""
    kind = index % 8
    if kind in (0, 1, 4, 6):
        headers = {**ANTHROPIC, **({"x-mock-status": "429"} if kind == 4 else {})}
        body = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": HELLO, "stream": kind in (1, 6)}
        return "/v1/messages", headers, body
    headers = {**OPENAI, **({"x-mock-status": "500"} if kind == 5 else {})}
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": kind == 3}
    if kind == 3:
        body["stream_options"] = {"include_usage": True}
    return "/v1/chat/completions", headers, body


async def send_all(proxy_url: str) -> list[tuple[int, str]]:
    """Send the N requests, CONCURRENCY at a time; (status, x-ccproxy-request-id) of each, read to the end."""
    gate = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        proxy_url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:

        async def one(index: int) -> tuple[int, str]:
            path, headers, body = request_for(index)
            async with gate, session.post(path, json=body, headers=headers) as response:
                await response.read()
                return response.status, response.headers["x-ccproxy-request-id"]

        return await asyncio.gather(*(one(index) for index in range(N)))


class StreamReader:
    """A /logs/stream subscriber in a thread, keeping every ``record`` event it reads."""

    def __init__(self, proxy_url: str) -> None:
        self.url = proxy_url + "/logs/stream"
        self.event_ids: list[str] = []
        self.request_ids: list[str] = []
        self.other_events: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        event, event_id = None, None
        with (
            contextlib.suppress(httpx.HTTPError),  # a failed stream shows as missing events
            httpx.stream("GET", self.url, timeout=httpx.Timeout(60, read=None)) as response,
        ):
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("id:"):
                    event_id = line.partition(":")[2].strip()
                elif line.startswith("data:") and event == "record":
                    self.event_ids.append(event_id)
                    self.request_ids.append(json.loads(line.partition(":")[2])["request_id"])
                elif line.startswith("data:"):
                    self.other_events.append(f"{event}: {line}")


def requests_total(proxy_url: str) -> Counter:
    """ccproxy_requests_total from /metrics, summed by status."""
    by_status: Counter = Counter()
    for family in text_string_to_metric_families(httpx.get(proxy_url + "/metrics").text):
        for sample in family.samples:
            if sample.name == "ccproxy_requests_total":
                by_status[int(sample.labels["status"])] += int(sample.value)
    return by_status


def test_n_concurrent_requests_give_n_rows_n_counts_and_n_events(proxy_factory):
    proxy = proxy_factory(observability=OBSERVABILITY)
    reader = StreamReader(proxy.url)
    reader.start()
    wait_until(lambda: httpx.get(proxy.url + "/logs/status").json()["stream_subscribers"] == 1)

    answers = asyncio.run(send_all(proxy.url))
    client_ids = {request_id for _status, request_id in answers}
    statuses = Counter(status for status, _request_id in answers)
    assert len(client_ids) == N
    assert statuses == {200: N * 6 // 8, 429: N // 8, 500: N // 8}

    # row_count and the writer's figures are read a moment apart: wait until both say "all written"
    status = wait_until(
        lambda: (
            (body := httpx.get(proxy.url + "/logs/status").json())["row_count"] == N
            and body["queue_depth"] == 0
            and body
        ),
        timeout=30,
    )
    assert (status["dropped_records"], status["write_errors"]) == (0, 0)
    stored = httpx.get(proxy.url + "/logs/query", params={"limit": 10_000}).json()["results"]
    assert {row["request_id"] for row in stored} == client_ids and len(stored) == N

    assert wait_until(lambda: sum(requests_total(proxy.url).values()) == N, timeout=15)
    assert requests_total(proxy.url) == statuses

    wait_until(lambda: len(reader.request_ids) >= N, timeout=15)
    reader.stop.set()
    assert reader.other_events == []  # no "dropped" event
    assert len(set(reader.event_ids)) == len(reader.event_ids) == N
    assert set(reader.request_ids) == client_ids
