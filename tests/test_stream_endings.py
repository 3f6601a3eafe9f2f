"""How a stream ends decides its record: the provider's last word, then whatever the client does.

The answers are written from the providers' API references (an error chunk or event after
HTTP 200 ends the stream) and sent by a raw upstream that keeps the connection open a while
after, as a provider may; the client hangs up as soon as it has read the error, as the
``openai`` and ``anthropic`` SDKs do when they raise.
"""

from __future__ import annotations

import gzip
import json
import random
import string
import time
from decimal import Decimal

import anthropic
import httpx
import pytest

from .raw_upstream import upstream_and_proxy_fixtures


def stream_answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body) + body


def held_open(body: bytes) -> list[bytes | float]:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return [head + b"%x\r\n" % len(body) + body + b"\r\n", 2.0, b"0\r\n\r\n"]


def chat_chunk(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


CHAT_ERROR = chat_chunk(
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "Hel"}}],
    }
) + chat_chunk({"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}})
MESSAGES_ERROR = (
    b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role":'
    b' "assistant", "model": "claude-haiku-4-5", "content": [], "usage": {"input_tokens": 10, "output_tokens": 1}}}\n\n'
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",'
    b' "text": "Hel"}}\n\n'
    b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
)


def gzipped_stream(deltas: int) -> bytes:
    """A stream that compresses about 2:1 (random letters), so the first chunks decode within the limit."""
    letters = random.Random(7)

    def delta() -> bytes:
        text = "".join(letters.choices(string.ascii_letters, k=500))
        event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return b"event: content_block_delta\ndata: " + json.dumps(event).encode() + b"\n\n"

    body = (
        MESSAGES_ERROR.split(b"event: content_block_delta")[0]
        + b"".join(delta() for _ in range(deltas))
        + b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"},'
        b' "usage": {"output_tokens": 500}}\n\n' + b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    )
    packed = gzip.compress(body)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
    return head + b"content-length: %d\r\n\r\n" % len(packed) + packed


COMPLETE = (
    MESSAGES_ERROR.split(b"event: error")[0]
    + b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"},'
    b' "usage": {"output_tokens": 500}}\n\n' + b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)
PAGE = b"<html><body>Checking your browser...</body></html>"
ANSWERS = {
    "chat-error": held_open(CHAT_ERROR),
    "messages-error": held_open(MESSAGES_ERROR),
    "gzip-stream-4mb": gzipped_stream(6_000),
    # A good chunk, then a chunk-size line that is not hex, then the provider closes the connection.
    "bad-chunk-size": [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(MESSAGES_ERROR.split(b"event: error")[0])
        + MESSAGES_ERROR.split(b"event: error")[0]
        + b"\r\n",
        0.2,
        b"zz-not-hex\r\nevent: message_stop\r\n0\r\n\r\n",
    ],
    "bad-utf8-in-text": stream_answer(COMPLETE.replace(b'"Hel"', b'"He\xffl"')),
    "bad-utf8-in-usage": stream_answer(COMPLETE.replace(b'"end_turn"}', b'"end_\xffturn"}')),
    "lone-cr": stream_answer(COMPLETE.replace(b"\n", b"\r")),
    "html-200": b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n" % len(PAGE) + PAGE,
    "html-chunked": b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n"
    + b"%x\r\n" % len(PAGE)
    + PAGE
    + b"\r\n0\r\n\r\n",
    "html-big": b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n" % (len(PAGE) * 3000)
    + PAGE * 3000,
    "page-as-text": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % len(PAGE) + PAGE,
    "page-unlabelled": b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(PAGE) + PAGE,
}


STREAM_BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 10,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


def raw_headers(kind: str) -> dict[str, str]:
    """An Anthropic client's headers, asking the raw upstream for the answer ``kind``."""
    return {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}


upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def read_until_the_error(proxy, path: str, headers: dict, body: dict, marker: bytes) -> bytes:
    received = b""
    with httpx.stream("POST", proxy.url + path, json=body, headers=headers, timeout=10) as response:
        for chunk in response.iter_bytes():
            received += chunk
            if marker in received:
                break  # the SDKs raise here and close the connection
    return received


@pytest.mark.parametrize(
    ("kind", "path", "headers", "model", "error_type"),
    [
        ("chat-error", "/v1/chat/completions", {"authorization": "Bearer sk-test"}, "gpt-4o-mini", "server_error"),
        (
            "messages-error",
            "/v1/messages",
            {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
            "claude-haiku-4-5",
            "overloaded_error",
        ),
    ],
)
def test_a_client_that_hangs_up_after_the_providers_error_event_is_not_blamed_for_it(
    proxy, recorder, kind, path, headers, model, error_type
):
    body = {"model": model, "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    received = read_until_the_error(proxy, path, headers | {"x-raw": kind}, body, error_type.encode())
    assert received == ANSWERS[kind][0].split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[1][:-2]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, error_type)


@pytest.mark.parametrize("kind", ["html-200", "html-chunked", "html-big", "page-as-text", "page-unlabelled"])
def test_an_html_page_with_200_on_a_metered_route_is_no_success(proxy, recorder, kind):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer sk-test", "x-raw": kind}
    response = httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    # Passed on unchanged, and recorded for what it is.
    assert (response.status_code, response.content) == (200, PAGE * (3000 if kind == "html-big" else 1))
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced) == (200, "upstream_invalid_json", False)


def test_a_compressed_stream_larger_decoded_than_is_read_is_unpriced_not_priced_from_its_start(
    proxy_factory, recorder, upstream
):
    proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], upstream={"max_decoded_bytes": 1024 * 1024})
    response = httpx.post(
        proxy.url + "/v1/messages", json=STREAM_BODY, headers=raw_headers("gzip-stream-4mb"), timeout=30
    )
    assert response.status_code == 200 and response.text.endswith('"message_stop"}\n\n')  # whole, decoded by httpx
    [record] = recorder.wait_for_ends(1)
    # Its usage at the start said 1 output token; the end, never read, said 500.
    assert (record.status_code, record.priced, record.cost_usd) == (200, False, None)


def test_a_stream_whose_chunking_breaks_is_cut_at_once_and_blamed_on_the_provider(proxy, recorder):
    started = time.monotonic()
    headers = raw_headers("bad-chunk-size")
    with pytest.raises(httpx.RemoteProtocolError):  # cut, as the provider cut it: never a clean end
        with httpx.stream(
            "POST", proxy.url + "/v1/messages", json=STREAM_BODY, headers=headers, timeout=20
        ) as response:
            for _ in response.iter_bytes():
                pass
    assert time.monotonic() - started < 10
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_stream_aborted")


@pytest.mark.parametrize(("kind", "priced"), [("bad-utf8-in-text", True), ("bad-utf8-in-usage", False)])
def test_a_stream_with_bytes_that_are_not_utf8_is_no_clean_success(proxy, recorder, kind, priced):
    # The anthropic SDK raises UnicodeDecodeError on such a stream.
    response = httpx.post(proxy.url + "/v1/messages", json=STREAM_BODY, headers=raw_headers(kind), timeout=10)
    assert response.status_code == 200 and b"\xff" in response.content  # passed on unchanged
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced) == (200, "upstream_invalid_stream", priced)
    # The usage event that did not decode is lost: its 500 output tokens are not priced as 1.
    assert record.cost_usd == (10 * 1 + 500 * 5) / Decimal(1_000_000) if priced else record.cost_usd is None


def test_a_stream_whose_lines_end_in_a_bare_carriage_return_is_read_as_the_sdk_reads_it(proxy, recorder):
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "lone-cr"})
    events = list(client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[], stream=True))
    assert [event.type for event in events][-2:] == ["message_delta", "message_stop"]
    assert events[-2].usage.output_tokens == 500
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 500)
    assert record.cost_usd == (10 * 1 + 500 * 5) / Decimal(1_000_000)
