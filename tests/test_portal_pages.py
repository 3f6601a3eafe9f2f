"""Answers that are not the provider's own shape: a gateway's pages and bare errors.

A web page with status 200 (a captive portal, a gateway's sign-in) is no answer of a provider's API:
Anthropic and OpenAI answer their free routes (models, moderations, a batch's status, file lists)
with JSON and batch results with JSON lines; only a file's content may be anything, even a page.
An error status without the provider's error object still gets a message in its record.
"""

from __future__ import annotations

import httpx
import pytest

from .raw_upstream import upstream_and_proxy_fixtures

PORTAL = b"<html><body>Sign in to the network</body></html>"
PAGE = b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: %d\r\n\r\n%s" % (
    len(PORTAL),
    PORTAL,
)
GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
STRING_ERROR = b'{"error": "Internal error occurred (sk-proj-abcdefghijklmnopqrstuvwxyz012345)"}'
ERROR_ANSWERS = {
    "gateway": b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n%s"
    % (len(GATEWAY_PAGE), GATEWAY_PAGE),
    "string": b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(STRING_ERROR), STRING_ERROR),
}
ANSWERS = {"portal": PAGE, **ERROR_ANSWERS}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
OPENAI = {"authorization": "Bearer sk-test", "x-raw": "portal"}
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "portal"}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/v1/models", OPENAI),
        ("POST", "/v1/moderations", OPENAI),
        ("GET", "/v1/batches/batch_1", OPENAI),
        ("GET", "/v1/files", OPENAI),
        ("GET", "/v1/messages/batches/msgbatch_1/results", ANTHROPIC),
        ("GET", "/v1/some/new/route", OPENAI),
    ],
)
def test_a_page_where_the_provider_answers_json_is_recorded_as_no_answer(proxy, recorder, method, path, headers):
    body = b'{"input": "hi"}' if method == "POST" else None
    response = httpx.request(method, proxy.url + path, headers=headers, content=body, timeout=10)
    assert (response.status_code, response.content) == (200, PORTAL)  # the client gets it as it came
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_json")


def test_a_file_may_be_a_page(proxy, recorder):
    response = httpx.get(proxy.url + "/v1/files/file-1/content", headers=OPENAI, timeout=10)
    assert (response.status_code, response.content) == (200, PORTAL)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("gateway", 502, "the provider answered HTTP 502 without an error message to read"),
        ("string", 500, "Internal error occurred (sk-***)"),
    ],
)
def test_an_error_without_the_providers_error_object_still_says_something(proxy, recorder, kind, status, message):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer sk-test", "x-raw": kind}
    response = httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == status
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.error_message) == (f"http_{status}", message)
