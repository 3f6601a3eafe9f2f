"""An answer that is not valid data of its Content-Encoding is passed on as it came, and recorded as an
error: its client cannot read it (the SDKs raise), so it is no success, and its usage is unknown."""

from __future__ import annotations

import gzip
import json

import brotli
import httpx
import pytest
import zstandard

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
).encode()
CORRUPT_GZIP = gzip.compress(MESSAGE)[:12] + b"\x00garbage\xff" * 8
CORRUPT_ZSTD = b"\x28\xb5\x2f\xfd" + b"not a frame" * 4


def encoded(body: bytes, encoding: bytes, content_type: bytes = b"application/json") -> bytes:
    answer = json_answer(b"200 OK", body, b"content-encoding: " + encoding + b"\r\n")
    return answer.replace(b"application/json", content_type, 1)


ANSWERS = {
    "gzip-json": encoded(CORRUPT_GZIP, b"gzip"),
    "zstd-json": encoded(CORRUPT_ZSTD, b"zstd"),
    "gzip-stream": encoded(CORRUPT_GZIP, b"gzip", b"text/event-stream"),
    "valid-gzip-json": encoded(gzip.compress(MESSAGE), b"gzip"),
    "valid-zstd-json": encoded(zstandard.ZstdCompressor().compress(MESSAGE), b"zstd"),
    # RFC 9110: codings given on two lines are one list, applied in order (gzip, then br).
    "two-lines": encoded(brotli.compress(gzip.compress(MESSAGE)), b"gzip\r\ncontent-encoding: br"),
    # A coding no client undoes: the SDKs' httpx skips it, aiohttp and Node's fetch read the body as it came.
    "none": encoded(MESSAGE, b"none"),
    "four-gzips": encoded(
        gzip.compress(gzip.compress(gzip.compress(gzip.compress(MESSAGE)))), b"gzip, gzip, gzip, gzip"
    ),
    "rate-limited-none": json_answer(
        b"429 Too Many Requests",
        b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
        b"content-encoding: UTF-8\r\n",
    ),
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def send(proxy, kind: str) -> httpx.Response:
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    body = {**BODY, "stream": kind.endswith("stream")}
    return httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("kind", ["gzip-json", "zstd-json", "gzip-stream"])
def test_a_corrupt_compressed_answer_is_passed_on_and_recorded_as_an_error(proxy, recorder, kind):
    with httpx.Client(timeout=10) as client:  # read the bytes as sent, undecoded
        headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
        with client.stream("POST", proxy.url + "/v1/messages", json=BODY, headers=headers) as answer:
            raw = b"".join(answer.iter_raw())
    assert answer.status_code == 200 and raw in (CORRUPT_GZIP, CORRUPT_ZSTD)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_encoding")
    assert record.error_message.startswith("the answer is not valid data of its content-encoding")
    assert (record.tokens_input, record.cost_usd, record.priced) == (None, None, False)


@pytest.mark.parametrize("kind", ["valid-gzip-json", "valid-zstd-json", "two-lines", "none", "four-gzips"])
def test_a_valid_compressed_answer_is_read(proxy, recorder, kind):
    assert send(proxy, kind).json()["usage"] == {"input_tokens": 10, "output_tokens": 5}
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 10, 5)


def test_an_error_in_a_coding_no_client_undoes_is_read_as_it_came(proxy, recorder):
    answer = send(proxy, "rate-limited-none")
    assert answer.status_code == 429 and answer.json()["error"]["type"] == "rate_limit_error"
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.error_message) == (429, "rate_limit_error", "slow down")
