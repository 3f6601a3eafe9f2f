"""An error in place of the answer, with status 200: the record is an error, as the answer is.

Anthropic's error body is ``{"type": "error", "error": {"type", "message"}}`` and OpenAI's
``{"error": {"message", "type", "param", "code"}}``. A gateway (or a provider under load) may send
one with status 200; the anthropic SDK then returns it as if it were a message, so the record is
the only place the failure shows.
"""

from __future__ import annotations

import json

import httpx
import pytest

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

ANTHROPIC_ERROR = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
OPENAI_ERROR = {"error": {"message": "The server is busy.", "type": "server_error", "param": None, "code": None}}
FINE_TUNING_JOB = {
    "object": "fine_tuning.job",
    "id": "ftjob-1",
    "status": "failed",
    "error": {"code": "invalid_training_file", "message": "The file has too few lines.", "param": "training_file"},
}
ANSWERS = {
    name: json_answer(b"200 OK", json.dumps(body).encode())
    for name, body in {"anthropic": ANTHROPIC_ERROR, "openai": OPENAI_ERROR, "job": FINE_TUNING_JOB}.items()
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "anthropic"}
OPENAI = {"authorization": "Bearer sk-test", "x-raw": "openai"}


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_error_body_with_status_200_is_the_records_error(proxy, recorder, stream):
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = httpx.post(proxy.url + "/v1/messages", json=body, headers=ANTHROPIC, timeout=10)
    assert (response.status_code, response.json()) == (200, ANTHROPIC_ERROR)  # passed on as it came
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.error_message) == (200, "overloaded_error", "Overloaded")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/resp_1"),
        ("POST", "/v1/moderations"),
        ("POST", "/v1/responses/input_tokens"),
        ("GET", "/v1/chat/completions/chatcmpl-1"),
    ],
)
def test_an_openai_error_body_with_status_200_is_the_records_error_on_every_route(proxy, recorder, method, path):
    body = {"model": "gpt-4o-mini", "input": "hi"} if method == "POST" else None
    response = httpx.request(method, proxy.url + path, json=body, headers=OPENAI, timeout=10)
    assert (response.status_code, response.json()) == (200, OPENAI_ERROR)
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.error_message) == ("server_error", "The server is busy.")


def test_an_anthropic_error_body_on_a_free_route_is_the_records_error(proxy, recorder):
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(proxy.url + "/v1/messages/count_tokens", json=body, headers=ANTHROPIC, timeout=10)
    assert (response.status_code, response.json()) == (200, ANTHROPIC_ERROR)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "overloaded_error")


def test_an_api_object_that_reports_its_own_error_is_no_failure_of_the_call(proxy, recorder):
    headers = {**OPENAI, "x-raw": "job"}
    response = httpx.post(proxy.url + "/v1/fine_tuning/jobs/ftjob-1/cancel", headers=headers, timeout=10)
    assert response.json() == FINE_TUNING_JOB
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
