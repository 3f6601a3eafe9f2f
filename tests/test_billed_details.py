"""Parts of an answer that change its bill, as the providers document them, through a real ccproxy.

Each answer is written here from the provider's public API reference and sent by a raw
upstream; each cost is worked out by hand from the published prices (USD per million tokens).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from .raw_upstream import json_answer, sse, stream_answer, upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)


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
# Steps without a ``cache_creation`` split of their own (the SDK's BetaMessageIterationUsage has it
# optional): the answer's split still says its 10,000 cache writes last an hour.
ONE_HOUR_WRITES = {
    "input_tokens": 1_200,
    "output_tokens": 300,
    "cache_read_input_tokens": 10_000,
    "cache_creation_input_tokens": 10_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 10_000},
    "iterations": [
        {"type": "message", "input_tokens": 500, "output_tokens": 100, "cache_creation_input_tokens": 10_000},
        {"type": "message", "input_tokens": 700, "output_tokens": 200, "cache_read_input_tokens": 10_000},
    ],
}
# Two steps wrote and some writes last an hour: which step's, the answer does not say.
UNSETTLED_ONE_HOUR_WRITES = {
    **ONE_HOUR_WRITES,
    "cache_creation_input_tokens": 20_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 12_000, "ephemeral_1h_input_tokens": 8_000},
    "iterations": [
        {"type": "message", "input_tokens": 500, "output_tokens": 100, "cache_creation_input_tokens": 10_000},
        {"type": "message", "input_tokens": 700, "output_tokens": 200, "cache_creation_input_tokens": 10_000},
    ],
}
# An answer whose parts are more than their whole: 3,000 one-hour writes of 1,000, 50 thinking tokens of 10.
PARTS_PAST_THEIR_WHOLE = {
    "input_tokens": 100,
    "output_tokens": 10,
    "output_tokens_details": {"thinking_tokens": 50},
    "cache_creation_input_tokens": 1_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 3_000},
}
# A compaction step with a split of its own, a message step without one: the answer's 1,000 one-hour
# writes may hold the compaction step's, so which are the message step's, the answer does not say.
MIXED_SPLITS = {
    **ONE_HOUR_WRITES,
    "cache_creation_input_tokens": 1_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1_000},
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 5_000,
            "output_tokens": 300,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
        },
        {"type": "message", "input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 1_000},
    ],
}
# A step saying 500 of its 0 writes last an hour beside one that wrote 500 for five minutes.
STEP_PAST_ITS_WRITES = {
    **ONE_HOUR_WRITES,
    "cache_creation_input_tokens": 500,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 100,
            "output_tokens": 10,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 500},
        },
        {
            "type": "message",
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
        },
    ],
}
US_ONLY = {"input_tokens": 1_000, "output_tokens": 100, "cache_read_input_tokens": 10_000, "inference_geo": "us"}


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
    "one-hour-writes": json_answer(b"200 OK", json.dumps(message("claude-opus-4-6", ONE_HOUR_WRITES)).encode()),
    "unsettled-one-hour-writes": json_answer(
        b"200 OK", json.dumps(message("claude-opus-4-6", UNSETTLED_ONE_HOUR_WRITES)).encode()
    ),
    "parts-past-their-whole": json_answer(
        b"200 OK", json.dumps(message("claude-haiku-4-5", PARTS_PAST_THEIR_WHOLE)).encode()
    ),
    "mixed-splits": json_answer(b"200 OK", json.dumps(message("claude-sonnet-4-5", MIXED_SPLITS)).encode()),
    "step-past-its-writes": json_answer(
        b"200 OK", json.dumps(message("claude-sonnet-4-5", STEP_PAST_ITS_WRITES)).encode()
    ),
    "us-only": json_answer(b"200 OK", json.dumps(message("claude-opus-4-6", US_ONLY)).encode()),
}


upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def send(proxy, kind: str, model: str = "claude-opus-4-6", stream: bool = False) -> httpx.Response:
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


def test_the_answers_one_hour_writes_count_when_its_steps_give_no_split(proxy, recorder):
    assert send(proxy, "one-hour-writes").status_code == 200
    [record] = recorder.wait_for_ends(1)
    # Opus 4.6: $5 input, $25 output, $0.50 cache reads, $10 one-hour cache writes.
    assert record.cost_usd == (1_200 * 5 + 300 * 25 + 10_000 * Decimal("0.5") + 10_000 * 10) / MTOK  # $0.1185
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (10_000, 10_000)  # before: $0.081, 0


def test_one_hour_writes_no_step_can_be_given_leave_the_cost_unknown(proxy, recorder):
    assert send(proxy, "unsettled-one-hour-writes").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd) == (False, None)


def test_a_part_the_answer_counts_past_its_whole_is_recorded_as_the_whole(proxy, recorder):
    assert send(proxy, "parts-past-their-whole", model="claude-haiku-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    # As the price counts them: Haiku 4.5, $1 input, $5 output, $2 one-hour cache writes.
    assert record.cost_usd == (100 * 1 + 10 * 5 + 1_000 * 2) / MTOK  # $0.00215
    # Before: 3,000 one-hour writes of 1,000 writes, 50 reasoning tokens of 10 output tokens.
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (1_000, 1_000)
    assert (record.tokens_output, record.reasoning_tokens) == (10, 10)


def test_one_hour_writes_steps_with_and_without_a_split_cannot_settle_leave_the_cost_unknown(proxy, recorder):
    assert send(proxy, "mixed-splits", model="claude-sonnet-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd) == (False, None)  # before: every write at the five-minute rate


def test_a_step_that_splits_writes_it_does_not_count_leaves_the_cost_unknown(proxy, recorder):
    # The step splits 500 one-hour writes but gives no writes: which count is wrong is not known. (Priced
    # before as if the split's writes were none: a cost that leaves out writes the answer names.)
    assert send(proxy, "step-past-its-writes", model="claude-sonnet-4-5").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.priced, record.cost_usd) == (False, None)
