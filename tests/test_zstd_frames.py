"""A zstd answer is read frame after frame, as the SDKs' httpx reads it, and one that ends inside a frame is
no success: httpx (the SDKs' client) raises "Zstandard data is incomplete" when the body ends there, even after every event
came (it says nothing of a gzip, deflate or brotli answer cut short). Its usage still counts: the
provider sent it whole."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
import zstandard

from .raw_upstream import json_answer, stream_answer, upstream_and_proxy_fixtures
from .test_sdk_agreement import HAIKU_COST, message_stream
from .test_sdk_agreement import MESSAGE as SDK_MESSAGE

STREAM = message_stream("message_delta")  # claude-haiku-4-5: 1,000 tokens in, 15 out
# The same message answered whole: claude-haiku-4-5, 1,000 tokens in, 15 out.
MESSAGE = json.dumps(
    SDK_MESSAGE
    | {
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 15},
    }
).encode()
# 140 KB that compress to some 500 bytes, in two zstd blocks: decoding stops at a 1 KiB limit inside the frame.
LARGE_TEXT = "a" * 140_000 + "".join(hashlib.sha256(b"%d" % n).hexdigest() for n in range(8))
LARGE_MESSAGE = json.dumps(SDK_MESSAGE | {"content": [{"type": "text", "text": LARGE_TEXT}]}).encode()
SKIPPABLE_FRAME = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"ccprx"  # RFC 8878, 3.1.2


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def zstd_stream(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: zstd\r\nconnection: close\r\n\r\n"
    return head + body


HALF = len(STREAM) // 2
ANSWERS = {
    "whole-stream": zstd_stream(zstd(STREAM)),
    # Every event is there; the frame's 4-byte checksum is not.
    "stream-cut-before-checksum": zstd_stream(zstd(STREAM)[:-4]),
    "three-frames-stream": zstd_stream(zstd(STREAM[:HALF]) + SKIPPABLE_FRAME + zstd(STREAM[HALF:])),
    "second-frame-cut": zstd_stream(zstd(STREAM[:HALF]) + zstd(STREAM[HALF:])[:-4]),
    "whole-json": json_answer(b"200 OK", zstd(MESSAGE), b"content-encoding: zstd\r\n"),
    "json-cut-before-checksum": json_answer(b"200 OK", zstd(MESSAGE)[:-4], b"content-encoding: zstd\r\n"),
    "plain-stream": stream_answer(STREAM),
    # A whole answer that decodes past UPSTREAM__MAX_DECODED_BYTES: decoding stops inside its frame on purpose.
    "json-past-the-limit": json_answer(b"200 OK", zstd(LARGE_MESSAGE), b"content-encoding: zstd\r\n"),
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def read(proxy, kind: str) -> bytes:
    """The answer as httpx decodes it (the SDKs' own client, which reads zstd where the zstd module is installed)."""
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", proxy.url + "/v1/messages", json=body, headers=headers) as answer:
            return b"".join(answer.iter_bytes())


@pytest.mark.parametrize("kind", ["whole-stream", "three-frames-stream", "plain-stream", "whole-json"])
def test_a_whole_zstd_answer_is_a_success(proxy, recorder, kind):
    assert read(proxy, kind) == (MESSAGE if kind == "whole-json" else STREAM)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (1000, 15, HAIKU_COST)


@pytest.mark.parametrize("kind", ["stream-cut-before-checksum", "second-frame-cut", "json-cut-before-checksum"])
def test_an_answer_ending_inside_a_zstd_frame_fails_as_httpx_fails_it(proxy, recorder, kind):
    with pytest.raises(httpx.DecodingError, match="Zstandard data is incomplete"):
        read(proxy, kind)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_encoding")
    assert "ends inside a zstd frame" in record.error_message
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (1000, 15, HAIKU_COST)


def test_a_zstd_answer_decoded_past_the_limit_is_no_cut_frame(proxy_factory, recorder, upstream):
    # Before, decoding stopped at the limit inside the frame, and the record blamed the provider for the cut.
    proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], upstream={"max_decoded_bytes": 1024})
    assert len(zstd(LARGE_MESSAGE)) < 1024 < len(LARGE_MESSAGE)  # read whole, then decoded past the limit
    assert read(proxy, "json-past-the-limit") == LARGE_MESSAGE
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_input, record.priced) == (200, None, None, False)
