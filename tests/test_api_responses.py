"""OpenAI's Responses API through a real ccproxy with the real openai SDK: JSON, streams, stored responses, WebSocket."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
import websockets.sync.client
from multidict import CIMultiDict

from ccproxy_core import Admission, hookimpl
from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.forwarding.credentials import credential_values
from ccproxy_core.testing import wait_until

MODEL = "gpt-5"
LONG_INPUT = "Explain what an observability proxy records for each request, in detail. " * 80  # > 1024 tokens


def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key="sk-test", max_retries=0)


def expected_cost(record):
    usage = Usage(record.tokens_input, record.tokens_output, record.cache_read_tokens, record.cache_write_tokens)
    return PriceBook().compute("openai", MODEL, usage).total


def test_create_through_ccproxy_matches_direct_and_records_cached_and_reasoning_tokens(proxy, upstream, recorder):
    through = client(proxy.url).responses.create(model=MODEL, input=LONG_INPUT, instructions="Be brief.")
    direct = client(upstream.url).responses.create(model=MODEL, input=LONG_INPUT, instructions="Be brief.")
    strip = {"id", "created_at", "output"}
    assert through.model_dump(exclude=strip) == direct.model_dump(exclude=strip)
    assert through.output_text == direct.output_text and through.output_text
    usage = through.usage
    assert usage.input_tokens_details.cached_tokens > 0 and usage.output_tokens_details.reasoning_tokens > 0
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.method, record.service_type, record.model) == (
        "/v1/responses",
        "POST",
        "openai",
        MODEL,
    )
    assert record.streaming is False and record.status_code == 200 and record.error_type is None
    assert record.tokens_input == usage.input_tokens - usage.input_tokens_details.cached_tokens
    assert record.cache_read_tokens == usage.input_tokens_details.cached_tokens
    assert record.tokens_output == usage.output_tokens  # reasoning tokens are output tokens, billed as such
    assert record.reasoning_tokens == usage.output_tokens_details.reasoning_tokens
    assert record.cost_usd == expected_cost(record) and record.cost_usd > 0


def test_stream_records_usage_from_response_completed(proxy, recorder):
    events = list(client(proxy.url).responses.create(model=MODEL, input=LONG_INPUT, stream=True))
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 20
    final = events[-1].response.usage
    [record] = recorder.wait_for_ends(1)
    assert record.streaming is True and record.status_code == 200 and record.error_type is None
    assert (record.tokens_input, record.cache_read_tokens, record.tokens_output) == (
        final.input_tokens - final.input_tokens_details.cached_tokens,
        final.input_tokens_details.cached_tokens,
        final.output_tokens,
    )
    assert record.response_model == MODEL and record.ttft_ms is not None and record.cost_usd == expected_cost(record)


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_served_at_priority_is_priced_at_priority(proxy, recorder, stream):
    answer = client(proxy.url).responses.create(model=MODEL, input=LONG_INPUT, stream=stream, service_tier="priority")
    if stream:
        events = list(answer)
        assert events[0].response.service_tier == "priority"
        answer = events[-1].response
    assert answer.service_tier == "priority"
    [record] = recorder.wait_for_ends(1)
    assert record.service_tier == "priority"
    usage = Usage(record.tokens_input, record.tokens_output, record.cache_read_tokens, service_tier="priority")
    priority = PriceBook().compute("openai", MODEL, usage).total
    assert record.cost_usd == priority and priority == 2 * expected_cost(record)  # twice the standard price


def test_failed_stream_is_recorded_as_the_providers_error(proxy, recorder):
    stream = client(proxy.url).responses.create(
        model=MODEL, input="hi", stream=True, extra_headers={"x-mock-stream-error-after": "3"}
    )
    events = list(stream)
    assert events[-1].type == "response.failed"
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 200 and record.error_type == "server_error"
    assert "injected" in record.error_message


@pytest.mark.parametrize("stream", [False, True])
def test_incomplete_response_is_an_error_with_its_usage(proxy, recorder, stream):
    answer = client(proxy.url).responses.create(model="gpt-4.1", input="hi", max_output_tokens=16, stream=stream)
    if stream:
        answer = list(answer)[-1].response
    assert answer.status == "incomplete" and answer.incomplete_details.reason == "max_output_tokens"
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "response_incomplete" and "max_output_tokens" in record.error_message
    assert record.tokens_output == 16 and record.cost_usd > 0


def test_stored_response_retrieve_input_items_delete_are_recorded_without_tokens(proxy, recorder):
    api = client(proxy.url)
    created = api.responses.create(model=MODEL, input="Remember this.")
    fetched = api.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.usage.output_tokens == created.usage.output_tokens
    items = api.responses.input_items.list(created.id)
    assert [item.content[0].text for item in items.data] == ["Remember this."]
    api.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(created.id)
    records = recorder.wait_for_ends(5)
    assert [(r.method, r.endpoint, r.status_code) for r in records] == [
        ("POST", "/v1/responses", 200),
        ("GET", "/v1/responses/{response_id}", 200),
        ("GET", "/v1/responses/{response_id}/input_items", 200),
        ("DELETE", "/v1/responses/{response_id}", 200),
        ("GET", "/v1/responses/{response_id}", 404),
    ]
    # A stored response repeats its usage; only the request that made it is counted.
    # Reading, listing and deleting a stored response is not billed: no tokens, cost 0.
    assert records[0].tokens_output > 0
    assert [(r.tokens_output, r.cost_usd, r.priced) for r in records[1:4]] == [(None, 0, True)] * 3
    assert (records[4].tokens_output, records[4].cost_usd, records[4].priced) == (None, None, False)  # an error


def test_websocket_answers_are_forwarded_and_each_recorded(proxy, recorder):
    with client(proxy.url).responses.connect() as connection:
        for prompt in ("first question", "second question, a little longer"):
            connection.response.create(model=MODEL, input=prompt)
            events = []
            for event in connection:
                events.append(event)
                if event.type == "response.completed":
                    break
            assert events[0].type == "response.created" and events[-1].response.usage.output_tokens > 0
    records = recorder.wait_for_ends(2)
    assert [(r.method, r.endpoint, r.model, r.streaming, r.status_code) for r in records] == [
        ("WEBSOCKET", "/v1/responses", MODEL, True, 200)
    ] * 2
    assert records[0].tokens_input < records[1].tokens_input and all(r.cost_usd > 0 for r in records)
    assert all(r.ttft_ms is not None and r.error_type is None for r in records)


def test_websocket_answers_carry_the_upgrades_attribution(proxy, recorder):
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    headers = {
        "authorization": "Bearer sk-proj-websocket-0123456789abcdef",
        "session-id": "0199a0b2-codex-session",
        "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)",
        "x-request-id": "client-chosen-id-1",
    }
    with websockets.sync.client.connect(url, additional_headers=headers) as socket:
        for end_user in ("user-hash-42", None):
            turn = {"type": "response.create", "model": MODEL, "input": "hi", "user": "legacy-user"}
            socket.send(json.dumps(turn | ({"safety_identifier": end_user} if end_user else {})))
            while json.loads(socket.recv())["type"] != "response.completed":
                pass
    records = recorder.wait_for_ends(2)
    for record in records:
        assert (record.method, record.session_id, record.client_name, record.client_version) == (
            "WEBSOCKET",
            "0199a0b2-codex-session",
            "codex",
            "0.171.0",
        )
    # Each answer's own request names its end user, as an HTTP body does.
    assert [record.end_user for record in records] == ["user-hash-42", "legacy-user"]
    [record] = records[:1]
    assert record.api_key_id and "websocket" not in record.api_key_id  # a fingerprint, never the key
    assert record.client_request_id == "client-chosen-id-1"


def test_a_websocket_client_with_its_key_in_the_subprotocol_does_not_get_the_operators(
    proxy_factory, upstream, recorder
):
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_api_key": "sk-proj-operator-0123456789"})
    httpx.delete(upstream.url + "/_mock/requests")
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    protocols = ["realtime", "openai-insecure-api-key.sk-proj-client-0123456789"]
    with websockets.sync.client.connect(url, subprotocols=protocols) as socket:
        socket.send(json.dumps({"type": "response.create", "model": MODEL, "input": "hi"}))
        while json.loads(socket.recv())["type"] != "response.completed":
            pass
    [upgrade] = httpx.get(upstream.url + "/_mock/requests").json()["requests"]
    sent = {name.lower(): value for name, value in upgrade["headers"]}
    assert "authorization" not in sent
    assert "openai-insecure-api-key.sk-proj-client-0123456789" in sent["sec-websocket-protocol"]
    [record] = recorder.wait_for_ends(1)
    assert record.api_key_id == key_fingerprint("sk-proj-client-0123456789")


def test_a_response_create_spelled_with_json_escapes_is_recorded_and_asked_about(proxy_factory, recorder):
    budget = SpentBudget()
    proxy = proxy_factory(plugins=[recorder, budget])
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    escaped = '{"type": "response\\u002ecreate", "model": "' + MODEL + '", "input": "hi"}'
    with websockets.sync.client.connect(url) as socket:
        socket.send(escaped)
        assert json.loads(socket.recv())["type"] == "error"  # refused: the spelling changes nothing
        socket.send(escaped)
        while json.loads(socket.recv())["type"] != "response.completed":
            pass
    refused, answered = recorder.wait_for_ends(2)
    assert (refused.status_code, answered.status_code, answered.tokens_input is not None) == (429, 200, True)


def test_a_key_in_a_websocket_subprotocol_is_masked_wherever_echoed():
    headers = CIMultiDict({"sec-websocket-protocol": "realtime, openai-insecure-api-key.9f3c2a7be41d4e0c8a6b"})
    assert credential_values(headers) == ("9f3c2a7be41d4e0c8a6b",)


class SpentBudget:
    """Refuses the first answer asked for, as a spent blocking budget would, and admits the others."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def admit_request(self) -> Admission | None:
        self.asked += 1
        if self.asked > 1:
            return None
        return Admission(refuse_status=429, error_type="budget_exceeded", message="daily budget spent")


def test_websocket_answers_are_asked_for_admission_and_a_refused_one_is_not_forwarded(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder, SpentBudget()])
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    with websockets.sync.client.connect(url, additional_headers={"authorization": "Bearer sk-test"}) as socket:
        socket.send(json.dumps({"type": "response.create", "model": MODEL, "input": "refused"}))
        refused = json.loads(socket.recv())
        socket.send(json.dumps({"type": "response.create", "model": MODEL, "input": "admitted"}))
        events = [json.loads(socket.recv())]
        while events[-1]["type"] != "response.completed":
            events.append(json.loads(socket.recv()))
    # As the Responses socket's protocol errors come (the error object nested, beside the status), and
    # as an HTTP refusal's body; before, the stream's own error event's flat fields.
    assert refused == {
        "type": "error",
        "status": 429,
        "error": {
            "message": "daily budget spent",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
    }
    assert events[0]["type"] == "response.created"
    records = recorder.wait_for_ends(2)
    assert [(r.method, r.status_code, r.error_type, r.tokens_output) for r in records] == [
        ("WEBSOCKET", 429, "budget_exceeded", None),
        ("WEBSOCKET", 200, None, records[1].tokens_output),
    ]
    assert records[1].tokens_output > 0
    assert (records[0].cost_usd, records[0].priced) == (0, True)  # never forwarded: nothing to bill


def test_refused_websocket_upgrade_reaches_the_client_and_is_recorded(proxy, recorder):
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(
            url, additional_headers={"authorization": "Bearer sk-bad", "x-mock-status": "401"}
        )
    assert refused.value.response.status_code == 401
    # The refusal is the provider's own answer: its status and its error object.
    error = json.loads(refused.value.response.body)["error"]
    [record] = recorder.wait_for_ends(1)
    assert (record.method, record.status_code, record.upstream_status, record.error_type) == (
        "WEBSOCKET",
        401,
        401,
        error["code"],
    )


def test_realtime_websocket_records_usage_of_response_done(proxy, recorder):
    url = proxy.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    with websockets.sync.client.connect(url, additional_headers={"authorization": "Bearer sk-test"}) as socket:
        assert json.loads(socket.recv())["type"] == "session.created"
        socket.send(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Hello there, " * 10}],
                    },
                }
            )
        )
        socket.send(json.dumps({"type": "response.create"}))
        while (event := json.loads(socket.recv()))["type"] != "response.done":
            pass
    usage = event["response"]["usage"]
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.model, record.tokens_input, record.tokens_output) == (
        "/v1/realtime",
        "gpt-realtime",
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert record.cost_usd is not None and record.cost_usd > 0


def test_metrics_count_websocket_answers_and_responses_by_endpoint(proxy_factory):
    proxy = proxy_factory(observability={"metrics_endpoint_enabled": True})
    client(proxy.url).responses.create(model=MODEL, input="count me")
    with client(proxy.url).responses.connect() as connection:
        connection.response.create(model=MODEL, input="and me")
        for event in connection:
            if event.type == "response.completed":
                break

    def websocket_lines():
        exposition = httpx.get(proxy.url + "/metrics").text
        return [
            line
            for line in exposition.splitlines()
            if line.startswith("ccproxy_requests_total{") and 'method="WEBSOCKET"' in line
        ]

    websocket_line = wait_until(websocket_lines)
    exposition = httpx.get(proxy.url + "/metrics").text
    assert websocket_line and 'endpoint="/v1/responses"' in websocket_line[0] and websocket_line[0].endswith(" 1.0")
    assert any(
        'method="POST"' in line and 'endpoint="/v1/responses"' in line
        for line in exposition.splitlines()
        if line.startswith("ccproxy_requests_total{")
    )
