"""Why each answer ended, as the provider said it, in the record, the DuckDB row and /logs.

The answers are written here from the providers' API references (Anthropic Messages
``stop_reason``; OpenAI Chat Completions ``choices[].finish_reason``; the Responses object's
``status`` and ``incomplete_details``) and sent by a raw upstream.
"""

from __future__ import annotations

import json

import httpx
import pytest

from ccproxy_core.testing import wait_until

from .raw_upstream import json_answer, raw_upstream

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": "Bearer sk-test"}


def sse(*events: tuple[str | None, dict | str]) -> bytes:
    body = b"".join(
        (f"event: {name}\n" if name else "").encode()
        + b"data: "
        + (data if isinstance(data, str) else json.dumps(data)).encode()
        + b"\n\n"
        for name, data in events
    )
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + body


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001"}
USAGE = {"input_tokens": 12, "output_tokens": 10}


def chat_chunk(choice: dict) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [choice]}


ANSWERS = {
    "max-tokens": json_answer(
        b"200 OK",
        json.dumps(
            {**MESSAGE, "content": [{"type": "text", "text": "Once"}], "stop_reason": "max_tokens", "usage": USAGE}
        ).encode(),
    ),
    "tool-use-stream": sse(
        (
            "message_start",
            {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None, "usage": USAGE}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 30},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ),
    # Two choices (n=2): choice 1 ends first; the record keeps choice 0's reason.
    "length-stream": sse(
        (None, chat_chunk({"index": 0, "delta": {"role": "assistant", "content": "A"}, "finish_reason": None})),
        (None, chat_chunk({"index": 1, "delta": {"content": "B"}, "finish_reason": None})),
        (None, chat_chunk({"index": 1, "delta": {}, "finish_reason": "stop"})),
        (None, chat_chunk({"index": 0, "delta": {}, "finish_reason": "length"})),
        (
            None,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": "gpt-4o-mini",
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4},
            },
        ),
        (None, "[DONE]"),
    ),
    "content-filter": json_answer(
        b"200 OK",
        json.dumps(
            {
                "id": "chatcmpl-2",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 0},
            }
        ).encode(),
    ),
    "incomplete": json_answer(
        b"200 OK",
        json.dumps(
            {
                "id": "resp_1",
                "object": "response",
                "model": "gpt-5",
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "output": [],
                "usage": {"input_tokens": 9, "output_tokens": 16},
            }
        ).encode(),
    ),
    "completed": json_answer(
        b"200 OK",
        json.dumps(
            {
                "id": "resp_2",
                "object": "response",
                "model": "gpt-5",
                "status": "completed",
                "incomplete_details": None,
                "output": [],
                "usage": {"input_tokens": 9, "output_tokens": 3},
            }
        ).encode(),
    ),
    "overloaded": json_answer(
        b"529 Overloaded",
        json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).encode(),
    ),
}

CASES = [
    ("max-tokens", "/v1/messages", "max_tokens"),
    ("tool-use-stream", "/v1/messages", "tool_use"),
    ("length-stream", "/v1/chat/completions", "length"),
    ("content-filter", "/v1/chat/completions", "content_filter"),
    ("incomplete", "/v1/responses", "max_output_tokens"),
    ("completed", "/v1/responses", "completed"),
    ("overloaded", "/v1/messages", None),
]


@pytest.fixture(scope="module")
def upstream():
    with raw_upstream(ANSWERS) as server:
        yield server


def send(url: str, kind: str, path: str) -> httpx.Response:
    headers = {**(ANTHROPIC if path == "/v1/messages" else OPENAI), "x-raw": kind}
    body = {
        "model": "claude-haiku-4-5" if path == "/v1/messages" else "gpt-4o-mini",
        "max_tokens": 5,
        "stream": "stream" in kind,
    }
    body |= {"messages": [{"role": "user", "content": "hi"}]} if path != "/v1/responses" else {"input": "hi"}
    return httpx.post(url + path, json=body, headers=headers, timeout=10)


def test_each_answer_is_recorded_and_stored_with_the_reason_its_provider_gave(
    proxy_factory, recorder, upstream, tmp_path
):
    proxy = proxy_factory(
        upstream_url=upstream.url,
        plugins=[recorder],
        observability={
            "logs_collection_enabled": True,
            "logs_endpoints_enabled": True,
            "log_flush_interval_seconds": 0.05,
            "duckdb_path": str(tmp_path / "logs.duckdb"),
        },
    )
    ids = {}
    for kind, path, _ in CASES:
        answer = send(proxy.url, kind, path)
        ids[kind] = answer.headers["x-ccproxy-request-id"]
    records = {record.request_id: record for record in recorder.wait_for_ends(len(CASES))}
    assert {kind: records[ids[kind]].finish_reason for kind, _, _ in CASES} == {
        kind: reason for kind, _, reason in CASES
    }

    def stored_rows() -> dict[str, dict]:
        stored = httpx.get(proxy.url + "/logs/query", params={"limit": 100}, timeout=10).json()
        return {row["request_id"]: row for row in stored["results"]}

    rows = wait_until(lambda: len(found := stored_rows()) == len(CASES) and found)
    assert {kind: rows[ids[kind]]["finish_reason"] for kind, _, _ in CASES} == {
        kind: reason for kind, _, reason in CASES
    }
