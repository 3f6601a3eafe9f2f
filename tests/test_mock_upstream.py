"""The mock upstream speaks both providers' wire formats, as the real SDKs and raw HTTP see them."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from ccproxy_core.testing.mock_upstream import COST_RESPONSE_HEADER, MockOptions, serve_mock_in_thread
from ccproxy_core.testing.mock_upstream.faults import BadMockHeader, default_plan, plan_request
from ccproxy_core.testing.mock_upstream.tokens import answer_text

ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4o"
PROMPT = "Say hello to the mock upstream, please."  # 39 characters -> 9 prompt tokens
PROMPT_TOKENS = len(PROMPT) // 4
DEFAULT_TEXT = answer_text(20)


@pytest.fixture(scope="module")
def mock():
    with serve_mock_in_thread() as server:
        yield server


@pytest.fixture
def claude(mock):
    return anthropic.Anthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0)


@pytest.fixture
def gpt(mock):
    return openai.OpenAI(base_url=f"{mock.url}/v1", api_key="sk-test", max_retries=0)


def user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each event in an SSE body."""
    events = []
    for block in raw.strip("\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


# --- Anthropic through the real SDK -------------------------------------------------------------


def test_anthropic_message_has_the_documented_text_usage_and_headers(claude):
    raw = claude.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=user())
    message = raw.parse()
    assert message.model == ANTHROPIC_MODEL and message.stop_reason == "end_turn"
    assert message.content[0].text == DEFAULT_TEXT
    assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT_TOKENS, 60)
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0
    assert raw.headers["request-id"].startswith("req_") and message.id.startswith("msg_")
    assert int(raw.headers["anthropic-ratelimit-input-tokens-remaining"]) == 2_000_000 - PROMPT_TOKENS
    assert int(raw.headers["anthropic-ratelimit-output-tokens-remaining"]) == 400_000 - 60


def test_anthropic_stream_accumulates_to_the_same_message(claude):
    with claude.messages.stream(model=ANTHROPIC_MODEL, max_tokens=100, messages=user()) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()
    assert len(texts) == 20 and "".join(texts) == DEFAULT_TEXT == message.content[0].text
    assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT_TOKENS, 60)


def test_anthropic_stream_events_come_in_the_real_order(mock):
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 10, "stream": True, "messages": user()}
    response = httpx.post(f"{mock.url}/v1/messages", json=body, headers={"x-mock-delta-count": "2"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(json.loads(data)["type"] == name for name, data in events)
    assert json.loads(events[0][1])["message"]["usage"]["output_tokens"] == 1
    assert json.loads(events[6][1])["usage"] == {"output_tokens": 6}


def test_cache_control_splits_the_prompt_into_read_written_and_fresh(claude):
    system = [{"type": "text", "text": "s" * 400, "cache_control": {"type": "ephemeral"}}]
    message = claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, system=system, messages=user())
    total = (400 + len(PROMPT)) // 4
    usage = message.usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (total // 2, total // 4)
    assert usage.input_tokens == total - total // 2 - total // 4
    assert usage.cache_creation.ephemeral_5m_input_tokens == total // 4


def test_the_words_cache_control_in_prompt_text_do_not_count_as_caching(claude):
    message = claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=user('"cache_control" ' * 10))
    assert message.usage.cache_read_input_tokens == 0


def test_count_tokens_and_delta_count_override(claude):
    assert claude.messages.count_tokens(model=ANTHROPIC_MODEL, messages=user()).input_tokens == PROMPT_TOKENS
    message = claude.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=10, messages=user(), extra_headers={"x-mock-delta-count": "5"}
    )
    assert message.content[0].text == answer_text(5) and message.usage.output_tokens == 15


@pytest.mark.asyncio
async def test_anthropic_async_client_parses_json_and_stream(mock):
    client = anthropic.AsyncAnthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0)
    message = await client.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=user())
    async with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=10, messages=user()) as stream:
        streamed = await stream.get_final_message()
    assert message.content[0].text == streamed.content[0].text == DEFAULT_TEXT
    assert message.usage.output_tokens == streamed.usage.output_tokens == 60
    await client.close()


def test_models_come_in_the_shape_of_the_asking_sdk(claude, gpt):
    anthropic_ids = [model.id for model in claude.models.list()]
    assert ANTHROPIC_MODEL in anthropic_ids and OPENAI_MODEL not in anthropic_ids
    assert claude.models.retrieve(ANTHROPIC_MODEL).display_name == "Claude Sonnet 4.6"
    openai_models = gpt.models.list().data
    assert OPENAI_MODEL in [model.id for model in openai_models] and openai_models[0].object == "model"
    assert gpt.models.retrieve(OPENAI_MODEL).owned_by == "system"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("claude-none")
    with pytest.raises(openai.NotFoundError):
        gpt.models.retrieve("gpt-none")


# --- OpenAI through the real SDK ----------------------------------------------------------------


def test_openai_completion_has_the_documented_text_usage_and_headers(gpt):
    raw = gpt.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user())
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == OPENAI_MODEL
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (PROMPT_TOKENS, 60, PROMPT_TOKENS + 60)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 30_000_000 - PROMPT_TOKENS - 60
    assert raw.headers["x-ratelimit-reset-requests"] and raw.headers["x-ratelimit-limit-requests"] == "10000"


def test_openai_stream_has_usage_only_when_asked(gpt):
    plain = list(gpt.chat.completions.create(model=OPENAI_MODEL, messages=user(), stream=True))
    assert all(chunk.usage is None for chunk in plain) and plain[-1].choices[0].finish_reason == "stop"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in plain) == DEFAULT_TEXT
    with_usage = list(
        gpt.chat.completions.create(
            model=OPENAI_MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
        )
    )
    assert len(with_usage) == len(plain) + 1 and with_usage[-1].choices == []
    assert with_usage[-1].usage.completion_tokens == 60 and with_usage[-1].usage.prompt_tokens == PROMPT_TOKENS


def test_openai_long_prompts_report_cached_tokens(gpt):
    completion = gpt.chat.completions.create(model=OPENAI_MODEL, messages=user("x" * 8000))
    assert completion.usage.prompt_tokens == 2000
    assert completion.usage.prompt_tokens_details.cached_tokens == 896  # 1000 rounded down to 128s


@pytest.mark.asyncio
async def test_openai_async_client_parses_json_and_stream(mock):
    client = openai.AsyncOpenAI(base_url=f"{mock.url}/v1", api_key="sk-test", max_retries=0)
    completion = await client.chat.completions.create(model=OPENAI_MODEL, messages=user())
    stream = await client.chat.completions.create(
        model=OPENAI_MODEL, messages=user(), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_TEXT
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens == PROMPT_TOKENS + 60
    await client.close()


# --- Errors and injected faults -----------------------------------------------------------------


def test_injected_status_gives_provider_shaped_errors(claude, gpt):
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=10, messages=user(), extra_headers={"x-mock-status": "529"}
        )
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    assert overloaded.value.response.headers["request-id"] == overloaded.value.body["request_id"]
    with pytest.raises(openai.RateLimitError) as limited:
        gpt.chat.completions.create(
            model=OPENAI_MODEL, messages=user(), extra_headers={"x-mock-status": "429", "x-mock-retry-after": "7"}
        )
    assert limited.value.body == {
        "message": "mock upstream: injected status 429",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert limited.value.response.headers["retry-after"] == "7"


def test_error_type_can_be_chosen(mock):
    headers = {"x-mock-status": "429", "x-mock-error-type": "quota_error", "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{mock.url}/v1/messages", json={}, headers=headers)
    assert response.status_code == 429 and response.json()["error"]["type"] == "quota_error"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"messages": []}', b'{"model": "m"}'])
def test_bad_bodies_get_a_400_in_each_providers_shape(mock, body):
    anthropic_answer = httpx.post(f"{mock.url}/v1/messages", content=body)
    assert anthropic_answer.status_code == 400
    assert anthropic_answer.json()["type"] == "error"
    assert anthropic_answer.json()["error"]["type"] == "invalid_request_error"
    openai_answer = httpx.post(f"{mock.url}/v1/chat/completions", content=body).json()["error"]
    assert openai_answer["type"] == "invalid_request_error"
    assert set(openai_answer) == {"message", "type", "param", "code"}


def test_bad_mock_headers_are_a_400_naming_the_header(mock):
    answer = httpx.post(f"{mock.url}/v1/chat/completions", json={}, headers={"x-mock-latency-ms": "soon"})
    assert answer.status_code == 400 and "x-mock-latency-ms" in answer.json()["error"]["message"]
    with pytest.raises(BadMockHeader, match="x-mock-delays"):
        plan_request({"X-Mock-Delays": "1"}, default_plan(MockOptions()))
    with pytest.raises(BadMockHeader, match="x-mock-status"):
        plan_request({"x-mock-status": "200"}, default_plan(MockOptions()))


def test_unknown_paths_are_a_provider_404(mock):
    assert httpx.get(f"{mock.url}/v1/nothing", headers={"anthropic-version": "x"}).json()["error"]["type"] == (
        "not_found_error"
    )
    answer = httpx.post(f"{mock.url}/v1/assistants", json={})
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "invalid_request_error"


def test_abort_mid_stream_cuts_the_connection_after_n_deltas(mock):
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 10, "stream": True, "messages": user()}
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", f"{mock.url}/v1/messages", json=body, headers={"x-mock-abort-after": "3"}) as r:
            for chunk in r.iter_bytes():
                received += chunk
    names = [name for name, _ in sse_events(received.decode())]
    assert names.count("content_block_delta") == 3 and "message_stop" not in names


def test_abort_is_seen_by_the_sdks_as_a_broken_stream(claude, gpt):
    # anthropic 2.x streams over httpx2 and lets its RemoteProtocolError through unwrapped.
    with pytest.raises(Exception, match="incomplete chunked read"):
        with claude.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=10, messages=user(), extra_headers={"x-mock-abort-after": "1"}
        ) as stream:
            stream.get_final_message()
    with pytest.raises(openai.APIConnectionError):
        list(
            gpt.chat.completions.create(
                model=OPENAI_MODEL, messages=user(), stream=True, extra_headers={"x-mock-abort-after": "1"}
            )
        )


def test_abort_of_a_json_answer_leaves_the_body_incomplete(mock):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{mock.url}/v1/chat/completions", json={"model": "m", "messages": []}, headers={"x-mock-abort-after": "0"}
        )


def test_stream_error_event_reaches_the_sdks_as_an_api_error(claude, gpt):
    with pytest.raises(anthropic.APIStatusError) as from_anthropic:
        with claude.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=10, messages=user(), extra_headers={"x-mock-stream-error-after": "2"}
        ) as stream:
            stream.get_final_message()
    assert from_anthropic.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(openai.APIError) as from_openai:
        list(
            gpt.chat.completions.create(
                model=OPENAI_MODEL, messages=user(), stream=True, extra_headers={"x-mock-stream-error-after": "2"}
            )
        )
    assert from_openai.value.body["type"] == "server_error"


def test_stream_error_event_follows_exactly_n_deltas_and_ends_the_stream(mock):
    body = {"model": OPENAI_MODEL, "messages": user(), "stream": True}
    answer = httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"x-mock-stream-error-after": "4"})
    data = [json.loads(data) for _, data in sse_events(answer.text)]
    assert len(data) == 1 + 4 + 1 and data[-1]["error"]["type"] == "server_error"
    assert all("error" not in chunk for chunk in data[:-1])


def test_malformed_answers_are_200_but_not_json(mock):
    body = {"model": OPENAI_MODEL, "messages": user()}
    answer = httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"x-mock-malformed": "1"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)
    streamed = httpx.post(
        f"{mock.url}/v1/chat/completions", json={**body, "stream": True}, headers={"x-mock-malformed": "1"}
    )
    data = [data for _, data in sse_events(streamed.text)]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[1])
    assert data[-1] == "[DONE]"


def test_slow_bytes_trickle_the_body_in_pieces(mock):
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 10, "messages": user()}
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{mock.url}/v1/messages", json=body, headers={"x-mock-slow-bytes-ms": "5", "x-mock-delta-count": "1"}
    ) as response:
        chunks = list(response.iter_raw())
    elapsed = time.perf_counter() - started
    whole = b"".join(chunks)
    assert json.loads(whole)["usage"]["output_tokens"] == 3
    pieces = -(-len(whole) // 16)
    assert len(chunks) > 1 and elapsed >= pieces * 0.005


def test_latency_and_delta_interval_delay_the_answer(mock):
    body = {"model": OPENAI_MODEL, "messages": user(), "stream": True}
    started = time.perf_counter()
    httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"x-mock-latency-ms": "150"})
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    httpx.post(
        f"{mock.url}/v1/chat/completions",
        json=body,
        headers={"x-mock-delta-interval-ms": "20", "x-mock-delta-count": "6"},
    )
    assert time.perf_counter() - started >= 0.12


def test_cost_header_reports_the_asked_cost(gpt):
    raw = gpt.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=user(), extra_headers={"x-mock-cost-usd": "0.0125"}
    )
    assert raw.headers[COST_RESPONSE_HEADER] == "0.0125"
    assert (
        COST_RESPONSE_HEADER
        not in gpt.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user()).headers
    )
