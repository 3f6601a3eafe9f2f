"""A cost is known only when the answer says what was billed: its input as well as its output; and the
calls the providers document as free cost 0, known, not an unknown cost."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from .raw_upstream import json_answer, upstream_and_proxy_fixtures


def message(usage: dict) -> bytes:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": []}
    return json.dumps({**body, "stop_reason": "end_turn", "usage": usage}).encode()


def completion(usage: dict) -> bytes:
    return json.dumps(
        {"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [], "usage": usage}
    ).encode()


ANSWERS: dict[str, bytes | list[bytes | float]] = {
    "anthropic-null-input": json_answer(b"200 OK", message({"input_tokens": None, "output_tokens": 500})),
    "anthropic-no-input": json_answer(b"200 OK", message({"output_tokens": 500})),
    "openai-null-prompt": json_answer(b"200 OK", completion({"prompt_tokens": None, "completion_tokens": 500})),
    "anthropic-whole": json_answer(b"200 OK", message({"input_tokens": 1000, "output_tokens": 500})),
    "count": json_answer(b"200 OK", b'{"input_tokens": 42}'),
    "openai-count": json_answer(b"200 OK", b'{"object": "response.input_tokens", "input_tokens": 42}'),
    "models": json_answer(b"200 OK", b'{"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}'),
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": "Bearer sk-test"}
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def post(proxy, path: str, kind: str, headers: dict, body: dict | None = None) -> httpx.Response:
    return httpx.post(proxy.url + path, json=body or BODY, headers={**headers, "x-raw": kind}, timeout=10)


@pytest.mark.parametrize(
    ("path", "kind", "headers"),
    [
        ("/v1/messages", "anthropic-null-input", ANTHROPIC),
        ("/v1/messages", "anthropic-no-input", ANTHROPIC),
        ("/v1/chat/completions", "openai-null-prompt", OPENAI),
    ],
)
def test_an_answer_without_its_input_count_has_no_known_cost(proxy, recorder, path, kind, headers):
    assert post(proxy, path, kind, headers).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.tokens_output) == (None, 500)
    assert (record.cost_usd, record.priced) == (None, False)


def test_an_answer_with_both_counts_is_priced(proxy, recorder):
    post(proxy, "/v1/messages", "anthropic-whole", ANTHROPIC)
    [record] = recorder.wait_for_ends(1)
    # claude-sonnet-4-5: $3 per million input tokens, $15 per million output tokens.
    assert record.priced and Decimal(str(record.cost_usd)) == Decimal("0.003") + Decimal("0.0075")


@pytest.mark.parametrize(
    ("method", "path", "kind", "headers"),
    [
        ("POST", "/v1/messages/count_tokens", "count", ANTHROPIC),
        ("POST", "/v1/responses/input_tokens", "openai-count", OPENAI),
        ("GET", "/v1/models", "models", OPENAI),
        ("GET", "/v1/models/gpt-4o-mini", "models", OPENAI),
    ],
)
def test_calls_documented_as_free_cost_nothing_known(proxy, recorder, method, path, kind, headers):
    content = json.dumps(BODY) if method == "POST" else None
    response = httpx.request(method, proxy.url + path, content=content, headers={**headers, "x-raw": kind}, timeout=10)
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.cost_usd, record.priced, record.error_type) == (0.0, True, None)
