"""Parts of an answer that change its bill, as the providers document them, through a real ccproxy.

Each answer is written here from the provider's public API reference and sent by a raw
upstream; each cost is worked out by hand from the published prices (USD per million tokens).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)


def sse(*events: tuple[str, dict]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def stream_answer(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    return head + body


def message(model: str, usage: dict) -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "usage": usage}


# Compaction (platform.claude.com, "Compaction", usage and billing): the top-level counts leave
# out the summarising step; the bill is the sum over ``usage.iterations``.
COMPACTED = {
    "input_tokens": 23_000,
    "output_tokens": 1_000,
    "iterations": [
        {"type": "compaction", "input_tokens": 180_000, "output_tokens": 3_500},
        {"type": "message", "input_tokens": 23_000, "output_tokens": 1_000},
    ],
}
# A first step that is no object, before the two steps of COMPACTED.
STEP_NOT_AN_OBJECT = {
    **COMPACTED,
    "iterations": [
        "compaction",
        {"type": "compaction", "input_tokens": 180_000, "output_tokens": 3_500},
        {"type": "message", "input_tokens": 23_000, "output_tokens": 1_000},
    ],
}
# Two steps each under Sonnet 4.5's 200K long-context threshold, 210K together.
TWO_SHORT_STEPS = {
    "input_tokens": 60_000,
    "output_tokens": 500,
    "iterations": [
        {"type": "compaction", "input_tokens": 150_000, "output_tokens": 1_000},
        {"type": "message", "input_tokens": 60_000, "output_tokens": 500},
    ],
}
# A stream whose message_start carries one step and whose message_delta, the final word, none.
STALE_STEPS_START = {
    "input_tokens": 5_000,
    "output_tokens": 1,
    "iterations": [{"type": "message", "input_tokens": 5_000, "output_tokens": 1}],
}
TOO_MANY_STEPS = {
    "input_tokens": 5_000,
    "output_tokens": 1_000,
    "iterations": [{"type": "compaction", "input_tokens": 1_000, "output_tokens": 10}] * 64
    + [{"type": "message", "input_tokens": 5_000, "output_tokens": 1_000}],
}
# The advisor tool (platform.claude.com, "Advisor tool"; the SDK's BetaAdvisorMessageIterationUsage):
# the top-level counts are the executor's; the advisor's sub-inference is an ``advisor_message``
# step naming its own model, billed at that model's rates. Thinking tokens (the SDK's
# OutputTokensDetails) are part of the output tokens.
ADVISED_STEPS = [
    {"type": "message", "input_tokens": 740, "output_tokens": 14},
    {"type": "advisor_message", "model": "claude-opus-4-8", "input_tokens": 20_000, "output_tokens": 1_600},
    {"type": "message", "input_tokens": 494, "output_tokens": 42},
]
ADVISED = {
    "input_tokens": 1_234,
    "output_tokens": 56,
    "output_tokens_details": {"thinking_tokens": 20},
    "iterations": ADVISED_STEPS,
}
ADVISED_BY_AN_UNKNOWN_MODEL = {
    **ADVISED,
    "iterations": [{**step, "model": "claude-unknown-9"} if "model" in step else step for step in ADVISED_STEPS],
}
US_ONLY = {"input_tokens": 1_000, "output_tokens": 100, "cache_read_input_tokens": 10_000, "inference_geo": "us"}

# A Responses object with built-in tool calls (platform.openai.com, Responses API reference:
# ``web_search_call`` and ``file_search_call`` output items).
RESPONSE_WITH_TOOLS = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-5",
    "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "a"}},
        {"type": "web_search_call", "id": "ws_2", "status": "completed", "action": {"type": "search", "query": "b"}},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["c"], "results": None},
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
    ],
    "usage": {
        "input_tokens": 3_000,
        "input_tokens_details": {"cached_tokens": 1_000},
        "output_tokens": 800,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 3_800,
    },
}

# Only a web search call whose action is a search is billed ("Output and citations" in OpenAI's web
# search guide); opening a page and finding in it are free.
BROWSING = {
    **RESPONSE_WITH_TOOLS,
    "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "a"}},
        {"type": "web_search_call", "id": "ws_2", "status": "completed", "action": {"type": "open_page", "url": "u"}},
        {
            "type": "web_search_call",
            "id": "ws_3",
            "status": "completed",
            "action": {"type": "find_in_page", "url": "u", "pattern": "p"},
        },
    ],
}

# The older ``web_search_preview`` tool costs $25 per thousand calls on a model without reasoning
# (the response echoes ``reasoning.effort: null``), $10 on a reasoning model (OpenAI's pricing page).
SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "a"}}
PREVIEW_SEARCH_4O = {
    **RESPONSE_WITH_TOOLS,
    "model": "gpt-4o-2024-08-06",
    "tools": [{"type": "web_search_preview", "search_context_size": "medium"}],
    "reasoning": {"effort": None, "summary": None},
    "output": [SEARCH],
}
PREVIEW_SEARCH_O3 = {**PREVIEW_SEARCH_4O, "model": "o3-2025-04-16", "reasoning": {"effort": "medium", "summary": None}}
# A code interpreter container (per container) and the image generation tool (per image) are billed
# outside the usage: the cost of the answer is not known.
CODE_INTERPRETER = {
    **RESPONSE_WITH_TOOLS,
    "output": [{"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "container_id": "cntr_1"}],
}
IMAGE_GENERATION = {
    **RESPONSE_WITH_TOOLS,
    "output": [{"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "aGk="}],
}

# Background mode (platform.openai.com, "Background mode"): the create call answers ``queued``
# at once; the usage comes with the finished response, on retrieval.
BACKGROUND = {**RESPONSE_WITH_TOOLS, "id": "resp_bg", "background": True, "output": []}
QUEUED = {**BACKGROUND, "status": "queued", "usage": None}


def final_usage_stream(model: str, input_tokens: int, usage: dict) -> bytes:
    """A Messages stream whose message_delta carries the final ``usage`` (its steps included)."""
    start = message(model, {"input_tokens": input_tokens, "output_tokens": 1})
    return stream_answer(
        sse(
            ("message_start", {"type": "message_start", "message": start}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}),
            ("message_stop", {"type": "message_stop"}),
        )
    )


ANSWERS = {
    "bg-queued": json_answer(b"200 OK", json.dumps(QUEUED).encode()),
    "bg-in-progress": json_answer(b"200 OK", json.dumps({**QUEUED, "status": "in_progress"}).encode()),
    "bg-completed": json_answer(b"200 OK", json.dumps(BACKGROUND).encode()),
    "bg-cancelled-with-usage": json_answer(b"200 OK", json.dumps({**BACKGROUND, "status": "cancelled"}).encode()),
    "bg-cancelled-without-usage": json_answer(b"200 OK", json.dumps({**QUEUED, "status": "cancelled"}).encode()),
    "other-completed": json_answer(b"200 OK", json.dumps({**BACKGROUND, "id": "resp_other"}).encode()),
    "compacted": json_answer(b"200 OK", json.dumps(message("claude-opus-4-6", COMPACTED)).encode()),
    "compacted-stream": final_usage_stream("claude-opus-4-6", 23_000, COMPACTED),
    "stale-steps-stream": stream_answer(
        sse(
            ("message_start", {"type": "message_start", "message": message("claude-sonnet-4-5", STALE_STEPS_START)}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"input_tokens": 5_000, "output_tokens": 1_000},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        )
    ),
    "too-many-steps": json_answer(b"200 OK", json.dumps(message("claude-sonnet-4-5", TOO_MANY_STEPS)).encode()),
    "step-not-an-object": json_answer(b"200 OK", json.dumps(message("claude-sonnet-4-5", STEP_NOT_AN_OBJECT)).encode()),
    "two-short-steps": json_answer(b"200 OK", json.dumps(message("claude-sonnet-4-5", TWO_SHORT_STEPS)).encode()),
    "advised": json_answer(b"200 OK", json.dumps(message("claude-haiku-4-5-20251001", ADVISED)).encode()),
    "advised-stream": final_usage_stream("claude-haiku-4-5-20251001", 740, ADVISED),
    "advised-unknown": json_answer(
        b"200 OK", json.dumps(message("claude-haiku-4-5-20251001", ADVISED_BY_AN_UNKNOWN_MODEL)).encode()
    ),
    "us-only": json_answer(b"200 OK", json.dumps(message("claude-opus-4-6", US_ONLY)).encode()),
    "tools": json_answer(b"200 OK", json.dumps(RESPONSE_WITH_TOOLS).encode()),
    "browsing": json_answer(b"200 OK", json.dumps(BROWSING).encode()),
    "tools-preview-4o": json_answer(b"200 OK", json.dumps(PREVIEW_SEARCH_4O).encode()),
    "tools-preview-o3": json_answer(b"200 OK", json.dumps(PREVIEW_SEARCH_O3).encode()),
    "tools-code": json_answer(b"200 OK", json.dumps(CODE_INTERPRETER).encode()),
    # A label where a list or an object came instead: read as no label, never a crash of the reader.
    "tools-hostile-status": json_answer(
        b"200 OK", json.dumps({**RESPONSE_WITH_TOOLS, "status": ["completed"]}).encode()
    ),
    "tools-hostile-event-stream": stream_answer(
        sse(
            ("response.created", {"type": ["response.created"], "response": {"status": {"a": 1}}}),
            ("response.completed", {"type": "response.completed", "response": RESPONSE_WITH_TOOLS}),
        )
    ),
    # The final response names no tier: the one response.created echoed from the request is not billed.
    "tools-tier-stream": stream_answer(
        sse(
            (
                "response.created",
                {
                    "type": "response.created",
                    "response": {
                        **RESPONSE_WITH_TOOLS,
                        "status": "in_progress",
                        "service_tier": "priority",
                        "usage": None,
                    },
                },
            ),
            ("response.completed", {"type": "response.completed", "response": RESPONSE_WITH_TOOLS}),
        )
    ),
    "tools-image-stream": stream_answer(
        sse(("response.completed", {"type": "response.completed", "response": IMAGE_GENERATION}))
    ),
    "tools-stream": stream_answer(
        sse(
            (
                "response.created",
                {
                    "type": "response.created",
                    "response": {**RESPONSE_WITH_TOOLS, "status": "in_progress", "output": [], "usage": None},
                },
            ),
            ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "x"}),
            ("response.completed", {"type": "response.completed", "response": RESPONSE_WITH_TOOLS}),
        )
    ),
}


upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def send(proxy, kind: str, model: str = "claude-opus-4-6", stream: bool = False) -> httpx.Response:
    if kind.startswith(("tools", "browsing")):
        headers = {"authorization": "Bearer sk-test", "x-raw": kind}
        body = {"model": "gpt-5", "input": "hi", "stream": stream}
        return httpx.post(proxy.url + "/v1/responses", json=body, headers=headers, timeout=10)
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("kind", ["compacted", "compacted-stream"])
def test_a_compacted_answer_is_billed_for_every_step(proxy, recorder, kind):
    assert send(proxy, kind, stream=kind.endswith("stream")).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.tokens_output) == (203_000, 4_500)
    # Opus 4.6: $5 input, $25 output, flat over 200K input tokens.
    assert record.cost_usd == (203_000 * 5 + 4_500 * 25) / MTOK  # $1.1275, where the top level alone gives $0.14


def test_the_last_usage_of_a_stream_replaces_the_steps_of_the_first(proxy, recorder):
    assert send(proxy, "stale-steps-stream", model="claude-sonnet-4-5", stream=True).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_output, record.cost_usd) == (1_000, (5_000 * 3 + 1_000 * 15) / MTOK)  # $0.03


@pytest.mark.parametrize("kind", ["too-many-steps", "step-not-an-object"])
def test_compaction_steps_that_cannot_all_be_read_leave_the_cost_unknown(proxy, recorder, kind):
    # The top-level counts alone are known to be short of the bill: no price is better than a low one.
    assert send(proxy, kind, model="claude-sonnet-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd) == (False, None)


def test_each_compaction_step_is_priced_at_the_rates_its_own_input_selects(proxy, recorder):
    assert send(proxy, "two-short-steps", model="claude-sonnet-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    # Sonnet 4.5 doubles its rates only for a request above 200K input tokens; neither step is.
    assert record.cost_usd == (210_000 * 3 + 1_500 * 15) / MTOK  # $0.6525, not $1.29375 at the long-context rates


@pytest.mark.parametrize("kind", ["advised", "advised-stream"])
def test_the_advisors_step_is_billed_at_the_advisor_models_rates(proxy, recorder, kind):
    assert send(proxy, kind, model="claude-haiku-4-5", stream=kind.endswith("stream")).status_code == 200
    [record] = recorder.wait_for_ends(1)
    # Haiku 4.5 ($1 in, $5 out) for the executor's two steps, Opus 4.8 ($5 in, $25 out) for the advisor's.
    executor = (740 + 494) * 1 + (14 + 42) * 5
    advisor = 20_000 * 5 + 1_600 * 25
    assert record.cost_usd == (executor + advisor) / MTOK  # $0.141514; all at Haiku's rates gave $0.029514
    assert (record.tokens_input, record.tokens_output, record.reasoning_tokens) == (21_234, 1_656, 20)


def test_an_advisor_step_on_a_model_without_a_price_leaves_the_answer_unpriced(proxy, recorder):
    assert send(proxy, "advised-unknown", model="claude-haiku-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd) == (False, None)


def test_us_only_inference_costs_a_tenth_more_on_every_token_price(proxy, recorder):
    assert send(proxy, "us-only").status_code == 200
    [record] = recorder.wait_for_ends(1)
    standard = (1_000 * 5 + 100 * 25 + 10_000 * Decimal("0.5")) / MTOK  # $0.0125
    assert record.cost_usd == standard * Decimal("1.1")  # $0.01375


@pytest.mark.parametrize("kind", ["tools", "tools-stream"])
def test_built_in_tool_calls_of_a_response_are_billed_per_call(proxy, recorder, kind):
    assert send(proxy, kind, stream=kind.endswith("stream")).status_code == 200
    [record] = recorder.wait_for_ends(1)
    # gpt-5: $1.25 input, $0.125 cached input, $10 output; web search $10 and file search
    # $2.50 per thousand calls (openai.com/api/pricing).
    tokens = (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK  # $0.010625
    tools = 2 * Decimal(10) / 1000 + Decimal("2.5") / 1000  # $0.0225
    assert (record.cost_tools_usd, record.cost_usd) == (tools, tokens + tools)
    assert record.web_search_requests == 2


def test_only_the_search_actions_of_web_search_calls_are_billed(proxy, recorder):
    assert send(proxy, "browsing").status_code == 200
    [record] = recorder.wait_for_ends(1)
    tokens = (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK  # gpt-5, as above: $0.010625
    assert (record.web_search_requests, record.cost_tools_usd) == (1, Decimal("0.01"))  # not 3 and $0.03
    assert record.cost_usd == tokens + Decimal("0.01")


def test_the_preview_search_tool_costs_more_on_a_model_without_reasoning(proxy, recorder):
    assert send(proxy, "tools-preview-4o").status_code == 200
    assert send(proxy, "tools-preview-o3").status_code == 200
    gpt_4o, o3 = recorder.wait_for_ends(2)
    # gpt-4o-2024-08-06: $2.50 input, $1.25 cached, $10 output per MTok; one search at $25 per thousand.
    tokens = (2_000 * Decimal("2.5") + 1_000 * Decimal("1.25") + 800 * 10) / MTOK  # $0.01425
    assert (gpt_4o.cost_tools_usd, gpt_4o.cost_usd) == (Decimal("0.025"), tokens + Decimal("0.025"))
    # o3: $2 input, $0.50 cached, $8 output; one search at $10 per thousand.
    tokens = (2_000 * 2 + 1_000 * Decimal("0.5") + 800 * 8) / MTOK  # $0.0109
    assert (o3.cost_tools_usd, o3.cost_usd) == (Decimal("0.01"), tokens + Decimal("0.01"))


@pytest.mark.parametrize("kind", ["tools-code", "tools-image-stream"])
def test_a_tool_billed_outside_the_usage_leaves_the_cost_unknown(proxy, recorder, kind):
    assert send(proxy, kind, stream=kind.endswith("stream")).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd, record.tokens_output) == (False, None, 800)


@pytest.mark.parametrize("kind", ["tools-hostile-status", "tools-hostile-event-stream", "tools-tier-stream"])
def test_odd_labels_of_a_response_are_read_as_none(proxy, recorder, kind):
    response = send(proxy, kind, stream=kind.endswith("stream"))
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    tokens = (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK  # gpt-5 at the standard tier
    assert (record.tokens_input, record.cost_usd - record.cost_tools_usd) == (2_000, tokens)


def test_a_background_response_is_billed_once_on_the_retrieval_that_sees_it_finished(proxy, recorder):
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True}
    assert (
        httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-queued"}).status_code == 200
    )
    for kind in ("bg-in-progress", "bg-completed", "bg-completed", "other-completed"):
        retrieved = httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": kind}, timeout=10)
        assert retrieved.status_code == 200
    created, in_progress, finished, again, other = recorder.wait_for_ends(5)
    tokens = (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK  # gpt-5, as above: $0.010625
    assert (finished.tokens_input, finished.cache_read_tokens, finished.tokens_output) == (2_000, 1_000, 800)
    assert finished.cost_usd == tokens
    for record in (created, in_progress, again, other):  # started elsewhere, or billed already
        assert (record.tokens_input, record.cost_usd, record.priced, record.error_type) == (None, None, False, None)


def test_a_background_response_shown_cancelled_without_usage_is_billed_when_its_usage_shows(proxy, recorder):
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True}
    assert (
        httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-queued"}).status_code == 200
    )
    for kind in ("bg-cancelled-without-usage", "bg-completed"):
        assert httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": kind}).status_code == 200
    _, cancelled, finished = recorder.wait_for_ends(3)
    assert (cancelled.cost_usd, cancelled.tokens_input) == (None, None)
    assert finished.cost_usd == (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK


@pytest.mark.parametrize("finished", ["bg-completed", "bg-cancelled-with-usage"])
def test_a_background_response_cancelled_is_billed_on_the_cancel_that_shows_its_usage(proxy, recorder, finished):
    # The cancel call answers with the response as far as it got; before, its usage was never recorded
    # unless the client retrieved the response again.
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True}
    assert (
        httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-queued"}).status_code == 200
    )
    cancel = httpx.post(proxy.url + "/v1/responses/resp_bg/cancel", headers=headers | {"x-raw": finished})
    assert cancel.status_code == 200
    assert httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": finished}).status_code == 200
    _, cancelled, retrieved = recorder.wait_for_ends(3)
    assert cancelled.endpoint == "/v1/responses/{response_id}/cancel"
    assert (cancelled.tokens_input, cancelled.tokens_output) == (2_000, 800)
    assert cancelled.cost_usd == (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK
    assert (retrieved.tokens_input, retrieved.cost_usd) == (None, None)  # billed once
