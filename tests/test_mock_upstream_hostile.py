"""The mock provider refuses hostile bodies, batch lines and WebSocket events as the providers do: never a 500."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
import websockets.sync.client

ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4o"


@pytest.fixture
def gpt(upstream):
    return openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)


def user() -> list[dict]:
    return [{"role": "user", "content": "hi"}]


ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "k", "content-type": "application/json"}
DEEP = b"[" * 100_000
VALID = json.dumps(
    {"model": ANTHROPIC_MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()
HOSTILE = [
    ("/v1/messages", {}, DEEP),
    ("/v1/messages/count_tokens", {}, DEEP),
    ("/v1/chat/completions", {}, DEEP),
    ("/v1/responses", {}, DEEP),
    ("/v1/embeddings", {}, DEEP),
    ("/v1/messages/batches", {}, b"1"),
    ("/v1/messages/batches", {}, b"{"),
    ("/v1/messages/batches", {}, b'{"requests": [1, "x", null]}'),
    ("/v1/messages", {"content-encoding": "gzip"}, VALID),
    ("/v1/messages", {"content-encoding": "br"}, VALID),
]


@pytest.mark.parametrize(("path", "headers", "body"), HOSTILE, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(HOSTILE)])
def test_hostile_bodies_get_the_providers_400_never_a_500(upstream, path, headers, body):
    anthropic_shaped = path.startswith("/v1/messages")
    sent = {**(ANTHROPIC_HEADERS if anthropic_shaped else {"authorization": "Bearer k"}), **headers}
    answer = httpx.post(upstream.url + path, content=body, headers=sent, timeout=10)
    assert answer.status_code == 400, answer.text[:200]
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


@pytest.mark.parametrize("bad_line", [b"not json", b"[1, 2]", DEEP])
def test_a_batch_input_file_with_a_line_that_is_not_an_object_is_a_400(gpt, bad_line):
    good = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}).encode()
    source = gpt.files.create(file=("batch.jsonl", good + b"\n" + bad_line + b"\n"), purpose="batch")
    with pytest.raises(openai.BadRequestError) as refused:
        gpt.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert refused.value.body["param"] == "input_file_id" and "line 2" in refused.value.body["message"]


def test_a_batch_line_the_provider_would_refuse_fails_alone(gpt):
    lines = [
        {
            "custom_id": "ok",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": OPENAI_MODEL, "messages": user()},
        },
        {"custom_id": "no-model", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": user()}},
    ]
    content = "\n".join(json.dumps(line) for line in lines).encode()
    source = gpt.files.create(file=("batch.jsonl", content), purpose="batch")
    batch = gpt.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
    results = {r["custom_id"]: r for r in map(json.loads, gpt.files.content(batch.output_file_id).content.splitlines())}
    assert results["ok"]["response"]["status_code"] == 200
    failed = results["no-model"]["response"]
    assert failed["status_code"] == 400 and failed["body"]["error"]["param"] == "model"


def test_websocket_events_that_are_not_objects_do_not_end_the_socket(upstream):
    base = upstream.url.replace("http://", "ws://")
    auth = {"authorization": "Bearer k"}
    with websockets.sync.client.connect(base + "/v1/responses", additional_headers=auth) as socket:
        socket.send(DEEP.decode())
        error = json.loads(socket.recv())
        assert (error["type"], error["code"]) == ("error", "invalid_request_error")
        socket.send(json.dumps({"type": "response.create", "model": OPENAI_MODEL, "input": "hi"}))
        while (event := json.loads(socket.recv()))["type"] != "response.completed":
            pass
        assert event["response"]["usage"]["output_tokens"] > 0
    with websockets.sync.client.connect(base + "/v1/realtime?model=gpt-realtime", additional_headers=auth) as socket:
        assert json.loads(socket.recv())["type"] == "session.created"
        for junk in (DEEP.decode(), "[]", "\x00", "NaN"):
            socket.send(junk)
        socket.send(json.dumps({"type": "response.create"}))
        while json.loads(socket.recv())["type"] != "response.done":
            pass
