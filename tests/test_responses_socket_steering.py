"""Steering on the Responses WebSocket (the openai SDK's ``response.steer``): the provider begins a
successor response itself once the steered one ends, with no ``response.create`` for it. OpenAI bills it
as any response, so it is an answer of its own, and it takes no answer a client's request waits with."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.hostile_upstream import hostile_upstream
from tests.test_responses_socket_lanes import M, by_model, completed, create, event, talk

A_USAGE = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 200}


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def steer(response_id: str) -> str:
    return json.dumps({"type": "response.steer", "previous_response_id": response_id, "input": "Go left instead."})


def steer_event(kind: str, response_id: str, sequence: int) -> str:
    return json.dumps(
        {"type": kind, "sequence_number": sequence, "steer": {"id": "steer_1", "previous_response_id": response_id}}
    )


def started(response_id: str, model: str, previous: str | None = None) -> str:
    return event("response.created", response_id, model, None, status="in_progress", previous_response_id=previous)


STEERED_A = event(
    "response.incomplete",
    "resp_a",
    "gpt-4o",
    None,
    status="incomplete",
    incomplete_details={"reason": "steered"},
    usage=A_USAGE,
)


def talk_after_a_start(provider, proxy_factory, recorder, turns: list[tuple[str, list[str]]]) -> None:
    """Through a new proxy, ask for a response (``resp_a``, gpt-4o) and see it begun; then the turns given."""
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    talk(proxy, provider, [(create("gpt-4o"), [started("resp_a", "gpt-4o")]), *turns])


def test_a_steered_responses_successor_is_recorded_as_its_own_answer(provider, proxy_factory, recorder):
    talk_after_a_start(
        provider,
        proxy_factory,
        recorder,
        [
            (
                steer("resp_a"),
                [
                    steer_event("response.steer.accepted", "resp_a", 3),
                    STEERED_A,
                    started("resp_s", "gpt-4o", previous="resp_a"),
                    completed("resp_s", "gpt-4o", (2000, 700)),
                ],
            ),
        ],
    )
    steered, successor = sorted(recorder.wait_for_ends(2), key=lambda record: record.tokens_input or 0)
    # The steered response stopped at its client's word: billed, no error (before: response_incomplete).
    assert (steered.tokens_input, steered.tokens_output, steered.error_type) == (1000, 200, None)
    # Before: no record for it. gpt-4o: $2.50 input, $10 output per MTok.
    assert (successor.response_model, successor.tokens_input, successor.tokens_output) == ("gpt-4o", 2000, 700)
    assert successor.cost_usd == (2000 * Decimal("2.50") + 700 * 10) / M


def test_a_successor_takes_no_answer_a_clients_request_waits_with(provider, proxy_factory, recorder):
    talk_after_a_start(
        provider,
        proxy_factory,
        recorder,
        [
            (steer("resp_a"), [steer_event("response.steer.accepted", "resp_a", 3), STEERED_A]),
            # The client's next request goes out before the provider has begun the successor.
            (
                create("gpt-4o-mini"),
                [
                    started("resp_s", "gpt-4o", previous="resp_a"),
                    completed("resp_s", "gpt-4o", (2000, 700)),
                    started("resp_b", "gpt-4o-mini"),
                    completed("resp_b", "gpt-4o-mini", (10, 10)),
                ],
            ),
        ],
    )
    records = recorder.wait_for_ends(3)
    asked = by_model(record for record in records if record.model == "gpt-4o-mini")["gpt-4o-mini"]
    # Before: the request's record had the successor's usage, and its own response had no record.
    assert (asked.response_model, asked.tokens_input, asked.tokens_output) == ("gpt-4o-mini", 10, 10)
    assert sorted(record.tokens_input for record in records) == [10, 1000, 2000]


def test_input_left_for_the_clients_own_continuation_brings_no_successor(provider, proxy_factory, recorder):
    talk_after_a_start(
        provider,
        proxy_factory,
        recorder,
        [
            (
                steer("resp_a"),
                [
                    steer_event("response.steer.accepted", "resp_a", 3),
                    completed("resp_a", "gpt-4o", (1000, 200)),
                    steer_event("response.steer.pending", "resp_a", 9),
                ],
            ),
            # The continuation the client sends itself, from the same response.
            (
                create("gpt-4o-mini"),
                [started("resp_b", "gpt-4o-mini", previous="resp_a"), completed("resp_b", "gpt-4o-mini", (10, 10))],
            ),
        ],
    )
    records = recorder.wait_for_ends(2)
    asked = [record for record in records if record.model == "gpt-4o-mini"]
    assert [(record.response_model, record.tokens_input) for record in asked] == [("gpt-4o-mini", 10)]


def test_a_failed_second_steer_leaves_the_first_ones_successor(provider, proxy_factory, recorder):
    refused = json.dumps(
        {
            "type": "response.steer.failed",
            "sequence_number": 4,
            "error": {"code": "invalid_input", "message": "No.", "type": "invalid_request_error"},
            "steer": {"previous_response_id": "resp_a", "input": "?"},  # refused before it had an id
        }
    )
    talk_after_a_start(
        provider,
        proxy_factory,
        recorder,
        [
            (steer("resp_a"), [steer_event("response.steer.accepted", "resp_a", 3)]),
            (
                steer("resp_a"),
                [
                    refused,
                    completed("resp_a", "gpt-4o", (1000, 200)),  # a normal end: the first steer's successor follows
                    started("resp_s", "gpt-4o", previous="resp_a"),
                    completed("resp_s", "gpt-4o", (2000, 700)),
                ],
            ),
        ],
    )
    # Before: the failed steer called off the successor, which went unrecorded.
    assert sorted(record.tokens_input for record in recorder.wait_for_ends(2)) == [1000, 2000]
