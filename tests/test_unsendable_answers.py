"""Provider answers that HTTP cannot carry to the client as they are: the client still gets an
answer (the provider's, less what cannot be sent, or a 502 naming why) and the record says what happened."""

from __future__ import annotations

import json

import httpx
import pytest

from .raw_upstream import RESET, json_answer, upstream_and_proxy_fixtures

BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
STREAM = (
    b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1", "type": "message",'
    b' "role": "assistant", "model": "claude-haiku-4-5", "content": [], "usage": {"input_tokens": 10,'
    b' "output_tokens": 1}}}\n\n'
    b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"},'
    b' "usage": {"output_tokens": 5}}\n\n'
    b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)
ANSWERS = {
    "escape-in-a-header": json_answer(b"200 OK", MESSAGE, b"request-id: req_\x1b[31mred\r\nx-kept: yes\r\n"),
    "delete-in-a-stream-header": json_answer(b"200 OK", STREAM, b"x-odd: a\x7fb\r\nx-kept: yes\r\n").replace(
        b"application/json", b"text/event-stream"
    ),
    "status-600": json_answer(b"600 Beyond", MESSAGE),
    "hop-by-hop-by-name": json_answer(
        b"200 OK", MESSAGE, b"Connection: X-Hop, x-ccproxy-request-id\r\nx-hop: to-the-gateway\r\nx-kept: yes\r\n"
    ),
    # Framing the HTTP library refuses: a head announcing fewer bytes than follow, a 204 with a body.
    "longer-than-its-length": json_answer(b"200 OK", MESSAGE).replace(
        b"content-length: %d" % len(MESSAGE), b"content-length: 5"
    ),
    "no-content-with-a-body": json_answer(b"204 No Content", MESSAGE),
    "status-999": json_answer(b"999 Whatever", MESSAGE),
    "bad-header-name": json_answer(b"200 OK", MESSAGE, b"x-bad<img>: 1\r\n"),
    "bad-status-line": b"HTTP/1.1 abc WHAT\r\n\r\n",
    # A whole (JSON) answer whose connection closes halfway through the length its head announced.
    "cut-short": json_answer(b"200 OK", MESSAGE)[: -len(MESSAGE) // 2],
    # The provider reads the request, then closes its connection without a byte of answer.
    "closed-without-answering": b"",
    "reset-after-reading": [RESET],
    # The whole stream, then the provider keeps its connection open a while before ending the body.
    "stream-held-open": [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(STREAM)
        + STREAM
        + b"\r\n",
        2.0,
        b"0\r\n\r\n",
    ],
}


upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def send(proxy, kind: str) -> httpx.Response:
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    return httpx.post(proxy.url + "/v1/messages", content=BODY, headers=headers, timeout=10)


@pytest.mark.parametrize(("kind", "body"), [("escape-in-a-header", MESSAGE), ("delete-in-a-stream-header", STREAM)])
def test_a_header_with_a_control_character_is_left_out_and_the_answer_goes_through(proxy, recorder, kind, body):
    response = send(proxy, kind)
    assert response.status_code == 200 and response.content == body
    assert response.headers["x-kept"] == "yes" and "x-odd" not in response.headers
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_input, record.tokens_output) == (200, None, 10, 5)


def test_a_header_the_providers_connection_header_names_stays_on_its_hop(proxy, recorder):
    response = send(proxy, "hop-by-hop-by-name")
    assert response.status_code == 200 and response.content == MESSAGE
    assert response.headers["x-kept"] == "yes" and "x-hop" not in response.headers  # before: passed on
    assert response.headers["x-ccproxy-request-id"]  # ccproxy's own, whatever the provider names
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)


@pytest.mark.parametrize("status", [600, 999])
def test_a_status_http_does_not_have_is_a_502_and_recorded_as_such(proxy, recorder, status):
    response = send(proxy, f"status-{status}")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error" and str(status) in response.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (502, status, "upstream_invalid_status")
    assert record.cost_usd is None
    assert send(proxy, "escape-in-a-header").status_code == 200  # the proxy goes on


@pytest.mark.parametrize("kind", ["bad-header-name", "bad-status-line"])
def test_an_answer_that_is_not_http_is_a_502_that_says_so(proxy, recorder, kind):
    response = send(proxy, kind)
    assert response.status_code == 502 and "not valid HTTP" in response.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (502, "upstream_invalid_response")


def test_a_client_that_hangs_up_after_the_last_event_had_the_whole_answer(proxy, recorder):
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "stream-held-open"}
    body = json.dumps({**json.loads(BODY), "stream": True})
    with httpx.stream("POST", proxy.url + "/v1/messages", content=body, headers=headers, timeout=10) as response:
        received = b""
        for chunk in response.iter_bytes():
            received += chunk
            if b"message_stop" in received:
                break  # as Codex CLI does: it has what it needs and closes at once
    assert received == STREAM
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 5)


def test_a_json_answer_cut_short_of_its_length_is_a_502_not_half_a_200(proxy, recorder):
    # A JSON answer is read whole before it is sent (its usage is at its end): when the provider breaks off,
    # the client gets an error saying so rather than a head promising bytes that never come.
    answer = send(proxy, "cut-short")
    assert answer.status_code == 502
    assert answer.json()["error"]["message"].startswith("the provider broke off its answer")
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (502, 200, "upstream_stream_aborted")
    assert record.tokens_input is None and record.cost_usd is None
    # The parser's own "400" (what a server would answer such bytes with) is not the provider's status.
    assert "ContentLengthError: Not enough data" in record.error_message and "400" not in record.error_message


@pytest.mark.parametrize("kind", ["closed-without-answering", "reset-after-reading"])
def test_a_provider_that_closes_without_answering_is_not_called_unreachable(proxy, recorder, kind):
    # It was reached, and may bill the request: before, the record said "cannot reach anthropic".
    response = send(proxy, kind)
    assert response.status_code == 502 and "may have received the request" in response.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (502, "upstream_disconnected", None)


@pytest.mark.parametrize("kind", ["longer-than-its-length", "no-content-with-a-body"])
def test_bytes_after_an_answer_s_end_leave_none_of_their_content_in_the_record(proxy, recorder, kind):
    # The answer ends where its head says (5 bytes; a 204 has none): what follows is no answer, and the
    # library's error about it quotes it. The model's answer is never stored.
    answer = send(proxy, kind)
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, record.status_code) == ((204, 204) if kind.startswith("no-content") else (200, 200))
    # A 204 to a metered call is no answer: the SDKs hand back no message.
    assert record.error_type == ("http_204" if kind.startswith("no-content") else "upstream_invalid_json")
    assert "msg_1" not in str(record.error_message) and "end_turn" not in str(record.error_message)
