"""Realtime answers on one socket: several may be open, the provider begins some itself, and its
``error`` events are recoverable: each record is the answer the provider's events name."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from tests.hostile_upstream import hostile_upstream

# gpt-realtime, text: $4 input and $16 output per million tokens.
M = Decimal(1_000_000)


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def created(response_id: str, **more: object) -> str:
    response = {"object": "realtime.response", "id": response_id, "status": "in_progress", "usage": None, **more}
    return json.dumps({"type": "response.created", "event_id": f"ev_c_{response_id}", "response": response})


def delta(response_id: str) -> str:
    return json.dumps({"type": "response.output_text.delta", "response_id": response_id, "delta": "Hi"})


def done(response_id: str, input_tokens: int, output_tokens: int, status: str = "completed") -> str:
    usage = {"total_tokens": input_tokens + output_tokens, "input_tokens": input_tokens, "output_tokens": output_tokens}
    response = {"object": "realtime.response", "id": response_id, "status": status, "usage": usage}
    return json.dumps({"type": "response.done", "event_id": f"ev_d_{response_id}", "response": response})


def error(code: str, event_id: str | None, param: str | None = None) -> str:
    body = {"type": "invalid_request_error", "code": code, "message": f"{code} happened", "param": param}
    return json.dumps({"type": "error", "event_id": "ev_err", "error": {**body, "event_id": event_id}})


def create(event_id: str | None = None, **response: object) -> str:
    event = {"type": "response.create", **({"event_id": event_id} if event_id else {})}
    return json.dumps({**event, **({"response": response} if response else {})})


def talk(proxy, provider, turns: list[tuple[str, list[str]]]) -> None:
    """Send each client message; the provider answers it with its list of events, read here in full."""
    provider.socket_answers = [answers for _message, answers in turns]
    url = proxy.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    with websockets.sync.client.connect(url) as socket:
        for message, answers in turns:
            socket.send(message)
            assert [socket.recv() for _ in answers] == answers


def by_tokens(records):
    return sorted(records, key=lambda record: record.tokens_input or 0)


def test_an_error_about_another_client_event_leaves_the_answer_under_way_a_success(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    events = [created("resp_1"), error("item_not_found", "client_ev_9"), delta("resp_1"), done("resp_1", 100, 20)]
    talk(proxy, provider, [(create("c1"), events)])
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 100, 20)  # before: item_not_found
    assert record.cost_usd == (100 * 4 + 20 * 16) / M and record.ttft_ms is not None


def test_a_create_the_provider_refuses_is_its_own_record_and_takes_no_later_answer(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    refused = error("conversation_already_has_active_response", "second")
    talk(
        proxy,
        provider,
        [
            (create("first"), [created("resp_a")]),
            (create("second"), [refused]),  # while the first is under way
            (json.dumps({"type": "response.cancel"}), [done("resp_a", 100, 5, "cancelled")]),
            (create("third"), [created("resp_c"), delta("resp_c"), done("resp_c", 300, 30)]),
        ],
    )
    second, first, third = by_tokens(recorder.wait_for_ends(3))
    assert (second.error_type, second.tokens_input, second.priced) == (
        "conversation_already_has_active_response",
        None,
        False,
    )
    # Cancelled at the client's word: an answer that ended, no error.
    assert (first.tokens_input, first.tokens_output, first.error_type, first.finish_reason) == (
        100,
        5,
        None,
        "cancelled",
    )
    assert (third.tokens_input, third.error_type, third.cost_usd) == (300, None, (300 * 4 + 30 * 16) / M)
    assert first.ttft_ms is None and third.ttft_ms is not None  # before: the refused one took the third's tokens


def test_an_error_naming_no_client_event_refuses_the_oldest_answer_not_begun(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    talk(
        proxy,
        provider,
        [
            (create(), [created("resp_a")]),
            (create(), [error("conversation_already_has_active_response", None), done("resp_a", 100, 5)]),
        ],
    )
    refused, answered = by_tokens(recorder.wait_for_ends(2))
    assert (refused.error_type, answered.error_type, answered.tokens_input) == (
        "conversation_already_has_active_response",
        None,
        100,
    )


def test_answers_open_at_once_each_get_the_usage_of_their_own_response(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    talk(
        proxy,
        provider,
        [
            (create("x"), [created("resp_x")]),
            # The second (out of band) ends first; then one the provider begins itself (voice activity).
            (create("y"), [created("resp_y"), done("resp_y", 200, 2), done("resp_x", 100, 1)]),
            (json.dumps({"type": "input_audio_buffer.commit"}), [created("resp_v"), done("resp_v", 300, 3)]),
        ],
    )
    records = sorted(recorder.wait_for_ends(3), key=lambda record: record.timestamp)  # in the order asked
    assert [(r.tokens_input, r.tokens_output, r.error_type) for r in records] == [  # before: x had y's usage
        (100, 1, None),
        (200, 2, None),
        (300, 3, None),
    ]


def test_a_failed_realtime_response_keeps_the_providers_error_from_its_status_details(
    provider, proxy_factory, recorder
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    failed = json.loads(done("resp_f", 50, 0, "failed"))
    cause = {"type": "server_error", "code": "server_error", "message": "The server had an error"}
    failed["response"]["status_details"] = {"type": "failed", "error": cause}
    talk(proxy, provider, [(create(), [created("resp_f"), json.dumps(failed)])])
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.error_message) == (
        "server_error",
        "The server had an error",
    )  # before: "response failed"
    assert record.cost_usd == 50 * 4 / M


@pytest.mark.parametrize(
    "kind",
    ["response.text.delta", "response.audio_transcript.delta", "response.audio.delta", "response.output_audio.delta"],
)
def test_the_first_text_transcript_or_audio_delta_is_the_first_token(provider, proxy_factory, recorder, kind):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    first = json.dumps({"type": kind, "response_id": "resp_b", "delta": "Hi"})
    talk(proxy, provider, [(create(), [created("resp_b"), first, done("resp_b", 10, 1)])])
    [record] = recorder.wait_for_ends(1)
    assert record.ttft_ms is not None  # before: null


def test_an_error_naming_no_client_event_and_no_response_field_refuses_no_answer(provider, proxy_factory, recorder):
    # The SDK gives its events no event_id: a bad item just before a create is no refusal of the create.
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    bad_item = json.dumps({"type": "conversation.item.create", "item": {"role": "user", "content": []}})
    talk(
        proxy,
        provider,
        [
            (bad_item, []),
            (create(), [error("invalid_value", None, "item.type"), created("resp_1"), done("resp_1", 100, 10)]),
        ],
    )
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input) == (None, 100)  # before: a second, refused record


def test_an_answer_the_provider_begins_beside_one_asked_for_out_of_band_takes_its_own_usage(
    provider, proxy_factory, recorder
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    voice = [created("resp_v", conversation_id="conv_1"), created("resp_o", conversation_id=None)]
    talk(
        proxy,
        provider,
        [(create("oob", conversation="none"), [*voice, done("resp_o", 100, 10), done("resp_v", 300, 30)])],
    )
    records = sorted(recorder.wait_for_ends(2), key=lambda record: record.request_bytes)
    asked, begun = records[1], records[0]  # the provider's own answer is recorded with a stand-in request
    assert (asked.tokens_input, begun.tokens_input) == (100, 300)  # before: swapped


def test_an_answer_event_too_large_to_decode_still_finds_its_answer_by_id(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url, upstream={"max_decoded_bytes": 1024})
    padding = {"metadata": {"pad": "x" * 2048}}
    talk(
        proxy,
        provider,
        [
            (create("a"), [created("resp_a")]),
            (
                create("b"),
                [created("resp_b", **padding), done("resp_b", 200, 2)],
            ),
            (json.dumps({"type": "response.cancel"}), [done("resp_a", 100, 1)]),
        ],
    )
    first, second = sorted(recorder.wait_for_ends(2), key=lambda record: record.timestamp)
    assert (first.tokens_input, first.error_type) == (100, None)  # before: a third, phantom answer
    assert second.error_type is None


def test_an_answer_cut_by_the_providers_close_names_the_error_it_sent_first(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    expired = json.dumps(
        {"type": "error", "error": {"type": "invalid_request_error", "code": "session_expired", "message": "Too long."}}
    )
    sent = [created("resp_1"), expired]
    provider.socket_answers, provider.socket_close = [sent], (1000, "")
    url = proxy.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    with websockets.sync.client.connect(url) as socket:
        socket.send(create())
        assert [socket.recv(), socket.recv()] == sent
        with pytest.raises(ConnectionClosed):
            socket.recv()  # the provider closes
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_stream_aborted"
    assert "session_expired: Too long." in record.error_message  # before: only the close code


def test_many_creates_refused_while_one_answer_runs_are_each_one_record(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    busy = error("conversation_already_has_active_response", None)
    turns = [(create(), [created("resp_1")]), *[(create(), [busy])] * 500]
    talk(proxy, provider, [*turns, (json.dumps({"type": "response.cancel"}), [done("resp_1", 100, 5, "cancelled")])])
    records = recorder.wait_for_ends(501)
    refused = [record for record in records if record.error_type == "conversation_already_has_active_response"]
    assert len(refused) == 500 and all(record.tokens_input is None for record in refused)
    [answered] = [record for record in records if record.tokens_input == 100]
    assert (answered.error_type, answered.finish_reason) == (None, "cancelled")


def test_an_event_id_given_twice_refuses_the_oldest_answer_asking_with_it(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    refused = error("invalid_value", "dup", "response.voice")
    answer = [created("resp_o", conversation_id=None), done("resp_o", 500, 50)]
    talk(proxy, provider, [(create("dup"), []), (create("dup", conversation="none"), [refused, *answer])])
    first, second = sorted(recorder.wait_for_ends(2), key=lambda record: record.timestamp)
    assert (first.error_type, first.tokens_input) == ("invalid_value", None)
    assert (second.error_type, second.tokens_input) == (None, 500)  # before: the two swapped


@pytest.mark.parametrize(
    "odd",
    [
        done("resp_ghost", 999, 99),  # the end of a response no answer has
        created("resp_1"),  # the same response begun twice
        error("invalid_value", "c1", "item.type"),  # about an item, naming the create's own id
    ],
    ids=["unknown-id", "begun-twice", "item-error-naming-the-create"],
)
def test_an_odd_event_changes_no_answers_record(provider, proxy_factory, recorder, odd):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    events = [created("resp_1"), odd, delta("resp_1"), done("resp_1", 100, 10)]
    if "item.type" in odd:  # the provider answers the item's error before it begins the response
        events = [odd, created("resp_1"), delta("resp_1"), done("resp_1", 100, 10)]
    talk(proxy, provider, [(create("c1"), events)])
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 100, 10)
    assert record.ttft_ms is not None


def test_hostile_ids_and_errors_change_no_answers_record(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    odd_created = json.dumps({"type": "response.created", "response": {"id": ["resp_1"], "conversation_id": {}}})
    odd_errors = [
        json.dumps({"type": "error", "error": "overloaded \x00\u202e"}),  # not an object
        json.dumps({"type": "error", "error": {"event_id": 5, "param": None, "code": ["x"]}}),
        json.dumps(
            {"type": "error", "error": {"event_id": "\ud800", "code": "conversation_already_has_active_response"}}
        ),
    ]
    events = [created("resp_1"), odd_created, *odd_errors, delta("resp_1"), done("resp_1", 100, 10)]
    talk(proxy, provider, [(create("c1"), events)])
    # The unreadable response.created announces an answer of the provider's that never ends: cut off, at no cost.
    answered, announced = sorted(recorder.wait_for_ends(2), key=lambda record: record.tokens_input is None)
    assert (answered.error_type, answered.tokens_input, answered.cost_usd) == (None, 100, (100 * 4 + 10 * 16) / M)
    assert (announced.error_type, announced.tokens_input, announced.cost_usd) == ("client_disconnected", None, None)


def test_a_provider_beginning_answers_it_never_ends_begins_a_bounded_number(
    provider, proxy_factory, recorder, monkeypatch, caplog
):
    from ccproxy_core.forwarding import websocket_proxy

    monkeypatch.setattr(websocket_proxy, "MOST_PROVIDER_BEGUN", 3)
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    flood = [created(f"resp_{n}") for n in range(10)]  # before: each one held until the socket closed
    talk(proxy, provider, [(create("c1"), [*flood, delta("resp_0"), done("resp_0", 100, 10)])])
    records = recorder.wait_for_ends(4)  # the one asked for, and three the provider began itself
    assert sorted(record.tokens_input or 0 for record in records) == [0, 0, 0, 100]
    assert len(recorder.starts) == 4
    assert sum("they are not recorded" in record.getMessage() for record in caplog.records) == 1


def test_answers_asked_for_and_not_begun_leave_the_provider_its_own_to_begin(
    provider, proxy_factory, recorder, monkeypatch
):
    from ccproxy_core.forwarding import websocket_proxy

    monkeypatch.setattr(websocket_proxy, "MOST_PROVIDER_BEGUN", 3)
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    asked = [(create(f"oob{n}", conversation="none"), []) for n in range(3)]  # out of band, never begun
    voiced = [created("resp_v", conversation_id="conv_1"), delta("resp_v"), done("resp_v", 100, 10)]
    talk(proxy, provider, [*asked, (json.dumps({"type": "input_audio_buffer.commit"}), voiced)])
    records = recorder.wait_for_ends(4)
    # Before: the three asked for counted against the provider's own, and its answer went unrecorded.
    assert sorted(record.tokens_input or 0 for record in records) == [0, 0, 0, 100]


def test_a_response_passed_over_takes_no_answer_begun_without_an_id():
    from typing import cast

    from ccproxy_core.forwarding.exchange import Exchange
    from ccproxy_core.forwarding.websocket_answers import OpenAnswers

    answers = OpenAnswers(realtime=True)
    answers.add(cast(Exchange, object()), {"type": "response.create"})
    unnamed = answers.target({"type": "response.created", "response": {"object": "realtime.response"}})
    assert unnamed is not None and unnamed.response_id == ""
    answers.pass_over({"type": "response.created", "response": {"id": "resp_dropped"}})
    usage = {"input_tokens": 999_999, "output_tokens": 999_999}
    # Before: the dropped response's end ended the answer under way, with its usage.
    assert answers.target({"type": "response.done", "response": {"id": "resp_dropped", "usage": usage}}) is None
    assert answers.target({"type": "response.done", "response": {"id": "resp_own", "usage": usage}}) is unnamed
