"""Room for request bodies (SERVER__MAX_BUFFERED_BODY_BYTES): a body keeps room for its own size once
read, a request waits its turn only so long, and one whose client left meanwhile is not sent on."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from ccproxy_core.forwarding import unforwarded
from ccproxy_core.testing import wait_until

from .test_server_limits import ANTHROPIC, BODY, address

LARGE = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * (128 * 1024)}]}).encode()
HEAD = (
    b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
    b"content-type: application/json\r\n"
)
LIMITS = {"max_request_bytes": 4 * 1024 * 1024, "max_buffered_body_bytes": 4 * 1024 * 1024}


def trickle(sock: socket.socket, seconds: float, step: int = 4096) -> None:
    """Send a declared 4 MiB body ``step`` bytes every quarter second (16 KiB a second by default: fast enough
    never to time out alone), too slowly to end before ``seconds``."""
    sock.sendall(HEAD + b"content-length: 4194304\r\n\r\n")
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            sock.sendall(b" " * step)
        except OSError:  # answered and closed
            return
        time.sleep(0.25)


def test_a_small_chunked_body_holds_no_room_while_its_answer_is_awaited(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server=LIMITS)
    slow = {**ANTHROPIC, "x-mock-latency-ms": "4000"}
    chunked = threading.Thread(
        target=httpx.post,
        args=(proxy.url + "/v1/messages",),
        kwargs={"content": iter([json.dumps(BODY).encode()]), "headers": slow, "timeout": 30},
    )
    chunked.start()
    budget = proxy.app.state.proxy.body_budget
    wait_until(lambda: proxy.app.state.proxy.requests_in_flight == 1)
    wait_until(lambda: budget.available == budget.total)
    # Before: the chunked body kept the largest body's room until its answer came, 4 s later.
    answer = httpx.post(proxy.url + "/v1/messages", content=LARGE, headers=ANTHROPIC, timeout=30)
    assert answer.status_code == 200 and chunked.is_alive() and budget.waits == 0
    chunked.join(30)
    assert sorted(record.status_code for record in recorder.wait_for_ends(2)) == [200, 200]


def test_a_request_that_waits_too_long_for_body_room_gets_a_recorded_503_and_is_not_sent_on(
    proxy_factory, recorder, upstream
):
    proxy = proxy_factory(plugins=[recorder], server={**LIMITS, "body_timeout_seconds": 1})
    httpx.delete(upstream.url + "/_mock/requests")
    with socket.create_connection(address(proxy.url)) as holder:
        # 80 KiB a second: fast enough to keep its room while others wait for it.
        holding = threading.Thread(target=trickle, args=(holder, 5, 20 * 1024))
        holding.start()
        budget = proxy.app.state.proxy.body_budget
        wait_until(lambda: budget.available == 0)
        started = time.monotonic()
        answer = httpx.post(proxy.url + "/v1/messages", content=LARGE, headers=ANTHROPIC, timeout=30)
        waited = time.monotonic() - started
        holding.join(30)
    assert answer.status_code == 503 and waited < 4.5  # twice SERVER__BODY_TIMEOUT_SECONDS, not the holder's 5 s
    assert "SERVER__MAX_BUFFERED_BODY_BYTES" in answer.json()["error"]["message"]
    refused = next(record for record in recorder.wait_for_ends(2) if record.status_code == 503)
    assert refused.error_type == "proxy_busy" and refused.upstream_status is None
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == []
    wait_until(lambda: budget.available == budget.total)


def test_a_body_trickling_into_room_another_request_waits_for_is_cut(proxy_factory, recorder):
    # 16 KiB a second keeps a body alone in time (1 KiB a second is the floor); before, it held the room of
    # a 4 MiB body for over four minutes, and every other large request got 503 meanwhile.
    proxy = proxy_factory(plugins=[recorder], server={**LIMITS, "body_timeout_seconds": 1})
    with socket.create_connection(address(proxy.url)) as holder:
        holding = threading.Thread(target=trickle, args=(holder, 8))
        holding.start()
        budget = proxy.app.state.proxy.body_budget
        wait_until(lambda: budget.available == 0)
        answer = httpx.post(proxy.url + "/v1/messages", content=LARGE, headers=ANTHROPIC, timeout=30)
        holding.join(30)
    assert answer.status_code == 200
    assert sorted(record.status_code for record in recorder.wait_for_ends(2)) == [200, 408]


@pytest.mark.parametrize("size", [128 * 1024, 600_000])  # more than uvicorn holds before it stops reading
def test_a_client_that_left_while_its_request_waited_for_body_room_is_not_sent_on(
    proxy_factory, recorder, upstream, size
):
    proxy = proxy_factory(plugins=[recorder], server={**LIMITS, "body_timeout_seconds": 5})
    httpx.delete(upstream.url + "/_mock/requests")
    budget = proxy.app.state.proxy.body_budget
    with socket.create_connection(address(proxy.url)) as holder:
        holding = threading.Thread(target=trickle, args=(holder, 3))
        holding.start()
        wait_until(lambda: budget.available == 0)
        with socket.create_connection(address(proxy.url)) as leaving:
            body = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * size}]}).encode()
            leaving.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(body) + body)
            wait_until(lambda: budget.waits == 1)
        holding.join(30)
    # The holder's body was cut short by its own hang-up, and the waiting one's client had left: neither went on.
    records = recorder.wait_for_ends(2)
    assert [(record.status_code, record.error_type) for record in records] == [(499, "client_disconnected")] * 2
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == []
    wait_until(lambda: budget.available == budget.total)


def test_a_client_that_left_while_waiting_until_refused_is_recorded_as_gone_not_refused(
    proxy_factory, recorder, upstream
):
    proxy = proxy_factory(plugins=[recorder], server={**LIMITS, "body_timeout_seconds": 1})
    httpx.delete(upstream.url + "/_mock/requests")
    budget = proxy.app.state.proxy.body_budget
    body = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 600_000}]}).encode()
    with socket.create_connection(address(proxy.url)) as holder:
        holding = threading.Thread(target=trickle, args=(holder, 4, 20 * 1024))  # fast enough to keep its room
        holding.start()
        wait_until(lambda: budget.available == 0)
        with socket.create_connection(address(proxy.url)) as leaving:
            leaving.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(body) + body)
            wait_until(lambda: budget.waits == 1)
        # Refused once twice SERVER__BODY_TIMEOUT_SECONDS have passed: its client was gone by then.
        gone = recorder.wait_for_ends(1)
        holding.join(30)
    # Before: 503 proxy_busy, as if a client had been told so.
    assert [(record.status_code, record.error_type) for record in gone] == [(499, "client_disconnected")]
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == []


def test_a_refusal_cut_by_the_shutdown_while_it_looks_for_its_client_is_answered_and_recorded(
    proxy_factory, recorder, monkeypatch
):
    async def cut(receive) -> bool:
        raise asyncio.CancelledError

    monkeypatch.setattr(unforwarded, "left_before_read", cut)
    proxy = proxy_factory(plugins=[recorder], server={**LIMITS, "body_timeout_seconds": 1})
    budget = proxy.app.state.proxy.body_budget
    with socket.create_connection(address(proxy.url)) as holder:
        holding = threading.Thread(target=trickle, args=(holder, 4, 20 * 1024))  # fast enough to keep its room
        holding.start()
        wait_until(lambda: budget.available == 0)
        answer = httpx.post(proxy.url + "/v1/messages", content=LARGE, headers=ANTHROPIC, timeout=30)
        refused = recorder.wait_for_ends(1)
        holding.join(30)
    # Before: uvicorn's bare 500, and no record.
    assert answer.status_code == 503 and answer.json()["error"]["message"] == "ccproxy is shutting down"
    assert [(record.status_code, record.error_type) for record in refused] == [(503, "proxy_cancelled")]
