"""Answers labelled or shaped oddly: read as the SDKs read them (a stream under another type, a long header)."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from tests.hostile_upstream import STREAM, hostile_upstream
from tests.raw_upstream import json_answer, raw_upstream

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def hostile():
    with hostile_upstream() as server:
        yield server


@pytest.mark.parametrize("sent", ["stream-as", "chunked-stream-as"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/octet-stream"])
def test_a_stream_labelled_as_another_type_is_read_as_the_stream_asked_for(
    proxy_factory, recorder, hostile, sent, content_type
):
    # Before, the record said upstream_invalid_json with no tokens, though the client read a whole stream.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": f"{sent}-{content_type}"}
    response = httpx.post(proxy.url + "/v1/messages", content=json.dumps(BODY), headers=headers, timeout=10)
    assert response.content == STREAM
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_input, record.tokens_output) == (200, None, 10, 5)
    assert record.priced and record.cost_usd > 0


def test_a_json_answer_to_a_request_that_did_not_stream_is_still_read_as_json(proxy_factory, recorder, hostile):
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    response = httpx.post(
        proxy.url + "/v1/messages", content=json.dumps({**BODY, "stream": False}), headers=ANTHROPIC, timeout=10
    )
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 10, 5)


@pytest.mark.parametrize("sent", ["json-as-stream", "stream-as-text/event-stream"])
def test_an_answer_labelled_a_stream_to_a_request_that_asked_for_none_is_read_as_it_is(
    proxy_factory, recorder, hostile, sent
):
    # Before, a JSON Message labelled text/event-stream (which the SDKs read as the JSON they asked for)
    # was recorded as upstream_stream_incomplete with no tokens.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    body = json.dumps({**BODY, "stream": False})
    response = httpx.post(proxy.url + "/v1/messages", content=body, headers={**ANTHROPIC, "x-hostile": sent})
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.tokens_input, record.tokens_output) == (None, 10, 5)
    assert record.streaming is (sent != "json-as-stream")


@pytest.mark.parametrize(("length", "status"), [(20_000, 200), (70_000, 502)])
def test_a_long_answer_header_passes_as_the_sdks_read_it_and_a_huge_one_is_refused(
    proxy_factory, recorder, hostile, length, status
):
    # Before, any header over aiohttp's 8 KiB was a 502, though the SDKs read the answer.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": f"header-of-{length}"}
    body = json.dumps({**BODY, "stream": False})
    response = httpx.post(proxy.url + "/v1/messages", content=body, headers=headers, timeout=10)
    assert response.status_code == status
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == status
    if status == 200:
        assert len(response.headers["x-long"]) == length and record.tokens_output == 5


def test_a_stream_in_more_codings_than_ccproxy_undoes_passes_whole_with_its_usage_unknown(
    proxy_factory, recorder, hostile
):
    # Before, its compressed bytes were read as the stream: "bytes that are not UTF-8", an error the client never had.
    proxy = proxy_factory(upstream_url=hostile.url, plugins=[recorder])
    headers = {**ANTHROPIC, "x-hostile": "six-codings"}
    with httpx.stream("POST", proxy.url + "/v1/messages", content=json.dumps(BODY), headers=headers) as response:
        body = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == ", ".join(["gzip"] * 6) and len(body) > 0
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output, record.priced) == (200, None, None, False)


@pytest.mark.parametrize("name", [b"Connection ", b"Upgrade "])  # aiohttp refuses others (502)
def test_a_header_name_with_a_space_before_its_colon_is_left_out_and_the_answer_goes_through(
    proxy_factory, recorder, name
):
    # aiohttp takes such a name; the server refused to send it: the client got an empty reply (its SDK retried,
    # each try billed), while the record said 200.
    message = {"id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": []}
    body = json.dumps({**message, "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}})
    answer = json_answer(b"200 OK", body.encode(), name + b": keep-alive\r\n")
    with raw_upstream({"odd-name": answer}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**ANTHROPIC, "x-raw": "odd-name"}
        response = httpx.post(
            proxy.url + "/v1/messages", content=json.dumps({**BODY, "stream": False}), headers=headers
        )
        [record] = recorder.wait_for_ends(1)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] == 5
    assert name.strip().lower().decode() not in response.headers
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 5)


@pytest.mark.parametrize("status", [b"204 No Content", b"205 Reset Content", b"304 Not Modified"])
def test_a_body_less_status_to_a_metered_call_is_no_answer(proxy_factory, recorder, status):
    # Before, no error: the SDKs raise on a 304 and hand back no message for a 204 or 205.
    bare = b"HTTP/1.1 " + status + b"\r\nconnection: close\r\n\r\n"
    with raw_upstream({"bare": bare}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**ANTHROPIC, "x-raw": "bare"}
        response = httpx.post(
            proxy.url + "/v1/messages", content=json.dumps({**BODY, "stream": False}), headers=headers
        )
        deleted = httpx.delete(proxy.url + "/v1/files/file_1", headers=headers)  # no metered answer belongs there
        hung_up = httpx.post(
            proxy.url + "/v1/realtime/calls/c_1/hangup", headers=headers
        )  # a path ccproxy does not name
        first, second, third = recorder.wait_for_ends(3)
    code = int(status[:3])
    assert response.status_code == deleted.status_code == hung_up.status_code == code
    assert (first.status_code, first.error_type) == (code, f"http_{code}")
    assert (second.status_code, second.error_type, third.error_type) == (code, None, None)


def test_a_stream_opened_by_a_get_reaches_the_client_as_it_comes(proxy_factory, recorder):
    # A GET has no body to ask for a stream (a background response resumed with ?stream=true, a session's
    # events): the answer must pass as it arrives. The provider sends its second event only once the client
    # has the first, so an answer held whole would never end.
    first = b'event: response.created\ndata: {"type": "response.created", "response": {"id": "resp_1"}}\n\n'
    rest = b'event: response.completed\ndata: {"type": "response.completed", "response": {"id": "resp_1"}}\n\n'
    client_has_the_first = threading.Event()

    def answer(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + first)
        client_has_the_first.wait(10)
        connection.sendall(rest)
        connection.close()

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=lambda: answer(listener.accept()[0]), daemon=True).start()
        proxy = proxy_factory(upstream_url=f"http://127.0.0.1:{listener.getsockname()[1]}", plugins=[recorder])
        url = proxy.url + "/v1/responses/resp_1?stream=true"
        with httpx.stream("GET", url, headers={"authorization": "Bearer sk-test"}, timeout=5) as response:
            chunks = response.iter_bytes()
            received = next(chunks)
            client_has_the_first.set()
            received += b"".join(chunks)
    assert received == first + rest
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.streaming) == (200, True)
