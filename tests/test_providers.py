"""The provider modules: stream readers find the first content token, errors and the end, cut anywhere."""

from __future__ import annotations

import json

import pytest

from ccproxy_core.accounting.usage import StreamUsageParser, usage_from_json
from ccproxy_core.providers import PROVIDERS, PROXY_ROUTES, provider_for, service_type_for
from ccproxy_core.providers import openai as openai_provider


def anthropic_event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def openai_chunk(delta: dict) -> bytes:
    return (
        "data: " + json.dumps({"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta}]}) + "\n\n"
    ).encode()


START = anthropic_event(
    "message_start",
    {
        "type": "message_start",
        "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 5, "output_tokens": 1}},
    },
)
STOP = anthropic_event("message_stop", {"type": "message_stop"})


def feed(service_type: str, stream: bytes, size: int):
    parser = StreamUsageParser(service_type)
    token_at = None
    for position in range(0, len(stream), size):
        if parser.feed(stream[position : position + size]) and token_at is None:
            token_at = position
    return parser, token_at


@pytest.mark.parametrize(
    "delta",
    [
        {"type": "text_delta", "text": "Hi"},
        {"type": "thinking_delta", "thinking": "Let me see"},
        {"type": "input_json_delta", "partial_json": '{"city":'},
    ],
)
@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_anthropic_first_token_is_the_first_content_delta_of_any_kind(delta, size):
    before = (
        START
        + anthropic_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        + anthropic_event("ping", {"type": "ping"})
    )
    stream = (
        before
        + anthropic_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        + STOP
    )
    parser, token_at = feed("anthropic", stream, size)
    assert token_at is not None and token_at >= (len(before) // size - 1) * size
    state = parser.final_state()
    assert state.first_token_seen and state.terminal_seen and not state.error_seen


@pytest.mark.parametrize("size", [1, 7])
def test_anthropic_an_empty_tool_input_delta_is_not_the_first_token(size):
    def delta(partial: str) -> bytes:
        body = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": partial},
        }
        return anthropic_event("content_block_delta", body)

    tool = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    before = START + anthropic_event(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": tool}
    )
    before += delta("")
    _parser, token_at = feed("anthropic", before + delta('{"location": "Paris"}') + STOP, size)
    assert token_at is not None and token_at >= len(before)  # not at the empty delta, which ends before


def test_anthropic_text_that_mentions_the_end_is_not_the_end():
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": 'say {"type":"message_stop"} and event: error'},
    }
    parser, _ = feed("anthropic", START + anthropic_event("content_block_delta", delta), 3)
    state = parser.final_state()
    assert not state.terminal_seen and not state.error_seen and parser.result().error_type is None


@pytest.mark.parametrize(
    "delta, is_token",
    [
        ({"role": "assistant", "content": "", "refusal": None}, False),
        ({"content": "Hello"}, True),
        ({"content": "\nHello"}, True),
        (
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ]
            },
            True,
        ),
        ({"refusal": "I can't"}, True),
        ({}, False),
        # An audio answer (modalities text and audio) and the deprecated functions: before, no first token.
        ({"content": None, "audio": {"id": "audio_1", "transcript": "Hel"}}, True),
        ({"content": None, "audio": {"id": "audio_1", "transcript": ""}}, False),
        ({"content": None, "function_call": {"name": "get_weather", "arguments": ""}}, True),
        ({"content": None, "function_call": {}}, False),  # nothing of a call yet
        ({"tool_calls": [{}]}, False),
    ],
)
def test_openai_first_token_is_the_first_non_empty_content_or_tool_call(delta, is_token):
    _, token_at = feed("openai", openai_chunk(delta), 4)
    assert (token_at is not None) is is_token


def test_openai_done_is_the_end_only_as_its_own_line():
    in_text = openai_chunk({"content": "data: [DONE]"})
    parser, _ = feed("openai", in_text, 2)
    assert not parser.final_state().terminal_seen
    parser, _ = feed("openai", in_text + b"data: [DONE]", 2)  # even without its line end
    assert parser.final_state().terminal_seen


def test_openai_prefers_the_error_code_as_type():
    body = b'{"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}'
    assert usage_from_json("openai", body).error_type == "rate_limit_exceeded"
    body = b'{"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}}'
    assert usage_from_json("openai", body).error_type == "invalid_request_error"


def test_anthropic_usage_reads_tools_tier_and_speed():
    body = json.dumps(
        {
            "type": "message",
            "model": "claude-opus-4-6",
            "usage": {
                "input_tokens": 1,
                "output_tokens": 2,
                "server_tool_use": {"web_search_requests": 4},
                "service_tier": "priority",
                "speed": "fast",
            },
        }
    ).encode()
    usage = usage_from_json("anthropic", body)
    assert (usage.web_search_requests, usage.service_tier, usage.speed) == (4, "priority", "fast")


def test_every_provider_is_complete_and_routes_are_unique():
    templates = [(route.template, route.method) for route in PROXY_ROUTES]
    assert len(templates) == len(set(templates))
    for name, provider in PROVIDERS.items():
        assert provider_for(name) is provider and provider.routes and provider.price_id
        assert json.loads(provider.error_body(provider.local_error_type(504), "m"))
        assert provider.default_base_url.startswith("https://")


def test_shared_routes_are_told_apart_by_the_clients_headers():
    models = next(route for route in PROXY_ROUTES if route.template == "/v1/models")
    assert service_type_for(models, {"anthropic-version": "2023-06-01"}) == "anthropic"
    assert service_type_for(models, {"authorization": "Bearer x"}) == "openai"


def test_include_usage_keeps_a_lone_surrogate_the_client_sent():
    body = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "a\\ud800b \xc3\xa9"}]}'
    prepared = openai_provider.prepare_body(openai_provider.CHAT_COMPLETIONS, body, True)
    sent = json.loads(prepared)
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == json.loads(body)["messages"]  # the surrogate and the accent, as sent


@pytest.mark.parametrize(
    "delta", ["output_text", "custom_tool_call_input", "reasoning_text", "reasoning_summary_text", "audio"]
)
def test_any_output_delta_of_a_response_stream_is_its_first_token(delta):
    created = {"type": "response.created", "response": {"id": "r", "model": "gpt-5", "status": "in_progress"}}
    stream = (
        f"event: response.created\ndata: {json.dumps(created)}\n\n"
        f"event: response.{delta}.delta\ndata: {json.dumps({'type': f'response.{delta}.delta', 'delta': 'x'})}\n\n"
    ).encode()
    parser = StreamUsageParser("openai", reader="responses")
    assert not parser.feed(stream[: len(stream) // 3])
    assert parser.feed(stream[len(stream) // 3 :])


def split_data_lines(stream: bytes) -> bytes:
    """Every event's JSON cut over several ``data:`` lines, as SSE allows (joined with newlines)."""
    events = []
    for event in stream.split(b"\n\n")[:-1]:
        head, marker, data = event.partition(b"data: ")
        events.append(head + marker + data.replace(b", ", b",\ndata: ").replace(b": {", b":\ndata: {"))
    return b"\n\n".join(events) + b"\n\n"


MULTI_LINE_STREAMS = {
    "anthropic": START
    + anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 42, "cache_read_input_tokens": 7},
        },
    )
    + STOP,
    "openai": openai_chunk({"content": "Hi"})
    + b"data: "
    + json.dumps(
        {"id": "c", "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 42}}
    ).encode()
    + b"\n\ndata: [DONE]\n\n",
}


@pytest.mark.parametrize("service_type", ["anthropic", "openai"])
@pytest.mark.parametrize("size", [1, 3, 17, 64, 10_000])
def test_an_event_whose_data_spans_several_lines_is_read_whole(service_type, size):
    single = MULTI_LINE_STREAMS[service_type]
    stream = split_data_lines(single)
    assert stream.count(b"\ndata: ") > single.count(b"\ndata: ") + 4
    expected = feed(service_type, single, 10_000)[0]
    parser, _ = feed(service_type, stream, size)
    usage, state = parser.result(), parser.final_state()
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (
        expected.result().input_tokens,
        42,
        expected.result().cache_read_tokens,
    )
    assert usage.response_model and state.terminal_seen and not state.error_seen
    assert not state.unreadable and not usage.bad_counts  # a piece of an event is never read as a whole one


def test_a_response_stream_whose_last_event_carries_an_image_of_several_mb_is_read_whole():
    image = {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "iVBOR" + "A" * 3_000_000}
    final = {
        "id": "r",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [image],
        "usage": {"input_tokens": 1_000, "output_tokens": 500},
    }
    stream = (
        b"event: response.output_item.added\ndata: {}\n\n"
        + b"event: response.completed\ndata: "
        + json.dumps({"type": "response.completed", "response": final}).encode()
        + b"\n\n"
    )
    parser = StreamUsageParser("openai", reader="responses")
    for position in range(0, len(stream), 16_384):  # as a network delivers it
        parser.feed(stream[position : position + 16_384])
    usage = parser.result()
    assert (usage.input_tokens, usage.output_tokens) == (1_000, 500) and parser.final_state().terminal_seen


def test_an_image_stream_ends_with_its_completed_event():
    # platform.openai.com, Images API streaming: partial images, then image_generation.completed with the usage.
    def event(kind: str, data: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    usage = {
        "input_tokens": 50,
        "output_tokens": 4160,
        "total_tokens": 4210,
        "input_tokens_details": {"text_tokens": 50},
    }
    stream = event("image_generation.partial_image", {"b64_json": "AAAA", "partial_image_index": 0}) + event(
        "image_generation.completed", {"b64_json": "BBBB", "usage": usage}
    )
    parser, token_at = feed("openai", stream, 64)
    assert parser.final_state().terminal_seen
    assert (parser.result().input_tokens, parser.result().output_tokens) == (50, 4160)
    partial = event("image_generation.partial_image", {"b64_json": "AAAA", "partial_image_index": 0})
    assert token_at is not None and token_at < len(partial)  # the first partial image: the first content
    _, token_at = feed("openai", event("image_edit.completed", {"b64_json": "CCCC", "usage": usage}), 64)
    assert token_at is not None  # no partial images asked for: the image itself


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_a_response_stream_whose_events_span_several_lines_is_read_whole(size):
    final = {
        "id": "r",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "usage": {"input_tokens": 1_000, "output_tokens": 500},
    }
    single = (
        b"event: response.output_text.delta\ndata: "
        + json.dumps({"type": "response.output_text.delta", "delta": "Hi"}).encode()
        + b"\n\nevent: response.completed\ndata: "
        + json.dumps({"type": "response.completed", "response": final}).encode()
        + b"\n\n"
    )
    parser = StreamUsageParser("openai", reader="responses")
    stream = split_data_lines(single)
    for position in range(0, len(stream), size):
        parser.feed(stream[position : position + size])
    usage, state = parser.result(), parser.final_state()
    assert (usage.input_tokens, usage.output_tokens, usage.bad_counts) == (1_000, 500, False)
    assert state.terminal_seen and state.first_token_seen and not state.unreadable


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        # Numbers, escapes, spacing and a key sent twice, as the client wrote them: only the member is new.
        (
            b'{ "model" : "gpt-4o-mini", "seed": 18446744073709551616, "top_p": 0.10000000000000001,'
            b' "n": 1e0, "stream": true, "stream": true, "messages": [{"content": "caf\\u00e9"}] }\n',
            b'{ "model" : "gpt-4o-mini", "seed": 18446744073709551616, "top_p": 0.10000000000000001,'
            b' "n": 1e0, "stream": true, "stream": true, "messages": [{"content": "caf\\u00e9"}] '
            b',"stream_options":{"include_usage":true}}\n',
        ),
        (
            b'{"stream": true, "stream_options": null, "seed": 99999999999999999999}',
            b'{"stream": true, "stream_options": {"include_usage":true}, "seed": 99999999999999999999}',
        ),
        (
            b'{"stream": true, "stream_options": {"include_obfuscation": false}, "x": 1E400}',
            b'{"stream": true, "stream_options": {"include_obfuscation": false,"include_usage":true}, "x": 1E400}',
        ),
        (
            b'{"stream":true,"stream_options":{ },"messages":[{"content":"\\"stream_options\\": {}"}]}',
            b'{"stream":true,"stream_options":{"include_usage":true},"messages":[{"content":"\\"stream_options\\": {}"}]}',
        ),
        (
            b'{"stream":true,"messages":[{"content":"say \\"stream_options\\""}]}',
            b'{"stream":true,"messages":[{"content":"say \\"stream_options\\""}],"stream_options":{"include_usage":true}}',
        ),
    ],
)
def test_include_usage_adds_its_member_and_changes_nothing_else(body, sent):
    prepared = openai_provider.prepare_body(openai_provider.CHAT_COMPLETIONS, body, True)
    assert bytes(prepared) == sent
    assert json.loads(prepared)["stream_options"]["include_usage"] is True


@pytest.mark.parametrize(
    "body",
    [
        '{"model":"gpt-4o-mini","stream":true}'.encode("utf-16-be"),  # JSON, but UTF-8 bytes cannot go in it
        '{"model":"gpt-4o-mini","stream":true}'.encode("utf-32-be"),
        # Too deep for the decoder, which leaves the member out: the client's "no" must not be overridden.
        b'{"stream":true,"stream_options":{"include_usage":false,"a":' + b"[" * 1_100 + b"]" * 1_100 + b"}}",
    ],
)
def test_include_usage_leaves_a_body_it_cannot_edit_safely_as_it_came(body):
    assert bytes(openai_provider.prepare_body(openai_provider.CHAT_COMPLETIONS, body, True)) == body
