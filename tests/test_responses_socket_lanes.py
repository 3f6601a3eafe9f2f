"""Answers on the Responses WebSocket: lanes named by ``stream_id`` run side by side, and an ``error``
ends the answer it is about, so each record keeps the usage of its own response."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import cast

import pytest
import websockets.sync.client

from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.websocket_answers import ENDED_IDS_KEPT, OpenAnswers
from tests.hostile_upstream import hostile_upstream

# Published prices per million tokens: gpt-4o $2.50 input, $10 output; gpt-4o-mini $0.15 and $0.60.
M = Decimal(1_000_000)


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def create(model: str, stream_id: str | None = None) -> str:
    lane = {"stream_id": stream_id} if stream_id else {}
    return json.dumps({"type": "response.create", **lane, "model": model, "input": "hi"})


def event(kind: str, response_id: str, model: str, stream_id: str | None, **response: object) -> str:
    lane = {"stream_id": stream_id} if stream_id else {}
    body = {"id": response_id, "object": "response", "model": model, **response}
    return json.dumps({"type": kind, **lane, "response": body})


def completed(response_id: str, model: str, tokens: tuple[int, int], stream_id: str | None = None) -> str:
    usage = {
        "input_tokens": tokens[0],
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens[1],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": sum(tokens),
    }
    return event("response.completed", response_id, model, stream_id, status="completed", usage=usage)


def protocol_error(status: int, error_type: str, code: str, message: str) -> str:
    """An error about a request, as the socket sends them: its status beside a nested error object."""
    error = {"type": error_type, "code": code, "message": message}
    return json.dumps({"type": "error", "status": status, "error": error})


def delta(stream_id: str | None) -> str:
    lane = {"stream_id": stream_id} if stream_id else {}
    return json.dumps({"type": "response.output_text.delta", **lane, "item_id": "msg_1", "delta": "Hi"})


def talk(proxy, provider, turns: list[tuple[str, list[str]]]) -> None:
    """Send each client message; the provider answers it with its list of events, read here in full."""
    provider.socket_answers = [answers for _message, answers in turns]
    with websockets.sync.client.connect(proxy.url.replace("http://", "ws://") + "/v1/responses") as socket:
        for message, answers in turns:
            socket.send(message)
            assert [socket.recv() for _ in answers] == answers


def by_model(records):
    return {record.model: record for record in records}


def test_answers_in_two_lanes_each_get_their_own_responses_usage(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started_a = event("response.created", "resp_a", "gpt-4o", "a", status="in_progress")
    started_b = event("response.created", "resp_b", "gpt-4o-mini", "b", status="in_progress")
    talk(
        proxy,
        provider,
        [
            (create("gpt-4o", "a"), [started_a]),
            # Lane b's answer ends first, then lane a's.
            (
                create("gpt-4o-mini", "b"),
                [started_b, delta("b"), completed("resp_b", "gpt-4o-mini", (1000, 100), "b")],
            ),
            (json.dumps({"type": "ping"}), [delta("a"), completed("resp_a", "gpt-4o", (50_000, 9_000), "a")]),
        ],
    )
    records = by_model(recorder.wait_for_ends(2))
    big, small = records["gpt-4o"], records["gpt-4o-mini"]
    # Before: each answer had the other's model, tokens, cost and timing.
    assert (big.response_model, big.tokens_input, big.tokens_output) == ("gpt-4o", 50_000, 9_000)
    assert big.cost_usd == (50_000 * Decimal("2.50") + 9_000 * 10) / M
    assert (small.response_model, small.tokens_input, small.tokens_output) == ("gpt-4o-mini", 1000, 100)
    assert small.cost_usd == (1000 * Decimal("0.15") + 100 * Decimal("0.60")) / M
    assert big.duration_ms > small.duration_ms


def test_a_refused_request_while_an_answer_runs_is_the_refused_answers_record(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started = event("response.created", "resp_1", "gpt-4o", None, status="in_progress")
    refusal = protocol_error(400, "invalid_request_error", "previous_response_not_found", "No.")
    talk(
        proxy,
        provider,
        [
            (create("gpt-4o"), [started]),
            (create("gpt-4o-mini"), [refusal, delta(None), completed("resp_1", "gpt-4o", (50_000, 9_000))]),
        ],
    )
    records = by_model(recorder.wait_for_ends(2))
    answered, refused = records["gpt-4o"], records["gpt-4o-mini"]
    # Before: the running answer took the refusal, and the refused one its usage.
    assert (answered.error_type, answered.tokens_input, answered.tokens_output) == (None, 50_000, 9_000)
    assert answered.cost_usd == (50_000 * Decimal("2.50") + 9_000 * 10) / M
    assert (refused.error_type, refused.tokens_input, refused.priced) == ("previous_response_not_found", None, False)


def test_a_late_event_of_an_answer_its_streams_error_ended_goes_to_no_other(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started_1 = event("response.created", "resp_1", "gpt-4o", None, status="in_progress")
    failed_mid_stream = json.dumps(
        {
            "type": "error",
            "sequence_number": 3,
            "error": {"type": "server_error", "code": "server_error", "message": "x"},
        }
    )
    late_failed = event("response.failed", "resp_1", "gpt-4o", None, status="failed", error={"code": "server_error"})
    started_2 = event("response.created", "resp_2", "gpt-4o-mini", None, status="in_progress")
    talk(
        proxy,
        provider,
        [
            (create("gpt-4o"), [started_1, failed_mid_stream]),
            # The client's retry is under way when the first answer's own terminal event comes.
            (create("gpt-4o-mini"), [started_2, late_failed, completed("resp_2", "gpt-4o-mini", (1000, 100))]),
        ],
    )
    records = by_model(recorder.wait_for_ends(2))
    failed, retried = records["gpt-4o"], records["gpt-4o-mini"]
    assert failed.error_type == "server_error"
    assert (retried.error_type, retried.tokens_input, retried.tokens_output) == (None, 1000, 100)


def test_lanes_and_ended_ids_are_forgotten_however_many_a_socket_has_seen():
    answers = OpenAnswers(realtime=False)
    for number in range(1000):
        answers.add(cast(Exchange, object()), {"type": "response.create", "stream_id": f"lane-{number}"})
        created = {"type": "response.created", "stream_id": f"lane-{number}", "response": {"id": f"resp_{number}"}}
        begun = answers.target(created)
        assert begun is not None and begun.response_id == f"resp_{number}"
        answers.remove(begun)
    assert not answers
    assert (answers._waiting, answers._begun_in, answers._by_response) == ({}, {}, {})
    assert len(answers._ended_ids) == ENDED_IDS_KEPT


def test_an_error_about_another_client_event_leaves_the_answer_under_way_a_success(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started = event("response.created", "resp_1", "gpt-4o", None, status="in_progress")
    unknown = protocol_error(400, "invalid_request_error", "unknown_event_type", "No such event.")
    talk(
        proxy,
        provider,
        [
            (create("gpt-4o"), [started]),
            (json.dumps({"type": "response.bogus"}), [unknown, delta(None), completed("resp_1", "gpt-4o", (1000, 50))]),
        ],
    )
    [record] = recorder.wait_for_ends(1)
    # Before: the error ended the answer under way, and its usage was lost.
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 1000, 50)
    assert record.cost_usd == (1000 * Decimal("2.50") + 50 * 10) / M


def test_lanes_whose_events_leave_out_stream_id_still_get_their_own_usage(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started_a = event("response.created", "resp_a", "gpt-4o", None, status="in_progress")
    started_b = event("response.created", "resp_b", "gpt-4o-mini", None, status="in_progress")
    talk(
        proxy,
        provider,
        [
            (create("gpt-4o", "a"), [started_a]),
            (create("gpt-4o-mini", "b"), [started_b, completed("resp_b", "gpt-4o-mini", (1000, 100))]),
            (json.dumps({"type": "ping"}), [completed("resp_a", "gpt-4o", (50_000, 9_000))]),
        ],
    )
    records = by_model(recorder.wait_for_ends(2))
    assert (records["gpt-4o"].tokens_input, records["gpt-4o"].error_type) == (50_000, None)
    assert (records["gpt-4o-mini"].tokens_input, records["gpt-4o-mini"].error_type) == (1000, None)


def test_an_answer_left_open_after_a_providers_error_names_that_error_when_the_client_leaves(
    provider, proxy_factory, recorder
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started = event("response.created", "resp_1", "gpt-4o", None, status="in_progress")
    failed = protocol_error(500, "server_error", "server_error", "Oops.")
    talk(proxy, provider, [(create("gpt-4o"), [started, delta(None), failed])])
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (499, "client_disconnected")
    assert "after its error server_error: Oops." in record.error_message  # before: only the client's leaving


@pytest.mark.parametrize("odd", [None, 7, float("nan"), ["a"], {"lane": "a"}, "x" * 100_000, "\x00\u202e"])
def test_a_stream_id_of_any_shape_is_a_lane_or_none_and_ends_clean(odd):
    answers = OpenAnswers(realtime=False)
    answers.add(cast(Exchange, object()), {"type": "response.create", "stream_id": odd})
    created = {"type": "response.created", "stream_id": odd, "response": {"id": "resp_1"}}
    begun = answers.target(created)
    assert begun is not None and begun.response_id == "resp_1"
    assert answers.target({"type": "response.completed", "stream_id": odd, "response": {"id": "resp_1"}}) is begun
    answers.remove(begun)
    assert not answers and (answers._waiting, answers._begun_in) == ({}, {})


def test_events_of_responses_no_request_here_began_are_no_answers(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    started = event("response.created", "resp_a", "gpt-4o", None, status="in_progress")
    stranger = completed("resp_never", "gpt-4o", (999_999, 999_999))  # a response never created on this socket
    unasked = [  # one created and completed with no request waiting for it
        event("response.created", "resp_unasked", "gpt-4o", None, status="in_progress"),
        completed("resp_unasked", "gpt-4o", (5_000, 5_000)),
    ]
    own = completed("resp_a", "gpt-4o", (1_000, 300))
    talk(proxy, provider, [(create("gpt-4o"), [started, stranger, *unasked, delta(None), own])])
    [record] = recorder.wait_for_ends(1)
    # Before: the stranger's usage ended the answer under way (999,999 tokens each way, $12.50), its own dropped.
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 1_000, 300)
    assert record.cost_usd == (1_000 * Decimal("2.50") + 300 * 10) / M
