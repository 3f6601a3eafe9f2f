"""Whole answers too large to read on the event loop are read beside it, and priced the same.

A Messages answer of several MiB (a long text), sent plain and gzip-compressed by a raw upstream;
and a model name of a million characters, cut before it is priced.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from decimal import Decimal

import anthropic
import brotli
import httpx
import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage, usage_from_json
from ccproxy_core.forwarding import answer_reading
from ccproxy_core.forwarding.answer_reading import ACCOUNTED_IN_THREAD_BYTES, COMPRESSED_IN_THREAD_BYTES
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.providers.base import MAX_MODEL_CHARS_READ, read_model

from .raw_upstream import upstream_and_proxy_fixtures

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "word " * (ACCOUNTED_IN_THREAD_BYTES // 2)}],
    "stop_reason": "max_tokens",
    "stop_sequence": None,
    "usage": {"input_tokens": 1000, "output_tokens": 64000, "cache_read_input_tokens": 0},
}
BODY = json.dumps(MESSAGE).encode()
HAIKU_COST = (1000 * 1 + 64000 * 5) / Decimal(1_000_000)  # claude-haiku-4-5: $1 / $5 per million tokens


def answer(body: bytes, encoding: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(body)
    return head + (b"content-encoding: " + encoding + b"\r\n" if encoding else b"") + b"\r\n" + body


# A valid answer whose extra field is a million empty objects: 3 MB of text (3 KB gzipped) that would
# take some 300 MB as Python objects; sixty times more of it took 1.9 GB before it was checked.
TREE = json.dumps({**MESSAGE, "content": [], "extra": [{}] * 1_000_000}, separators=(",", ":")).encode()
TREE_EVENT = (
    b"event: message_delta\ndata: "
    + json.dumps(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 9},
            "extra": [{}] * 1_000_000,
        },
        separators=(",", ":"),
    ).encode()
)
START_EVENT = (
    b"event: message_start\ndata: "
    + json.dumps(
        {
            "type": "message_start",
            "message": {**MESSAGE, "content": [], "usage": {"input_tokens": 1000, "output_tokens": 1}},
        }
    ).encode()
)
TREE_STREAM = START_EVENT + b"\n\n" + TREE_EVENT + b'\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'


def stream_answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body) + body


DECLARED = 2 << 20  # over the proxy's decoding limit below (1 MiB)
SMALL = json.dumps({**MESSAGE, "content": [{"type": "text", "text": "Hi"}]}).encode()

ANSWERS = {
    "not-modified": b"HTTP/1.1 304 Not Modified\r\ncontent-length: %d\r\n\r\n" % DECLARED,
    "declared-large": [answer(b"x" * DECLARED)[: -DECLARED + 100], 10.0, b"x" * (DECLARED - 100)],
    "small-br": answer(brotli.compress(SMALL), b"br"),
    "small-gzip": answer(gzip.compress(SMALL), b"gzip"),
    "plain": answer(BODY),
    "gzip": answer(gzip.compress(BODY), b"gzip"),
    "gzip-then-junk": answer(gzip.compress(BODY) + b"junk", b"gzip"),
    "tree": answer(gzip.compress(TREE), b"gzip"),
    "tree-stream": stream_answer(TREE_STREAM),
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["plain", "gzip", "gzip-then-junk"])  # the SDK's decoder reads the first member
def test_a_large_whole_answer_is_priced_from_its_usage(proxy, recorder, kind):
    assert len(BODY) > ACCOUNTED_IN_THREAD_BYTES
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": kind})
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=[])
    assert message.usage.output_tokens == 64000 and len(message.content[0].text) == len(MESSAGE["content"][0]["text"])
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 64000)
    assert record.cost_usd == HAIKU_COST


def event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_a_compressed_answer_of_a_few_kilobytes_is_read_beside_the_event_loop(proxy, recorder, monkeypatch):
    # A few KB of gzip may decode to 64 MiB: its decoding and reading happen in a worker thread.
    assert len(gzip.compress(BODY)) > COMPRESSED_IN_THREAD_BYTES
    on_loop = []
    account = answer_reading._account
    monkeypatch.setattr(
        answer_reading, "_account", lambda *args: on_loop.append(event_loop_running()) or account(*args)
    )
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "gzip"})
    client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=[])
    [record] = recorder.wait_for_ends(1)
    assert record.cost_usd == HAIKU_COST
    assert on_loop == [False]


@pytest.mark.parametrize(("kind", "read_on_loop"), [("small-gzip", True), ("small-br", False)])
def test_a_small_brotli_answer_is_read_beside_the_event_loop_as_its_decoded_size_has_no_bound(
    proxy, recorder, monkeypatch, kind, read_on_loop
):
    # 300 bytes of brotli can stand for 64 MiB; 1 KiB of gzip for 1 MiB at most, quick to decode in place.
    on_loop = []
    account = answer_reading._account
    monkeypatch.setattr(
        answer_reading, "_account", lambda *args: on_loop.append(event_loop_running()) or account(*args)
    )
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": kind})
    client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=[])
    [record] = recorder.wait_for_ends(1)
    assert record.cost_usd == HAIKU_COST and on_loop == [read_on_loop]


def test_an_answer_declared_larger_than_can_be_read_is_passed_on_from_its_first_byte(proxy_factory, recorder, upstream):
    # Before, its first 1 MiB was held: a provider sending it slowly kept the client waiting without a status.
    proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], upstream={"max_decoded_bytes": 1 << 20})
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "declared-large"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}
    with httpx.stream("POST", proxy.url + "/v1/messages", json=body, headers=headers, timeout=5) as answer:
        assert answer.status_code == 200
        assert next(answer.iter_raw()) == b"x" * 100  # sent before the provider's pause, not after it
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.priced) == (499, False)


def test_a_not_modified_answer_states_a_large_length_but_has_no_body_to_pass_on(proxy_factory, recorder, upstream):
    proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], upstream={"max_decoded_bytes": 1 << 20})
    headers = {"authorization": "Bearer sk-test", "x-raw": "not-modified", "if-none-match": '"v1"'}
    answer = httpx.get(proxy.url + "/v1/files/file-1/content", headers=headers, timeout=10)
    assert (answer.status_code, answer.content) == (304, b"")
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced, record.cost_usd) == (304, None, True, 0)


def test_a_moderation_s_endless_model_name_is_cut_as_any_reported_model():
    body = json.dumps({"id": "modr-1", "model": "omni-moderation-" + "x" * 2_000_000, "results": []}).encode()
    assert len(usage_from_json("openai", body, "free").response_model) == MAX_MODEL_CHARS_READ


def test_a_provider_s_endless_model_name_is_cut_before_it_is_priced_or_logged(caplog):
    usage = Usage()
    read_model(usage, "gpt-4o-" + "a" * 1_000_000)
    assert len(usage.response_model) == MAX_MODEL_CHARS_READ
    with caplog.at_level(logging.WARNING, logger="ccproxy"):
        cost = PriceBook().compute(PROVIDERS["openai"], "gpt-4o", usage, served=usage.response_model)
    assert not cost.priced
    assert all(len(record.getMessage()) < 2 * MAX_MODEL_CHARS_READ for record in caplog.records)


@pytest.mark.parametrize("kind", ["tree", "tree-stream"])
def test_an_answer_too_costly_to_decode_is_passed_on_whole_and_its_usage_left_unknown(proxy, recorder, kind):
    stream = kind.endswith("stream")
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [], "stream": stream}
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    answer = httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.content == (TREE_STREAM if stream else TREE)  # whole, unchanged
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
    assert (record.priced, record.cost_usd) == (False, None)  # unknown, never a cost of what was not read
