"""Files, moderations and stored objects through ccproxy: sizes kept, reads recorded as free, first tokens seen.

The answers are written from OpenAI's API reference: a file's content is its bytes with their
``Content-Length``; a moderation names the model that judged it; a legacy completions stream
(``POST /v1/completions`` with ``stream``) carries its text in ``choices[].text``; a missing file is a
404 error object. Reading, storing or deleting an object is not billed, and the record says so.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

FILE = bytes(range(256)) * 1024  # 256 KiB: passed on as it arrives, not held whole
OCTETS = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %d\r\n\r\n" % len(FILE)
MODERATION = {
    "id": "modr-1",
    "model": "omni-moderation-2024-09-26",
    "results": [{"flagged": False, "categories": {}, "category_scores": {}}],
}
NOT_FOUND = {"error": {"message": "No such File object: file-x", "type": "invalid_request_error", "code": None}}
INSTRUCT = "gpt-3.5-turbo-instruct"


def completion_chunk(text: str, finish_reason: str | None = None) -> bytes:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
    chunk = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": INSTRUCT, "choices": [choice]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


USAGE_CHUNK = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": INSTRUCT,
    "choices": [],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"

ANSWERS: dict[str, bytes | list[bytes | float | str]] = {
    "file": OCTETS + FILE,
    "file-cut": [OCTETS + FILE[: len(FILE) // 2]],  # then the connection closes
    "moderation": json_answer(b"200 OK", json.dumps(MODERATION).encode()),
    "not-found": json_answer(b"404 Not Found", json.dumps(NOT_FOUND).encode()),
    "file-object": json_answer(b"200 OK", b'{"id": "file-1", "object": "file", "bytes": 10, "purpose": "batch"}'),
    # A first chunk with no text, then the text 0.4 s later: the first token is the text.
    "completion-stream": [
        STREAM_HEAD + completion_chunk(""),
        0.4,
        completion_chunk("Hello")
        + completion_chunk(" there", "stop")
        + b"data: "
        + json.dumps(USAGE_CHUNK).encode()
        + b"\n\ndata: [DONE]\n\n",
    ],
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
OPENAI = {"authorization": "Bearer sk-test"}


def get(proxy, path: str, kind: str) -> httpx.Response:
    return httpx.get(proxy.url + path, headers={**OPENAI, "x-raw": kind}, timeout=10)


def test_a_file_download_keeps_its_length_and_costs_nothing(proxy, recorder):
    response = get(proxy, "/v1/files/file-1/content", "file")
    assert response.content == FILE
    assert response.headers["content-length"] == str(len(FILE)) and "transfer-encoding" not in response.headers
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.response_bytes) == (200, None, len(FILE))
    assert (record.tokens_input, record.cost_usd, record.priced) == (None, 0, True)


def test_a_download_cut_by_the_provider_is_cut_for_the_client_and_recorded_as_such(proxy, recorder):
    with pytest.raises(httpx.RemoteProtocolError):  # fewer bytes than the length said: the client can tell
        get(proxy, "/v1/files/file-1/content", "file-cut")
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_stream_aborted" and record.response_bytes == len(FILE) // 2
    assert (record.cost_usd, record.priced) == (None, False)


def test_a_stored_object_read_is_free_and_a_failed_one_is_no_price(proxy, recorder):
    assert get(proxy, "/v1/files/file-1", "file-object").status_code == 200
    assert get(proxy, "/v1/files/file-x", "not-found").status_code == 404
    found, missing = recorder.wait_for_ends(2)
    assert (found.error_type, found.cost_usd, found.priced) == (None, 0, True)
    assert (missing.error_type, missing.cost_usd, missing.priced) == ("invalid_request_error", None, False)


def test_a_moderation_records_the_model_that_judged_it(proxy, recorder):
    body = {"model": "omni-moderation-latest", "input": "hello"}
    response = httpx.post(proxy.url + "/v1/moderations", json=body, headers={**OPENAI, "x-raw": "moderation"})
    assert response.json() == MODERATION
    [record] = recorder.wait_for_ends(1)
    assert (record.model, record.response_model) == ("omni-moderation-latest", "omni-moderation-2024-09-26")
    assert (record.cost_usd, record.priced) == (0, True)


def test_a_legacy_completions_stream_has_its_first_token_at_its_first_text(proxy, recorder):
    body = {"model": INSTRUCT, "prompt": "Say hello", "stream": True, "stream_options": {"include_usage": True}}
    headers = {**OPENAI, "x-raw": "completion-stream"}
    response = httpx.post(proxy.url + "/v1/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.finish_reason) == (200, None, "stop")
    assert record.ttft_ms is not None and record.ttft_ms >= 400
    # $1.50 and $2.00 per million input and output tokens: 10 * 1.5e-6 + 5 * 2e-6.
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (10, 5, Decimal("0.000025"))
