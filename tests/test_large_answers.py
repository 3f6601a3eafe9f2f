"""Whole answers too large to read on the event loop are read beside it, and priced the same.

A Messages answer of several MiB (a long text), sent plain and gzip-compressed by a raw upstream.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import anthropic
import pytest

from ccproxy_core.forwarding.answer_reading import ACCOUNTED_IN_THREAD_BYTES

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


ANSWERS = {"plain": answer(BODY), "gzip": answer(gzip.compress(BODY), b"gzip")}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


@pytest.mark.parametrize("kind", ANSWERS)
def test_a_large_whole_answer_is_priced_from_its_usage(proxy, recorder, kind):
    assert len(BODY) > ACCOUNTED_IN_THREAD_BYTES
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": kind})
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=[])
    assert message.usage.output_tokens == 64000 and len(message.content[0].text) == len(MESSAGE["content"][0]["text"])
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 64000)
    assert record.cost_usd == HAIKU_COST
