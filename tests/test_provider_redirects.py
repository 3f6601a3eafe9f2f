"""A provider's redirect is passed to the client, never followed: following it would send the request,
and the operator's key, wherever ``Location`` points. Answers with no JSON where only JSON answers, and
headers of ccproxy's own names sent by the provider, are read for what they are."""

from __future__ import annotations

import json

import httpx
import pytest

from .raw_upstream import json_answer, raw_upstream

BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
OPERATOR_KEY = "sk-ant-operator-0123456789abcdef"


@pytest.fixture(scope="module")
def elsewhere():
    """Where the redirects point: it would answer like the provider, and bill like it."""
    with raw_upstream({kind: json_answer(b"200 OK", MESSAGE) for kind in ("301", "307", "308", "302")}) as server:
        yield server


@pytest.fixture
def provider(elsewhere):
    answers: dict[str, bytes | list[bytes | float]] = {
        status: json_answer(f"{status} Moved".encode(), b"", f"location: {elsewhere.url}/v1/messages\r\n".encode())
        for status in ("301", "307", "308", "302")
    }
    answers["empty"] = json_answer(b"200 OK", b"")
    answers["no-content"] = json_answer(b"204 No Content", b"").replace(b"content-length: 0\r\n", b"")
    for status in (b"204 No Content", b"205 Reset Content", b"304 Not Modified"):  # no type, no length, no body
        answers[status.decode()[:3]] = b"HTTP/1.1 " + status + b"\r\nconnection: close\r\n\r\n"
    answers["own-names"] = json_answer(
        b"200 OK", MESSAGE, b"x-ccproxy-request-id: forged\r\nx-ccproxy-overhead-ms: 0\r\nx-kept: yes\r\n"
    )
    with raw_upstream(answers) as server:
        yield server


@pytest.fixture
def proxy(proxy_factory, recorder, provider):
    return proxy_factory(upstream_url=provider.url, plugins=[recorder], upstream={"anthropic_api_key": OPERATOR_KEY})


def send(proxy, kind: str, path: str = "/v1/messages", method: str = "POST") -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01", "x-raw": kind}  # no key: ccproxy adds the operator's
    content = BODY if method == "POST" else None
    return httpx.request(method, proxy.url + path, content=content, headers=headers, timeout=10)


@pytest.mark.parametrize("status", ["301", "307", "308"])
def test_a_redirect_reaches_the_client_unfollowed_and_is_recorded_as_no_answer(proxy, recorder, elsewhere, status):
    response = send(proxy, status)
    assert response.status_code == int(status)
    assert response.headers["location"] == f"{elsewhere.url}/v1/messages"
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (
        int(status),
        int(status),
        f"http_{status}",
    )
    assert (record.tokens_input, record.cost_usd) == (None, None)


@pytest.mark.parametrize(("kind", "method", "status"), [("302", "GET", 302), ("no-content", "DELETE", 204)])
def test_a_redirect_or_no_content_on_a_route_that_answers_no_usage_is_no_error(proxy, recorder, kind, method, status):
    response = send(proxy, kind, "/v1/messages/batches/msgbatch_1", method)
    assert response.status_code == status
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (status, None)


def test_an_empty_answer_where_only_json_answers_is_not_the_providers_answer(proxy, recorder):
    response = send(proxy, "empty")
    assert (response.status_code, response.content) == (200, b"")  # passed on as it came
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced) == (200, "upstream_invalid_json", False)


def test_the_providers_headers_of_ccproxys_own_names_are_left_out(proxy, recorder):
    response = send(proxy, "own-names")
    [record] = recorder.wait_for_ends(1)
    assert response.headers.get_list("x-ccproxy-request-id") == [record.request_id]
    assert len(response.headers.get_list("x-ccproxy-overhead-ms")) == 1
    assert response.headers["x-kept"] == "yes"
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 5)


@pytest.mark.parametrize("status", ["204", "205", "304"])
def test_an_answer_without_content_on_a_metered_route_is_passed_on_and_is_no_answer(proxy, recorder, status):
    answer = send(proxy, status)
    assert answer.status_code == int(status) and answer.content == b""
    assert status == "205" or "content-length" not in answer.headers  # none sent, none added (RFC 9110 8.6)
    [record] = recorder.wait_for_ends(1)
    # Not invalid JSON (there is no body to be JSON), but no message either: the SDKs raise on a 304, and
    # hand back none for a 204 or 205.
    assert (record.status_code, record.error_type) == (int(status), f"http_{status}")
