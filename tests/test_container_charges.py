"""An Anthropic answer that ran code in a container (code execution, Agent Skills) is priced at its
tokens: the container-hours, billed apart once an organisation's free hours are used up, are no part
of the answer. Shapes as Anthropic's code execution tool documentation shows them."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from ccproxy_core.accounting.usage import StreamUsageParser

from .raw_upstream import json_answer, sse, stream_answer, upstream_and_proxy_fixtures

USAGE = {"input_tokens": 3000, "output_tokens": 150}
SONNET_COST = (3000 * 3 + 150 * 15) / Decimal(1_000_000)  # claude-sonnet-4-5: $3 / $15 per million tokens
TOOL_USE = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "bash_code_execution", "input": {"command": "ls"}}
RESULT = {
    "type": "bash_code_execution_tool_result",
    "tool_use_id": "srvtoolu_1",
    "content": {"type": "bash_code_execution_result", "stdout": "a.csv\n", "stderr": "", "return_code": 0},
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "container": {"id": "container_1", "expires_at": "2026-12-05T13:00:00Z"},
    "content": [TOOL_USE, RESULT, {"type": "text", "text": "One file."}],
    "stop_reason": "end_turn",
    "usage": USAGE,
}
START = {**MESSAGE, "content": [], "container": None, "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}


def stream(result_block: dict, delta: dict) -> bytes:
    return sse(
        ("message_start", {"type": "message_start", "message": START}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": result_block}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 150}}),
        ("message_stop", {"type": "message_stop"}),
    )


END = {"stop_reason": "end_turn", "stop_sequence": None}
TEXT = {"type": "text", "text": ""}
upstream, proxy = upstream_and_proxy_fixtures(
    {
        "json": json_answer(b"200 OK", json.dumps(MESSAGE).encode()),
        "stream": stream_answer(stream(RESULT, END)),
        "stream-container": stream_answer(stream(TEXT, {**END, "container": MESSAGE["container"]})),
    }
)


def send(proxy, answer: str, tools: list[dict]) -> httpx.Response:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "ls"}]}
    headers = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01", "x-raw": answer}
    return httpx.post(proxy.url + "/v1/messages", json=body | {"tools": tools}, headers=headers)


@pytest.mark.parametrize("answer", ["json", "stream", "stream-container"])
def test_an_answer_that_ran_code_in_a_container_is_priced_at_its_tokens(proxy, recorder, answer):
    # Priced, so budgets count it: a blocking budget must stop a client whose every answer runs code.
    assert send(proxy, answer, [{"type": "code_execution_20250825", "name": "code_execution"}]).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.tokens_output) == (3000, 150)
    assert (record.cost_usd, record.priced, record.error_type) == (SONNET_COST, True, None)


def test_a_tool_results_text_sent_with_an_empty_delta_is_not_the_first_token():
    parser = StreamUsageParser("anthropic")
    mcp_result = {"type": "mcp_tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "tool said hi"}]}
    empty = {"type": "input_json_delta", "partial_json": ""}
    block = sse(
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": empty}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": mcp_result}),
    )
    assert parser.feed(block) is False
    text = {"type": "text_delta", "text": "Hi"}
    assert parser.feed(sse(("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": text})))
