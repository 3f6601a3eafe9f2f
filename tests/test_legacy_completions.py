"""Anthropic's legacy Text Completions API (``POST /v1/complete``) streamed through ccproxy.

The answers are written from Anthropic's documentation ("Streaming Text Completions"): ``completion``
events (and ``ping``), the last one with a non-null ``stop_reason`` and no ``message_stop`` after it;
an error is ``event: error`` whose data is ``{"error": {"type", "message"}}``, with no top-level
``type``. The API reports no token usage, so these answers are never priced.
"""

from __future__ import annotations

import json

import httpx
import pytest

from .raw_upstream import upstream_and_proxy_fixtures

MODEL = "claude-2.1"
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


def completion(text: str, stop_reason: str | None = None) -> bytes:
    data = {"type": "completion", "completion": text, "stop_reason": stop_reason, "model": MODEL}
    return b"event: completion\ndata: " + json.dumps(data).encode() + b"\n\n"


PING = b'event: ping\ndata: {"type": "ping"}\n\n'
OVERLOADED = b'event: error\ndata: {"error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
WHOLE = PING + completion(" Hello") + completion("!") + completion("", "stop_sequence")
AT_MAX_TOKENS = completion(" Hello") + completion(" there", "max_tokens")
CUT = PING + completion(" Hello") + completion("!")


def sized(body: bytes) -> bytes:
    return HEAD + b"content-length: %d\r\n\r\n" % len(body) + body


def chunk(body: bytes) -> bytes:
    return b"%x\r\n" % len(body) + body + b"\r\n"


def held_open(body: bytes) -> list[bytes | float]:
    """The answer in one chunk, then the connection stays open a while, as a provider's may."""
    return [HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunk(body), 2.0, b"0\r\n\r\n"]


ANSWERS: dict[str, bytes | list[bytes | float]] = {
    "whole": sized(WHOLE),
    "max-tokens": sized(AT_MAX_TOKENS),
    "whole-held-open": held_open(WHOLE),
    "error": held_open(completion(" Hel") + OVERLOADED),
    "cut-cleanly": sized(CUT),
    # The connection is closed with no last chunk: the stream breaks off.
    "cut-off": [HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunk(CUT)],
    # A first event without text, then the text a while later: the first token is the text.
    "text-later": [
        HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunk(PING + completion("")),
        0.4,
        chunk(completion(" Hello") + completion("", "stop_sequence")) + b"0\r\n\r\n",
    ],
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
BODY = {"model": MODEL, "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5, "stream": True}


def headers(kind: str) -> dict[str, str]:
    """An Anthropic client's headers, asking the raw upstream for the answer ``kind``."""
    return {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}


def body_of(kind: str) -> bytes:
    answer = ANSWERS[kind]
    return answer.split(b"\r\n\r\n", 1)[1] if isinstance(answer, bytes) else b""


@pytest.mark.parametrize(
    ("kind", "path"), [("whole", "/v1/complete"), ("max-tokens", "/v1/complete"), ("whole", "/api/v1/complete")]
)
def test_a_text_completions_stream_that_ends_with_a_stop_reason_is_a_success(proxy, recorder, kind, path):
    response = httpx.post(proxy.url + path, json=BODY, headers=headers(kind), timeout=10)
    assert (response.status_code, response.content) == (200, body_of(kind))  # passed on unchanged
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.error_message) == (200, None, None)
    assert record.streaming and record.ttft_ms is not None
    assert (record.model, record.response_model, record.endpoint) == (MODEL, MODEL, "/v1/complete")
    # The API reports no usage: nothing is made up.
    assert (record.tokens_input, record.tokens_output, record.cost_usd, record.priced) == (None, None, None, False)


def test_the_first_token_of_a_text_completions_stream_is_its_first_text(proxy, recorder):
    response = httpx.post(proxy.url + "/v1/complete", json=BODY, headers=headers("text-later"), timeout=10)
    assert response.status_code == 200 and response.text.endswith(
        '"stop_reason": "stop_sequence", "model": "claude-2.1"}\n\n'
    )
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
    assert record.ttft_ms is not None and record.ttft_ms >= 400


def test_a_client_that_hangs_up_after_the_last_completion_event_had_the_whole_answer(proxy, recorder):
    received = b""
    with httpx.stream("POST", proxy.url + "/v1/complete", json=BODY, headers=headers("whole-held-open")) as response:
        for piece in response.iter_bytes():
            received += piece
            if b'"stop_sequence"' in received:
                break  # a client stops reading at the stop_reason, the provider's connection still open
    assert received == WHOLE
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.ttft_ms is not None) == (200, None, True)


def test_a_text_completions_error_event_is_the_records_error(proxy, recorder):
    received = b""
    with httpx.stream("POST", proxy.url + "/v1/complete", json=BODY, headers=headers("error"), timeout=10) as response:
        for piece in response.iter_bytes():
            received += piece
            if b"overloaded_error" in received:
                break  # the SDKs raise here and close the connection
    assert received == completion(" Hel") + OVERLOADED
    [record] = recorder.wait_for_ends(1)
    # The stream had started: the client got 200, and the provider's error is the record's.
    assert (record.status_code, record.error_type, record.error_message) == (200, "overloaded_error", "Overloaded")
    assert record.streaming and record.ttft_ms is not None


@pytest.mark.parametrize(
    ("kind", "error_type"), [("cut-cleanly", "upstream_stream_incomplete"), ("cut-off", "upstream_stream_aborted")]
)
def test_a_text_completions_stream_cut_before_its_stop_reason_is_no_success(proxy, recorder, kind, error_type):
    try:
        httpx.post(proxy.url + "/v1/complete", json=BODY, headers=headers(kind), timeout=10)
    except httpx.RemoteProtocolError:
        assert kind == "cut-off"  # cut, as the provider cut it
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, error_type)
    assert record.ttft_ms is not None  # its text had started
    assert (record.tokens_output, record.priced) == (None, False)


def test_the_text_completions_ending_counts_on_its_own_route_only(proxy, recorder):
    # A Messages stream still ends with message_stop alone: the same bytes there are incomplete.
    body = {"model": MODEL, "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + "/v1/messages", json=body, headers=headers("whole"), timeout=10)
    httpx.post(proxy.url + "/v1/complete", json=BODY, headers=headers("whole"), timeout=10)
    messages, legacy = recorder.wait_for_ends(2)
    assert (messages.endpoint, messages.error_type, messages.ttft_ms) == (
        "/v1/messages",
        "upstream_stream_incomplete",
        None,
    )
    assert (legacy.endpoint, legacy.error_type) == ("/v1/complete", None)
