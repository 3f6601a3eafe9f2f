"""The include-usage edit: a large request's made in a worker thread, a compressed one's on its decoded text."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import threading

import httpx
import pytest
from multidict import CIMultiDict

from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES
from ccproxy_core.forwarding.request_edits import prepared_body
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_settings


def test_a_large_body_is_edited_off_the_event_loop_and_a_small_one_on_it():
    threads: list[bool] = []

    def prepare(endpoint, body, opted_in):
        threads.append(threading.current_thread() is threading.main_thread())
        return bytes(body) + b" "

    provider = dataclasses.replace(PROVIDERS["openai"], prepare_body=prepare)
    opted_in = make_settings("http://127.0.0.1:1", upstream={"openai_stream_include_usage": True}).upstream
    small, large = b"{}", b"{" + b" " * LARGE_BODY_BYTES + b"}"
    assert asyncio.run(prepared_body(provider, "/v1/chat/completions", small, opted_in)) == small + b" "
    assert asyncio.run(prepared_body(provider, "/v1/chat/completions", large, opted_in)) == large + b" "
    assert threads == [True, False]
    left_alone = make_settings("http://127.0.0.1:1").upstream
    assert asyncio.run(prepared_body(provider, "/v1/chat/completions", large, left_alone)) is large
    assert threads == [True, False]  # not opted in: not even looked at
    anthropic = PROVIDERS["anthropic"]
    assert asyncio.run(prepared_body(anthropic, "/v1/messages", large, opted_in)) is large


CHAT = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (gzip.compress(json.dumps(CHAT).encode()), {"content-encoding": "gzip"}),
        (b"\xef\xbb\xbf" + json.dumps(CHAT).encode(), {}),  # a byte order mark, which JSON parsers read past
    ],
)
def test_a_compressed_or_marked_chat_stream_is_asked_for_its_usage_too(
    proxy_factory, recorder, upstream, body, headers
):
    # Left as it came, the stream had no usage: unpriced, and past any budget of its key.
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_stream_include_usage": True})
    upstream.clear_requests()
    headers |= {"authorization": "Bearer sk-test", "content-type": "application/json"}
    response = httpx.post(proxy.url + "/v1/chat/completions", content=body, headers=headers, timeout=10)
    assert response.status_code == 200 and b'"usage"' in response.content
    [sent] = upstream.requests()
    assert sent.header("content-encoding") is None
    assert json.loads(sent.body.removeprefix(b"\xef\xbb\xbf"))["stream_options"] == {"include_usage": True}
    [record] = recorder.wait_for_ends(1)
    assert record.priced and record.tokens_output is not None


def test_a_compressed_request_that_needs_no_change_is_sent_as_it_came(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_stream_include_usage": True})
    upstream.clear_requests()
    declined = CHAT | {"stream_options": {"include_usage": False}}
    body = gzip.compress(json.dumps(declined).encode())
    headers = {"authorization": "Bearer sk-test", "content-type": "application/json", "content-encoding": "gzip"}
    httpx.post(proxy.url + "/v1/chat/completions", content=body, headers=headers, timeout=10)
    [sent] = upstream.requests()
    # (The upstream's server hands on the body decoded.)
    assert sent.header("content-encoding") == "gzip" and sent.json() == declined


@pytest.mark.parametrize(
    "body",
    [
        gzip.compress(json.dumps(CHAT).encode()) + b"junk",  # not gzip as the provider reads it: it may refuse it
        gzip.compress(json.dumps(CHAT | {"pad": "a" * LARGE_BODY_BYTES}).encode()),  # two large copies to hold
    ],
)
def test_a_compressed_body_ccproxy_would_repair_or_hold_large_is_sent_as_it_came(body):
    opted_in = make_settings("http://127.0.0.1:1", upstream={"openai_stream_include_usage": True}).upstream
    headers = CIMultiDict({"content-encoding": "gzip"})
    sent = asyncio.run(prepared_body(PROVIDERS["openai"], "/v1/chat/completions", body, opted_in, headers, 1 << 25))
    assert sent is body and headers["content-encoding"] == "gzip"
