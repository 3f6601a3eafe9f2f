"""The real anthropic and openai SDKs through a real ccproxy server: they see what they would see direct."""

from __future__ import annotations

import anthropic
import openai
import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage

PROMPT = "Tell me about proxies, with a long enough prompt that the mock has tokens to count. " * 4
ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4o-mini"


SYSTEM = [{"type": "text", "text": "You are a careful assistant. " * 50, "cache_control": {"type": "ephemeral"}}]
LONG_PROMPT = PROMPT * 20  # over 1024 tokens, so the mock reports OpenAI cached tokens


def anthropic_kwargs(**extra):
    return {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 100,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
        **extra,
    }


def openai_kwargs(**extra):
    return {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": LONG_PROMPT}], **extra}


def expected_cost(service_type, model, record):
    usage = Usage(record.tokens_input, record.tokens_output, record.cache_read_tokens, record.cache_write_tokens)
    return PriceBook().compute(service_type, model, usage).total


def test_anthropic_sync_matches_direct(proxy, upstream, recorder):
    through = anthropic.Anthropic(base_url=proxy.url, api_key="sk-test").messages.create(**anthropic_kwargs())
    direct = anthropic.Anthropic(base_url=upstream.url, api_key="sk-test").messages.create(**anthropic_kwargs())
    assert through.model_dump(exclude={"id"}) == direct.model_dump(exclude={"id"})
    [record] = recorder.wait_for_ends(1)
    assert (record.service_type, record.model, record.status_code, record.streaming) == (
        "anthropic",
        ANTHROPIC_MODEL,
        200,
        False,
    )
    assert record.endpoint == "/v1/messages"
    assert record.tokens_input == through.usage.input_tokens
    assert record.tokens_output == through.usage.output_tokens
    assert record.cache_read_tokens == through.usage.cache_read_input_tokens > 0
    assert record.cache_write_tokens == through.usage.cache_creation_input_tokens > 0
    assert record.cost_usd is not None and record.cost_usd > 0
    assert record.cost_usd == expected_cost("anthropic", ANTHROPIC_MODEL, record)
    assert record.ttft_ms is None and record.error_type is None


def test_anthropic_stream_records_usage_and_ttft(proxy, recorder):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-test")
    with client.messages.stream(**anthropic_kwargs()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.stop_reason == "end_turn"
    [record] = recorder.wait_for_ends(1)
    assert record.streaming is True and record.status_code == 200
    assert record.tokens_input == final.usage.input_tokens
    assert record.tokens_output == final.usage.output_tokens
    assert record.cache_read_tokens == final.usage.cache_read_input_tokens > 0
    assert record.cache_write_tokens == final.usage.cache_creation_input_tokens > 0
    assert record.ttft_ms is not None and 0 < record.ttft_ms <= record.duration_ms


async def test_anthropic_async_stream(proxy, recorder):
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-test")
    stream = await client.messages.create(**anthropic_kwargs(stream=True))
    events = [event.type async for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    [record] = recorder.wait_for_ends(1)
    assert record.streaming and record.tokens_output > 0


def test_openai_sync_matches_direct(proxy, upstream, recorder):
    through = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test").chat.completions.create(**openai_kwargs())
    direct = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-test").chat.completions.create(**openai_kwargs())
    assert through.model_dump(exclude={"id", "created"}) == direct.model_dump(exclude={"id", "created"})
    [record] = recorder.wait_for_ends(1)
    cached = through.usage.prompt_tokens_details.cached_tokens
    assert cached > 0
    assert (record.service_type, record.endpoint, record.model) == ("openai", "/v1/chat/completions", OPENAI_MODEL)
    assert record.tokens_input == through.usage.prompt_tokens - cached
    assert record.cache_read_tokens == cached
    assert record.tokens_output == through.usage.completion_tokens
    assert record.cost_usd == expected_cost("openai", OPENAI_MODEL, record)


async def test_openai_async_stream_with_usage(proxy, recorder):
    client = openai.AsyncOpenAI(base_url=proxy.url + "/api/v1", api_key="sk-test")
    stream = await client.chat.completions.create(**openai_kwargs(stream=True, stream_options={"include_usage": True}))
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "/v1/chat/completions" and record.path == "/api/v1/chat/completions"
    assert record.streaming and record.tokens_output == usage.completion_tokens
    assert record.tokens_input + record.cache_read_tokens == usage.prompt_tokens


async def test_async_anthropic_non_stream(proxy, recorder):
    message = await anthropic.AsyncAnthropic(base_url=proxy.url + "/api", api_key="sk-test").messages.create(
        **anthropic_kwargs()
    )
    [record] = recorder.wait_for_ends(1)
    assert record.tokens_output == message.usage.output_tokens and record.path == "/api/v1/messages"


def test_openai_sync_stream(proxy, recorder):
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test")
    pieces = [
        c.choices[0].delta.content for c in client.chat.completions.create(**openai_kwargs(stream=True)) if c.choices
    ]
    assert "".join(p for p in pieces if p)
    [record] = recorder.wait_for_ends(1)
    assert record.streaming and record.status_code == 200 and record.ttft_ms is not None


@pytest.mark.parametrize(
    "status, error_class",
    [(429, anthropic.RateLimitError), (529, anthropic.InternalServerError), (400, anthropic.BadRequestError)],
)
def test_anthropic_upstream_errors_reach_the_sdk(proxy, recorder, status, error_class):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)
    with pytest.raises(error_class) as caught:
        client.messages.create(
            **anthropic_kwargs(), extra_headers={"x-mock-status": str(status), "x-mock-retry-after": "7"}
        )
    assert caught.value.status_code == status
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == status and record.upstream_status == status
    assert record.error_type == caught.value.body["error"]["type"]
    assert len(recorder.starts) == 1


def test_openai_upstream_error(proxy, recorder):
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**openai_kwargs(), extra_headers={"x-mock-status": "500"})
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 500 and record.error_type


def test_upstream_refused_gives_provider_shaped_502(proxy_factory, recorder):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proxy = proxy_factory(plugins=[recorder], upstream_url=dead_url)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**anthropic_kwargs())
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "api_error"
    # What the system said, in the operator's words (where), not the HTTP library's ("ssl:default").
    assert caught.value.body["error"]["message"] == f"cannot reach anthropic at {dead_url[7:]}: Connection refused"
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 502 and record.error_type == "upstream_unreachable" and record.upstream_status is None
    assert record.error_message == caught.value.body["error"]["message"]
