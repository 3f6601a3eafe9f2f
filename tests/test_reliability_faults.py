"""Upstream faults: what the client receives, one record each, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from ccproxy_core import hookimpl
from ccproxy_core.testing import wait_until

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}


class LoopProbe:
    """Keeps the server's event loop, so a test can count its tasks and pooled connections."""

    @hookimpl
    def on_startup(self, app):
        self.loop = asyncio.get_running_loop()
        self.app = app

    def tasks(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(5)

    def connections_in_use(self) -> int:
        pools = self.app.state.proxy.pools.values()
        # aiohttp exposes no public count of a connector's connections in use
        return sum(len(getattr(pool.session.connector, "_acquired", ())) + pool.in_use for pool in pools)


@contextlib.contextmanager
def unanswering_listener():
    """A loopback port whose accept queue is full, so a new connection never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(server.getsockname())
            fillers.append(filler)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_connect_timeout_gives_504_and_one_record(proxy_factory, recorder):
    with unanswering_listener() as url:
        proxy = proxy_factory(plugins=[recorder], upstream_url=url, upstream={"connect_timeout_seconds": 0.3})
        response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=HEADERS, timeout=10)
    assert response.status_code == 504
    assert response.json() == {  # Anthropic's error shape, named by ccproxy's id of the request
        "type": "error",
        "error": {"type": "timeout_error", "message": response.json()["error"]["message"]},
        "request_id": response.headers["x-ccproxy-request-id"],
    }
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_timeout" and record.status_code == 504
    assert (
        record.error_message == "could not connect to anthropic within UPSTREAM__CONNECT_TIMEOUT_SECONDS"
    )  # never sent: not billed


def test_slow_bytes_within_the_read_timeout_arrive_whole(proxy, recorder):
    slow = {**HEADERS, "x-mock-slow-bytes-ms": "5"}
    direct_like = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=HEADERS).json()
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=slow, timeout=30)
    assert response.status_code == 200
    assert response.json()["usage"] == direct_like["usage"]
    records = recorder.wait_for_ends(2)
    assert records[1].status_code == 200 and records[1].error_type is None


def test_stream_slower_than_the_read_timeout_is_cut_and_recorded(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream={"read_timeout_seconds": 0.3})
    slow = {**HEADERS, "x-mock-delta-interval-ms": "1000", "x-mock-delta-count": "3"}
    with pytest.raises(httpx.HTTPError):
        with httpx.stream(
            "POST", proxy.url + "/v1/messages", json={**BODY, "stream": True}, headers=slow, timeout=10
        ) as response:
            for _ in response.iter_bytes():
                pass
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_timeout" and record.streaming
    assert record.error_message == "the provider stopped sending its answer"  # not the library's wording


def test_retry_after_is_passed_through_on_openai_429(proxy, recorder):
    headers = {"authorization": "Bearer sk-test", "x-mock-status": "429", "x-mock-retry-after": "12"}
    response = httpx.post(
        proxy.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []}, headers=headers
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "12"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 429 and record.error_type


def test_faults_leave_no_task_or_connection_behind(proxy_factory, recorder):
    probe = LoopProbe()
    proxy = proxy_factory(plugins=[probe, recorder], upstream={"read_timeout_seconds": 1})
    httpx.post(proxy.url + "/v1/messages", json=BODY, headers=HEADERS)  # warm the pool
    recorder.wait_for_ends(1)
    baseline = probe.tasks()
    faults = [
        {"x-mock-status": "500"},
        {"x-mock-status": "529"},
        {"x-mock-malformed": "1"},
        {"x-mock-abort-after": "2"},
        {"x-mock-latency-ms": "3000"},
        {"x-mock-delta-count": "400", "x-mock-delta-interval-ms": "20"},
    ]
    for index, fault in enumerate(faults):
        with contextlib.suppress(httpx.HTTPError):
            with httpx.stream(
                "POST",
                proxy.url + "/v1/messages",
                json={**BODY, "stream": True},
                headers={**HEADERS, **fault},
                timeout=10,
            ) as response:
                for position, _ in enumerate(response.iter_bytes()):
                    if index == len(faults) - 1 and position == 1:
                        break  # the client walks away mid-stream
    records = recorder.wait_for_ends(1 + len(faults))
    assert len(records) == 1 + len(faults) and len({r.request_id for r in records}) == len(records)
    assert wait_until(lambda: probe.tasks() <= baseline)
    assert wait_until(lambda: probe.connections_in_use() == 0)


def test_an_answer_cut_by_the_read_timeout_keeps_the_providers_request_id_for_its_support(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream={"read_timeout_seconds": 0.3})
    slow = {**HEADERS, "x-mock-slow-bytes-ms": "1000"}
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=slow, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert response.status_code == 504 and record.error_type == "upstream_timeout"
    # The provider saw this request: its id, not ccproxy's, is what its support can look up.
    assert record.upstream_request_id and response.headers["request-id"] == record.upstream_request_id
    assert response.headers["request-id"] != response.headers["x-ccproxy-request-id"]


def test_an_error_no_provider_saw_names_ccproxys_id_where_sdks_look(proxy_factory, recorder):
    with unanswering_listener() as url:
        proxy = proxy_factory(plugins=[recorder], upstream_url=url, upstream={"connect_timeout_seconds": 0.3})
        response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=HEADERS, timeout=10)
    assert response.status_code == 504  # the connection was never made: no provider saw it
    assert response.headers["request-id"] == response.headers["x-ccproxy-request-id"]
    unreachable = proxy_factory(plugins=[recorder], upstream_url="http://127.0.0.1:9")  # nothing listens
    refused_connection = httpx.post(unreachable.url + "/v1/messages", json=BODY, headers=HEADERS, timeout=10)
    assert refused_connection.status_code == 502
    assert refused_connection.headers["request-id"] == refused_connection.headers["x-ccproxy-request-id"]
    never_connected = recorder.wait_for_ends(2)
    assert [(record.cost_usd, record.priced) for record in never_connected] == [(0, True)] * 2
    # aiohttp sends a GET again when a reused connection turns out closed: a failure to connect may then
    # follow an attempt the provider received, so it is not taken for one no provider saw.
    listing = httpx.get(unreachable.url + "/v1/models", headers=HEADERS, timeout=10)
    assert listing.status_code == 502 and "request-id" not in listing.headers
    assert recorder.wait_for_ends(3)[2].priced is False
    refused = proxy_factory(plugins=[recorder], server={"max_request_bytes": 1024})
    large = {**BODY, "messages": [{"role": "user", "content": "x" * 2000}]}
    too_large = httpx.post(refused.url + "/v1/messages", json=large, headers=HEADERS, timeout=10)
    assert too_large.status_code == 413
    assert too_large.headers["request-id"] == too_large.headers["x-ccproxy-request-id"]
