"""Compressed request bodies: forwarded as sent, and read for their model and attribution from a bounded copy."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import brotli
import httpx
import pytest
import zstandard

from ccproxy_core.forwarding.decoding import decode_whole
from ccproxy_core.forwarding.large_bodies import request_fields

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
PAYLOAD = {
    "model": "claude-haiku-4-5",
    "max_tokens": 10,
    "metadata": {"user_id": "alice"},
    "messages": [{"role": "user", "content": "hi"}],
}
ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_compressed_body_is_read_for_its_model_and_attribution(encoding):
    body = ENCODERS[encoding](json.dumps(PAYLOAD).encode())
    payload, model, streaming = asyncio.run(request_fields(body, "application/json", encoding, 10**6))
    assert (payload, model, streaming) == (PAYLOAD, "claude-haiku-4-5", False)


# The mock provider is an aiohttp server, which reads zstd request bodies only with a backport installed.
@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip"])
def test_a_compressed_request_is_recorded_with_its_model_and_end_user(proxy, upstream, recorder, encoding):
    upstream.clear_requests()
    body = ENCODERS[encoding](json.dumps(PAYLOAD).encode())
    answer = httpx.post(
        proxy.url + "/v1/messages", content=body, headers={**HEADERS, "content-encoding": encoding}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    [record] = recorder.wait_for_ends(1)
    assert (record.model, record.end_user, record.status_code) == ("claude-haiku-4-5", "alice", 200)
    assert record.request_bytes == len(body)  # what came over the wire
    [seen] = upstream.requests()
    # Passed on compressed as sent: the provider (which decodes what it reads) got the client's JSON.
    assert (seen.header("content-encoding"), seen.body) == (encoding, json.dumps(PAYLOAD).encode())


def test_a_body_its_encoding_does_not_decode_is_forwarded_with_its_fields_unknown(proxy, recorder):
    headers = {**HEADERS, "content-encoding": "gzip"}
    httpx.post(proxy.url + "/v1/messages", content=json.dumps(PAYLOAD).encode(), headers=headers, timeout=30)
    [record] = recorder.wait_for_ends(1)
    assert record.model is None and record.end_user is None


def test_a_body_that_decodes_past_the_request_size_limit_is_not_read(proxy_factory, recorder):
    # 100 KB of JSON in some 200 bytes of gzip: read as far as a plain body of the largest size accepted.
    proxy = proxy_factory(plugins=[recorder], server={"max_request_bytes": 64 * 1024})
    padded = {**PAYLOAD, "system": "x" * 100_000}
    headers = {**HEADERS, "content-encoding": "gzip"}
    for payload in (padded, PAYLOAD):
        httpx.post(proxy.url + "/v1/messages", content=gzip.compress(json.dumps(payload).encode()), headers=headers)
    assert [record.model for record in recorder.wait_for_ends(2)] == [None, "claude-haiku-4-5"]


def test_decode_whole_stops_at_its_limit_and_names_no_encoding_it_cannot_read():
    text = b"a" * 10_000
    assert decode_whole(gzip.compress(text), "GZIP", 10_000) == text
    assert decode_whole(gzip.compress(text), "gzip", 9_999) is None
    assert decode_whole(text, "identity", 10) == text  # not compressed: nothing to decode
    assert decode_whole(brotli.compress(gzip.compress(text)), "gzip, br", 10**6) == text  # codings in a row
    for mtime in range(300):  # gzip bytes are no brotli data, whatever the header's time makes of them
        assert decode_whole(gzip.compress(text, mtime=mtime), "gzip, br", 10**6) is None
    assert decode_whole(gzip.compress(text)[:-8], "gzip", 10**6) is None  # ends before its end
    assert decode_whole(b"not gzip", "gzip", 10**6) is None
