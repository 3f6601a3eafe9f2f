"""A mistake of ccproxy's own answer readers, over bytes no test foresaw, must never cost the client its
answer: the answer passes whole, and the record says its usage is unknown."""

from __future__ import annotations

import json

import httpx
import pytest

from ccproxy_core.accounting import usage as usage_module

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

MESSAGE = json.dumps(
    {"id": "msg_1", "type": "message", "model": "claude-haiku-4-5", "usage": {"input_tokens": 10, "output_tokens": 5}}
).encode()
STREAM = (
    b'event: message_start\ndata: {"type": "message_start", "message": {"model": "claude-haiku-4-5",'
    b' "usage": {"input_tokens": 10, "output_tokens": 1}}}\n\n'
    b'event: message_delta\ndata: {"type": "message_delta", "usage": {"output_tokens": 5}}\n\n'
    b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)
ANSWERS = {
    "json": json_answer(b"200 OK", MESSAGE),
    "stream": json_answer(b"200 OK", STREAM).replace(b"application/json", b"text/event-stream"),
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def broken(*args, **kwargs):
    raise TypeError("unhashable type: 'list'")  # as a membership test of a label that came as a list once did


@pytest.mark.parametrize(("kind", "body"), [("json", MESSAGE), ("stream", STREAM)])
def test_a_reader_that_raises_leaves_the_answer_whole_and_its_usage_unknown(proxy, recorder, monkeypatch, kind, body):
    monkeypatch.setattr(usage_module, "usage_from_json", broken)
    monkeypatch.setattr(usage_module.StreamUsageParser, "feed", broken)
    monkeypatch.setattr("ccproxy_core.forwarding.answer_reading.usage_from_json", broken)
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    request = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [], "stream": kind == "stream"}
    answer = httpx.post(proxy.url + "/v1/messages", json=request, headers=headers, timeout=10)
    assert (answer.status_code, answer.content) == (200, body)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.tokens_input, record.cost_usd, record.priced) == (200, None, None, False)
