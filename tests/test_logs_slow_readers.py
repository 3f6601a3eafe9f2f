"""A /logs client that stops reading its page: the connection is closed at SERVER__SEND_TIMEOUT_SECONDS and
the page let go, rather than held for as long as the client keeps its connection open."""

from __future__ import annotations

import asyncio
import json
import logging

from ccproxy_core.plugin_host.plugins import get_plugin_manager
from ccproxy_core.runtime.app import create_app
from ccproxy_core.testing import make_settings
from ccproxy_logs_api.heavy_reads import PageAnswer, json_answer


def app_with_send_timeout(seconds: float):
    settings = make_settings("http://127.0.0.1:1", server={"send_timeout_seconds": seconds})
    return create_app(settings, get_plugin_manager(settings, []))


def test_a_page_whose_client_stops_reading_is_let_go_at_the_send_timeout(caplog):
    rows = [{"request_id": f"r{index}", "text": "x" * 1000} for index in range(1_000)]
    answer = asyncio.run(json_answer({"results": rows, "count": len(rows)}))
    assert isinstance(answer, PageAnswer)
    sent: list[bytes] = []

    async def stalled_client(message):
        if message["type"] == "http.response.body":
            if sent:  # the socket's buffers are full after the first part: this write never completes
                await asyncio.Event().wait()
            sent.append(message["body"])

    async def serve():
        scope = {"type": "http", "app": app_with_send_timeout(0.2)}
        await asyncio.wait_for(answer(scope, None, stalled_client), timeout=10)

    with caplog.at_level(logging.INFO, logger="ccproxy.logs_api"):
        asyncio.run(serve())
    assert len(sent) == 1 and answer.parts == []  # the rest of the page is no longer held
    assert "SERVER__SEND_TIMEOUT_SECONDS=0.2" in caplog.text


def test_a_page_read_to_its_end_is_the_json_it_always_was():
    rows = [{"request_id": f"r{index}", "n": index} for index in range(250)]
    answer = asyncio.run(json_answer({"results": rows, "count": 250}))
    messages: list[dict] = []

    async def client(message):
        messages.append(message)

    asyncio.run(answer({"type": "http", "app": app_with_send_timeout(5)}, None, client))
    body = b"".join(message.get("body", b"") for message in messages[1:])
    assert json.loads(body) == {"results": rows, "count": 250}
    assert dict(messages[0]["headers"])[b"content-length"] == str(len(body)).encode()
    assert messages[-1]["more_body"] is False and all(m["more_body"] for m in messages[1:-1])


def test_a_slow_but_steady_reader_gets_the_whole_page():
    rows = [{"request_id": f"r{index}", "text": "y" * 10_000} for index in range(300)]  # slices of about 1 MB
    answer = asyncio.run(json_answer({"results": rows, "count": len(rows)}))
    received: list[bytes] = []

    async def reader_at_two_mb_a_second(message):
        if message["type"] == "http.response.body":
            await asyncio.sleep(len(message["body"]) / 2_000_000)  # a write waits for the client to take it
            received.append(message["body"])

    # Each write must see progress within 0.1 s: a whole slice of 1 MB would take 0.5 s, and be cut.
    asyncio.run(answer({"type": "http", "app": app_with_send_timeout(0.1)}, None, reader_at_two_mb_a_second))
    assert json.loads(b"".join(received)) == {"results": rows, "count": 300}


def test_every_answer_counts_among_the_bytes_held_for_readers():
    # Before, an answer without a long list (analytics, sessions) was sent outside the count.
    assert isinstance(asyncio.run(json_answer({"window": {}, "groups": [{"name": "x"}] * 50_000})), PageAnswer)
