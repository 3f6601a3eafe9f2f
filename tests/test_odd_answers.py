"""Answers labelled or shaped oddly: read as the SDKs read them (a stream under another type, a long header)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.hostile_upstream import STREAM, hostile_upstream

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def hostile():
    with hostile_upstream() as server:
        yield server


@pytest.mark.parametrize("sent", ["stream-as", "chunked-stream-as"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/octet-stream"])
def test_a_stream_labelled_as_another_type_is_read_as_the_stream_asked_for(
    proxy_factory, recorder, hostile, sent, content_type
):
    # Before, the record said upstream_invalid_json with no tokens, though the client read a whole stream.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": f"{sent}-{content_type}"}
    response = httpx.post(proxy.url + "/v1/messages", content=json.dumps(BODY), headers=headers, timeout=10)
    assert response.content == STREAM
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_input, record.tokens_output) == (200, None, 10, 5)
    assert record.priced and record.cost_usd > 0


def test_a_json_answer_to_a_request_that_did_not_stream_is_still_read_as_json(proxy_factory, recorder, hostile):
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    response = httpx.post(
        proxy.url + "/v1/messages", content=json.dumps({**BODY, "stream": False}), headers=ANTHROPIC, timeout=10
    )
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 10, 5)


@pytest.mark.parametrize("sent", ["json-as-stream", "stream-as-text/event-stream"])
def test_an_answer_labelled_a_stream_to_a_request_that_asked_for_none_is_read_as_it_is(
    proxy_factory, recorder, hostile, sent
):
    # Before, a JSON Message labelled text/event-stream (which the SDKs read as the JSON they asked for)
    # was recorded as upstream_stream_incomplete with no tokens.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    body = json.dumps({**BODY, "stream": False})
    response = httpx.post(proxy.url + "/v1/messages", content=body, headers={**ANTHROPIC, "x-hostile": sent})
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 10, 5)
    assert record.streaming is (sent != "json-as-stream")


@pytest.mark.parametrize(("length", "status"), [(20_000, 200), (70_000, 502)])
def test_a_long_answer_header_passes_as_the_sdks_read_it_and_a_huge_one_is_refused(
    proxy_factory, recorder, hostile, length, status
):
    # Before, any header over aiohttp's 8 KiB was a 502, though the SDKs read the answer.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": f"header-of-{length}"}
    body = json.dumps({**BODY, "stream": False})
    response = httpx.post(proxy.url + "/v1/messages", content=body, headers=headers, timeout=10)
    assert response.status_code == status
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == status
    if status == 200:
        assert len(response.headers["x-long"]) == length and record.tokens_output == 5


def test_a_stream_in_more_codings_than_ccproxy_undoes_passes_whole_with_its_usage_unknown(
    proxy_factory, recorder, hostile
):
    # Before, its compressed bytes were read as the stream: "bytes that are not UTF-8", an error the client never had.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": "six-codings"}
    with httpx.stream("POST", proxy.url + "/v1/messages", content=json.dumps(BODY), headers=headers) as response:
        body = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == ", ".join(["gzip"] * 6) and len(body) > 0
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output, record.priced) == (200, None, None, False)
