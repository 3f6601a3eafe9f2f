"""What a Responses answer is billed, as OpenAI documents it, through a real ccproxy: built-in tools per
call, the tier that served it, background responses once, odd labels read as none.

Each answer is written here from OpenAI's public API reference and sent by a raw upstream; each cost
is worked out by hand from the published prices (USD per million tokens).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from .raw_upstream import json_answer, sse, stream_answer, upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)

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
QUEUED = {**BACKGROUND, "status": "queued", "usage": None, "service_tier": "auto"}  # the tier asked for, echoed

ANSWERS = {
    "bg-queued": json_answer(b"200 OK", json.dumps(QUEUED).encode()),
    "bg-in-progress": json_answer(b"200 OK", json.dumps({**QUEUED, "status": "in_progress"}).encode()),
    "bg-completed": json_answer(b"200 OK", json.dumps(BACKGROUND).encode()),
    "bg-cancelled-with-usage": json_answer(b"200 OK", json.dumps({**BACKGROUND, "status": "cancelled"}).encode()),
    "bg-cancelled-without-usage": json_answer(b"200 OK", json.dumps({**QUEUED, "status": "cancelled"}).encode()),
    "bg-failed-without-usage": json_answer(
        b"200 OK",
        json.dumps({**QUEUED, "status": "failed", "error": {"code": "server_error", "message": "It broke."}}).encode(),
    ),
    "other-completed": json_answer(b"200 OK", json.dumps({**BACKGROUND, "id": "resp_other"}).encode()),
    # Created in the background and streamed (for a stream that can be resumed): billed when it completes.
    "bg-streamed": stream_answer(
        sse(
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": QUEUED}),
            ("response.completed", {"type": "response.completed", "sequence_number": 1, "response": BACKGROUND}),
        )
    ),
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


def send(proxy, kind: str, stream: bool = False) -> httpx.Response:
    headers = {"authorization": "Bearer sk-test", "x-raw": kind}
    body = {"model": "gpt-5", "input": "hi", "stream": stream}
    return httpx.post(proxy.url + "/v1/responses", json=body, headers=headers, timeout=10)


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
    # Queued: its cost is not known yet (the retrieval that shows it finished carries it).
    assert (created.tokens_input, created.cost_usd, created.priced, created.error_type) == (None, None, False, None)
    # Still running, or billed here already: reads that bill nothing.
    for record in (in_progress, again):
        assert (record.tokens_input, record.cost_usd, record.priced, record.error_type) == (None, 0, True, None)
    # Finished with usage, started elsewhere: billed there, or by nobody. Its cost is unknown, not 0.
    assert (other.tokens_input, other.cost_usd, other.priced, other.error_type) == (None, None, False, None)


def test_the_retrieval_that_bills_a_background_response_says_what_and_who_it_was_for(proxy, recorder):
    # A retrieval has no body and need not repeat the attribution headers: before, its record said
    # model none and no one, so spend by model, project or user (and budgets by model) missed it.
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True, "safety_identifier": "alice"}
    attribution = {"x-ccproxy-project": "bgproj", "x-ccproxy-session": "s-1", "x-ccproxy-tag-team": "red"}
    created = httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | attribution | {"x-raw": "bg-queued"})
    assert created.status_code == 200
    own = {"x-raw": "bg-completed", "x-ccproxy-project": "poller"}
    assert httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | own).status_code == 200
    queued, finished = recorder.wait_for_ends(2)
    assert queued.service_tier is None  # the queued answer's "auto" is the tier asked for, not one that served it
    assert finished.cost_usd == (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK
    assert (finished.model, finished.end_user, finished.session_id) == ("gpt-5", "alice", "s-1")
    assert finished.tags == {"team": "red"}
    assert finished.project == "poller"  # what the retrieval said itself stays


def test_a_key_in_the_model_a_background_response_started_with_stays_masked_on_its_billing_record(proxy, recorder):
    # The billing record is made safe of the retrieval's keys only: the model it takes from the
    # starting call must come masked of that call's keys, as its own record has it.
    creator, poller = "sk-creator-0123456789abcdef", "sk-poller-fedcba9876543210"
    body = {"model": f"gpt-5 {creator}", "input": "hi", "background": True}
    headers = {"authorization": f"Bearer {creator}", "x-raw": "bg-queued"}
    assert httpx.post(proxy.url + "/v1/responses", json=body, headers=headers).status_code == 200
    retrieval = {"authorization": f"Bearer {poller}", "x-raw": "bg-completed"}
    assert httpx.get(proxy.url + "/v1/responses/resp_bg", headers=retrieval).status_code == 200
    created, finished = recorder.wait_for_ends(2)
    assert creator not in created.model
    assert finished.model == created.model


def test_a_background_response_that_failed_without_usage_is_recorded_as_failed_once(proxy, recorder):
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True}
    assert (
        httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-queued"}).status_code == 200
    )
    for _ in range(2):
        retrieved = httpx.get(
            proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": "bg-failed-without-usage"}
        )
        assert retrieved.status_code == 200
    created, failed, again = recorder.wait_for_ends(3)
    assert (created.error_type, again.error_type) == (None, None)
    assert (failed.error_type, failed.model, failed.tokens_input, failed.priced) == (
        "server_error",
        "gpt-5",
        None,
        False,
    )


def test_a_background_response_shown_cancelled_without_usage_is_billed_when_its_usage_shows(proxy, recorder):
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True}
    assert (
        httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-queued"}).status_code == 200
    )
    for kind in ("bg-cancelled-without-usage", "bg-completed"):
        assert httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": kind}).status_code == 200
    _, cancelled, finished = recorder.wait_for_ends(3)
    assert (cancelled.cost_usd, cancelled.tokens_input) == (0, None)  # billed when its usage shows
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
    assert cancelled.error_type is None  # the cancel the client asked for worked: no error
    assert cancelled.cost_usd == (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK
    assert (retrieved.tokens_input, retrieved.cost_usd, retrieved.priced) == (None, 0, True)  # billed once


def test_a_background_response_billed_by_its_own_stream_is_free_to_read_again(proxy, recorder):
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "gpt-5", "input": "hi", "background": True, "stream": True}
    created = httpx.post(proxy.url + "/v1/responses", json=body, headers=headers | {"x-raw": "bg-streamed"})
    assert created.status_code == 200
    assert (
        httpx.get(proxy.url + "/v1/responses/resp_bg", headers=headers | {"x-raw": "bg-completed"}).status_code == 200
    )
    streamed, read = recorder.wait_for_ends(2)
    assert streamed.cost_usd == (2_000 * Decimal("1.25") + 1_000 * Decimal("0.125") + 800 * 10) / MTOK
    assert (read.tokens_input, read.cost_usd, read.priced) == (None, 0, True)  # billed here, by the stream
