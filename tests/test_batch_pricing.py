"""Batch results are billed result by result: each at the price its own size, region and tools select.

The lines are written from the providers' API references: Anthropic's
``GET /v1/messages/batches/{id}/results`` (``{"custom_id", "result": {"type": "succeeded",
"message": {...}}}``) and OpenAI's batch output file (``{"custom_id", "response": {"status_code",
"body": {...}}}``). Figures are worked out by hand from the published prices: both providers bill
batch tokens at half price.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from ccproxy_core.accounting.batch_results import BatchResultsParser, batch_cost
from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.counted_batch_results import CountedBatchResults
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.safe_values import safe_record
from ccproxy_core.testing import make_record

from .raw_upstream import RESET, upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)


def anthropic_line(custom_id: str, usage: dict, model: str = "claude-sonnet-4-5") -> bytes:
    message = {"id": "msg_" + custom_id, "type": "message", "role": "assistant", "model": model, "usage": usage}
    return json.dumps({"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}).encode() + b"\n"


def responses_line(custom_id: str) -> bytes:
    body = {
        "id": "resp_" + custom_id,
        "object": "response",
        "status": "completed",
        "model": "gpt-5",
        "output": [
            {"type": "web_search_call", "id": "ws_" + custom_id, "status": "completed"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Found it."}]},
        ],
        "usage": {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
    }
    line = {"id": "batch_req_" + custom_id, "custom_id": custom_id, "response": {"status_code": 200, "body": body}}
    return json.dumps(line).encode() + b"\n"


def fetched(service_type: str, body: bytes):
    prices = PriceBook()
    parser = BatchResultsParser(prices.input_thresholds())
    for start in range(0, len(body), 4096):
        parser.feed(body[start : start + 4096])
    usage = parser.result()
    return usage, batch_cost(prices, PROVIDERS[service_type], usage.batch)


def test_results_each_under_the_long_context_threshold_are_not_billed_as_one_long_request():
    # Three results of 100K input tokens: 300K in all, but each under Sonnet 4.5's 200K threshold.
    body = b"".join(anthropic_line(str(i), {"input_tokens": 100_000, "output_tokens": 500}) for i in range(3))
    usage, cost = fetched("anthropic", body)
    assert (usage.input_tokens, usage.output_tokens) == (300_000, 1_500)
    # Half of $3 in / $15 out per million, for each result: 3 x (0.30 + 0.0075) / 2.
    assert cost.total == 3 * (100_000 * 3 + 500 * 15) / MTOK / 2 == Decimal("0.46125")


def test_a_result_over_the_threshold_is_billed_at_the_long_context_rate_beside_one_under_it():
    body = anthropic_line("long", {"input_tokens": 210_000, "output_tokens": 500}) + anthropic_line(
        "short", {"input_tokens": 1_000, "output_tokens": 500}
    )
    _, cost = fetched("anthropic", body)
    # Above 200K: $6 in, $22.50 out per million; under it: $3 and $15. Half of each in batch.
    assert cost.total == ((210_000 * 6 + 500 * Decimal("22.5")) + (1_000 * 3 + 500 * 15)) / MTOK / 2


def test_results_kept_to_us_inference_cost_one_tenth_more():
    usage = {"input_tokens": 1_000, "output_tokens": 500, "inference_geo": "us"}
    body = b"".join(anthropic_line(str(i), usage) for i in range(3)) + anthropic_line(
        "global", {"input_tokens": 1_000, "output_tokens": 500}
    )
    _, cost = fetched("anthropic", body)
    one = (1_000 * 3 + 500 * 15) / MTOK / 2
    assert cost.total == 3 * one * Decimal("1.1") + one  # $0.017325 for the three US-only results


def test_web_searches_of_batched_responses_are_billed_per_call_beside_the_halved_tokens():
    usage, cost = fetched("openai", b"".join(responses_line(str(i)) for i in range(3)))
    assert (usage.input_tokens, usage.output_tokens, usage.web_search_requests) == (3_000, 300, 3)
    # gpt-5: $1.25 in, $10 out per million, half in batch; web search $10 per 1,000 calls.
    assert cost.tools == 3 * Decimal("0.01")
    assert cost.total == 3 * ((1_000 * Decimal("1.25") + 100 * 10) / MTOK / 2 + Decimal("0.01"))


def test_an_advisor_step_of_a_batched_result_is_billed_at_the_advisor_model_s_batch_rate():
    # The advisor tool's steps (platform.claude.com, "Advisor tool"): the executor's at its own rates,
    # the ``advisor_message`` at the model it names. Haiku 4.5 $1 in, $5 out; Opus 4.5 $5 in, $25 out;
    # half of each in batch.
    steps = [
        {"type": "message", "input_tokens": 412, "output_tokens": 89},
        {"type": "advisor_message", "model": "claude-opus-4-5", "input_tokens": 823, "output_tokens": 1_612},
        {"type": "message", "input_tokens": 1_348, "output_tokens": 442},
    ]
    usage = {"input_tokens": 1_760, "output_tokens": 531, "iterations": steps}
    recorded, cost = fetched("anthropic", anthropic_line("advised", usage, model="claude-haiku-4-5"))
    executor = (1_760 * 1 + 531 * 5) / MTOK / 2
    advisor = (823 * 5 + 1_612 * 25) / MTOK / 2
    assert cost.total == executor + advisor == Decimal("0.024415")
    assert recorded.response_model == "claude-haiku-4-5"  # the result's model, as outside a batch


def test_counts_of_zero_are_recorded_as_zero_not_as_unknown():
    usage = {"input_tokens": 1000, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    summed, cost = fetched("anthropic", anthropic_line("a", usage, model="claude-haiku-4-5"))
    counts = (summed.input_tokens, summed.output_tokens, summed.cache_read_tokens, summed.cache_write_tokens)
    assert counts == (1000, 0, 0, 0)
    assert cost.total == 1000 * Decimal("0.5") / MTOK  # Haiku 4.5 input at $1 per million, halved


def test_a_result_line_too_long_to_read_leaves_the_fetch_unpriced_not_short():
    huge = anthropic_line("huge", {"input_tokens": 1_000, "output_tokens": 500, "padding": "x" * (17 << 20)})
    usage, cost = fetched("anthropic", huge + anthropic_line("small", {"input_tokens": 1_000, "output_tokens": 500}))
    assert usage.input_tokens == 1_000  # what was read, a lower bound
    assert (cost.priced, cost.total) == (False, None)


def test_a_succeeded_result_without_a_model_leaves_the_fetch_unpriced_not_short():
    # Before, the result was skipped and the fetch priced at the other results alone ($14.25 of $28.50).
    named = anthropic_line("named", {"input_tokens": 1_000_000, "output_tokens": 1_000_000})
    line = json.loads(anthropic_line("nameless", {"input_tokens": 1_000_000, "output_tokens": 1_000_000}))
    del line["result"]["message"]["model"]
    _usage, cost = fetched("anthropic", named + json.dumps(line).encode() + b"\n")
    assert (cost.priced, cost.total) == (False, None)


def test_a_result_line_that_names_usage_but_is_not_json_leaves_the_fetch_unpriced_not_short():
    # Before, the line was skipped and the fetch priced at the readable results alone.
    good = anthropic_line("good", {"input_tokens": 100_000, "output_tokens": 1_000})
    broken = anthropic_line("broken", {"input_tokens": 100_000, "output_tokens": 1_000})[:-40] + b"\n"
    _usage, cost = fetched("anthropic", good + broken)
    assert (cost.priced, cost.total) == (False, None)
    _usage, cost = fetched("anthropic", good + b"not json, and no usage either\n")  # says nothing billed
    assert cost.priced and cost.total == (100_000 * Decimal("1.5") + 1_000 * Decimal("7.5")) / MTOK  # $0.1575


def test_a_result_with_a_charge_no_price_list_gives_leaves_the_fetch_unpriced_not_short():
    line = json.loads(responses_line("ci"))
    line["response"]["body"]["output"][0] = {"type": "code_interpreter_call", "id": "ci_1", "container_id": "cntr_1"}
    _usage, cost = fetched("openai", responses_line("plain") + json.dumps(line).encode() + b"\n")
    assert (cost.priced, cost.total) == (False, None)


RESULTS = b"".join(anthropic_line(str(i), {"input_tokens": 100_000, "output_tokens": 500}) for i in range(3))
RESULTS_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/binary\r\ncontent-length: %d\r\n\r\n" % len(RESULTS)
ANSWERS: dict[str, bytes | list[bytes | float | str]] = {
    "results": RESULTS_HEAD + RESULTS,
    "results-cut": [RESULTS_HEAD + RESULTS[: len(RESULTS) // 2], 0.05, RESET],
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def test_a_results_fetch_through_the_proxy_is_recorded_at_the_sum_of_each_results_price(proxy, recorder):
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "results"})
    response = client.get("/v1/messages/batches/msgbatch_1/results", cast_to=bytes)
    assert response == RESULTS
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.tokens_input, record.cost_usd) == (200, 300_000, Decimal("0.46125"))
    assert record.service_tier == "batch"  # as each result's usage says; before, none


def test_results_fetched_again_are_recorded_without_their_usage(proxy, recorder):
    # The provider billed the batch once; before, each fetch recorded the whole batch again.
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "results"})
    for batch in ("msgbatch_1", "msgbatch_1", "msgbatch_2"):
        assert client.get(f"/v1/messages/batches/{batch}/results", cast_to=bytes) == RESULTS
    first, again, other = recorder.wait_for_ends(3)
    assert (first.tokens_input, first.cost_usd) == (300_000, Decimal("0.46125"))
    assert (again.status_code, again.tokens_input, again.cost_usd, again.priced) == (200, None, 0, True)
    assert (other.tokens_input, other.cost_usd) == (300_000, Decimal("0.46125"))


def test_results_fetched_by_a_path_with_an_empty_segment_are_billed_once_as_the_results_they_are(proxy, recorder):
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "results"})
    for path in ("/v1/messages/batches//msgbatch_1/results", "/v1/messages/batches/msgbatch_1/results/"):
        assert client.get(path, cast_to=bytes) == RESULTS
    first, again = recorder.wait_for_ends(2)
    # Before: a free read ($0, priced) each time, the batch's spend never recorded.
    assert (first.endpoint, first.tokens_input, first.cost_usd) == (
        "/v1/messages/batches/{batch_id}/results",
        300_000,
        Decimal("0.46125"),
    )
    assert (again.tokens_input, again.cost_usd, again.priced) == (None, 0, True)


def test_results_a_fetch_cut_short_counted_are_not_counted_again_by_the_next_fetch(proxy, recorder):
    # The cut fetch reads the first result whole, then half of the second: the provider billed each once.
    path = "/v1/messages/batches/msgbatch_1/results"
    cut = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "results-cut"})
    with contextlib.suppress(anthropic.APIError, httpx.HTTPError):
        cut.with_options(max_retries=0).get(path, cast_to=bytes)
    # Fetched again in full, through the /api alias of the same route (the same results at the provider).
    client = anthropic.Anthropic(
        api_key="sk-ant-test", base_url=proxy.url + "/api", default_headers={"x-raw": "results"}
    )
    assert client.get(path, cast_to=bytes) == RESULTS
    plain = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, default_headers={"x-raw": "results"})
    assert plain.get(path, cast_to=bytes) == RESULTS  # and again, without the alias
    short, whole, again = recorder.wait_for_ends(3)
    one = (100_000 * 3 + 500 * 15) / MTOK / 2
    assert short.error_type is not None and (short.tokens_input, short.cost_usd) == (100_000, one)
    # Before: the whole fetch counted all three results again (400,000 input tokens recorded for 300,000).
    assert (whole.tokens_input, whole.cost_usd) == (200_000, 2 * one)
    assert (again.tokens_input, again.cost_usd) == (None, 0)  # before: 300,000 again, the alias a new path


def fetch_of(lines: int, counted_before: int = 0):
    """The usage of a fetch that read ``lines`` results, the first ``counted_before`` of them left out."""
    parser = BatchResultsParser(PriceBook().input_thresholds(), counted_before)
    parser.feed(b"".join(anthropic_line(str(i), {"input_tokens": 1000, "output_tokens": 100}) for i in range(lines)))
    return parser.result()


def test_a_cut_fetch_of_results_all_counted_before_is_a_free_read_not_unpriced():
    counted = CountedBatchResults()
    results = ("anthropic", "/v1/messages/batches/msgbatch_1/results")
    assert counted.settle(fetch_of(6), results, read_whole=False).input_tokens == 6000
    again = counted.settle(fetch_of(2, counted.counted_before(results)), results, read_whole=False)
    # Before: no tokens and no cost known (unpriced); it read only results counted already.
    assert (again.input_tokens, again.batch) == (None, None)


def test_two_fetches_at_once_never_count_the_same_results_twice():
    counted = CountedBatchResults()
    results = ("anthropic", "/v1/messages/batches/msgbatch_2/results")
    whole = fetch_of(10)  # started first, with nothing counted yet; settles last
    counted.settle(fetch_of(4), results, read_whole=False)  # cut short, settled meanwhile
    settled = counted.settle(whole, results, read_whole=True)
    # Before: all ten counted again beside the four (14 for 10); which overlap is unknown: no cost.
    assert settled.batch is not None and settled.batch.unreadable
    assert not batch_cost(PriceBook(), PROVIDERS["anthropic"], settled.batch).priced
    assert counted.settle(fetch_of(10), results, read_whole=True).input_tokens is None  # counted whole now


def test_a_batch_whose_summed_count_is_past_any_answer_s_is_unpriced_not_a_count_wiped_beside_its_price():
    # Each result at 2^40 input tokens passes on its own; their sum does not. Before: tokens_input null
    # beside a priced $247,390.12, counted in spend, budgets and the cost metrics.
    lines = b"".join(
        json.dumps(
            {
                "custom_id": f"r{index}",
                "response": {
                    "status_code": 200,
                    "body": {
                        "object": "chat.completion",
                        "model": "gpt-4o-mini-2024-07-18",
                        "choices": [],
                        "usage": {"prompt_tokens": 2**40, "completion_tokens": 1, "total_tokens": 2**40 + 1},
                    },
                },
            }
        ).encode()
        + b"\n"
        for index in range(3)
    )
    usage, cost = fetched("openai", lines)
    record = safe_record(make_record(tokens_input=usage.input_tokens, cost_usd=cost.total, priced=cost.priced))
    assert (record.tokens_input, record.cost_usd, record.priced) == (None, None, False)
    assert (record.cost_input_usd, record.cost_output_usd) == (None, None)


@pytest.mark.parametrize(
    ("model", "rates"),
    [
        ("claude-3-5-haiku-20241022", (Decimal("0.80"), Decimal("4"))),
        ("claude-opus-4-1", (Decimal("15"), Decimal("75"))),
    ],
)
def test_an_answer_served_at_the_batch_tier_costs_half_where_the_price_table_has_no_batch_price(model, rates):
    # Anthropic's Batch API: 50% off input and output on every model. genai-prices lists no batch
    # price for these two; before, an answer saying so outside a batch's results cost the full price.
    usage = Usage(input_tokens=1000, output_tokens=1000, service_tier="batch")
    cost = PriceBook().compute("anthropic", model, usage)
    assert cost.total == (1000 * rates[0] + 1000 * rates[1]) / MTOK / 2
    assert usage.service_tier == "batch"


def chat_line(custom_id: str, model: str, prompt: int, cached: int, completion: int) -> bytes:
    usage = {
        "prompt_tokens": prompt,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens": completion,
    }
    body = {"id": "chatcmpl-" + custom_id, "object": "chat.completion", "model": model, "choices": [], "usage": usage}
    line = {"id": "batch_req_" + custom_id, "custom_id": custom_id, "response": {"status_code": 200, "body": body}}
    return json.dumps(line).encode() + b"\n"


def test_openai_results_are_billed_at_the_batch_rates_openai_publishes():
    # GPT-5.4's Batch API rates: $1.25 input, $0.13 cached input (published rounded, not half of $0.25),
    # $7.50 output per MTok.
    lines = b"".join(chat_line(str(index), "gpt-5.4", 100_000, 40_000, 100) for index in range(3))
    _, cost = fetched("openai", lines)
    assert cost.cache_read == 120_000 * Decimal("0.13") / MTOK  # before: $0.015, at $0.125
    assert cost.total == (180_000 * Decimal("1.25") + 120_000 * Decimal("0.13") + 300 * Decimal("7.5")) / MTOK


def test_one_results_contradiction_prices_no_other_results_counts():
    # Result a says 1,000 of its 0 cache writes last an hour; result b wrote 1,000 for five minutes.
    contradicting = {"input_tokens": 10, "output_tokens": 10, "cache_creation_input_tokens": 0}
    contradicting["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1_000}
    five_minutes = {"input_tokens": 10, "output_tokens": 10, "cache_creation_input_tokens": 1_000}
    five_minutes["cache_creation"] = {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 0}
    usage, cost = fetched("anthropic", anthropic_line("a", contradicting) + anthropic_line("b", five_minutes))
    # Sonnet 4.5 in batch: $1.50 input, $7.50 output, $1.875 five-minute writes. Before: b's writes at the
    # one-hour rate ($3), $0.00318.
    assert cost.total == (20 * Decimal("1.5") + 20 * Decimal("7.5") + 1_000 * Decimal("1.875")) / MTOK
    assert usage.cache_write_1h_tokens == 0
