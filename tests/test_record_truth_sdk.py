"""What the real SDKs see through ccproxy, and what is recorded: errors, ids, pools, encodings, usage."""

from __future__ import annotations

import gzip
import json
import threading

import anthropic
import httpx
import openai
import pytest
import zstandard

from ccproxy_core.errors import SettingsError
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.testing import wait_until

MESSAGE = [{"role": "user", "content": "abcd" * 10}]
METRICS_ON = {"metrics_endpoint_enabled": True}


def claude(proxy_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-test", max_retries=0)


def gpt(proxy_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="sk-test", max_retries=0)


def test_an_error_event_inside_a_200_stream_is_an_error_everywhere(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability=METRICS_ON)
    with pytest.raises(anthropic.APIStatusError) as raised:
        with claude(proxy.url).messages.stream(
            model="claude-haiku-4-5", max_tokens=50, messages=MESSAGE, extra_headers={"x-mock-stream-error-after": "2"}
        ) as stream:
            stream.get_final_message()
    assert "Overloaded" in str(raised.value)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (200, 200, "overloaded_error")
    metrics = httpx.get(proxy.url + "/metrics").text
    assert (
        'ccproxy_errors_total{endpoint="/v1/messages",error_type="overloaded_error",model="claude-haiku-4-5",service_type="anthropic"} 1.0'
        in metrics
    )


def test_openai_error_chunk_raises_in_the_sdk_and_is_recorded(proxy, recorder):
    with pytest.raises(openai.APIError):
        list(
            gpt(proxy.url).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGE, stream=True, extra_headers={"x-mock-stream-error-after": "1"}
            )
        )
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "server_error")


def test_the_providers_request_ids_reach_the_sdks_and_ccproxys_own_is_separate(proxy, recorder):
    completion = gpt(proxy.url).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGE)
    message = claude(proxy.url).messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGE
    )
    assert completion.parse()._request_id == completion.headers["x-request-id"]
    assert completion.headers["x-request-id"].startswith("req_")  # the mock's (OpenAI's) id, not ccproxy's
    assert message.parse()._request_id == message.headers["request-id"]
    records = {record.service_type: record for record in recorder.wait_for_ends(2)}
    assert records["openai"].upstream_request_id == completion.headers["x-request-id"]
    assert records["anthropic"].upstream_request_id == message.headers["request-id"]
    assert records["openai"].request_id == completion.headers["x-ccproxy-request-id"]


def test_two_requests_with_the_same_client_id_are_two_records_with_two_ids(proxy, recorder):
    for _ in range(2):
        claude(proxy.url).messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=MESSAGE, extra_headers={"x-request-id": "same-id"}
        )
    first, second = recorder.wait_for_ends(2)
    assert first.request_id != second.request_id
    assert first.client_request_id == second.client_request_id == "same-id"


def test_header_values_are_stored_as_the_client_sent_them(proxy, recorder):
    agent, client_id = "outil-de-test/1.0 (café, 東京)", "requête-1"
    headers = [
        (b"x-api-key", b"sk-ant-test"),
        (b"anthropic-version", b"2023-06-01"),
        (b"content-type", b"application/json"),
        (b"user-agent", agent.encode()),
        (b"x-request-id", client_id.encode()),
    ]
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGE}).encode()
    with httpx.Client() as client:
        assert client.post(proxy.url + "/v1/messages", content=body, headers=headers).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.user_agent, record.client_request_id) == (agent, client_id)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])  # what the SDKs' HTTP client decodes
def test_compressed_answers_pass_unchanged_and_are_read_on_the_side(proxy, recorder, encoding):
    answer = claude(proxy.url).messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGE, extra_headers={"x-mock-content-encoding": encoding}
    )
    assert answer.headers["content-encoding"] == encoding
    usage = answer.parse().usage
    with claude(proxy.url).messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGE, extra_headers={"x-mock-content-encoding": encoding}
    ) as stream:
        streamed = stream.get_final_message().usage
    json_record, stream_record = recorder.wait_for_ends(2)
    assert (
        (json_record.tokens_input, json_record.tokens_output) == (usage.input_tokens, usage.output_tokens) == (10, 60)
    )
    assert (stream_record.tokens_output, stream_record.error_type) == (streamed.output_tokens, None)
    assert json_record.priced and stream_record.priced and stream_record.ttft_ms is not None


def test_zstd_answers_as_codex_asks_for_them(proxy, recorder):
    headers = {"authorization": "Bearer k", "accept-encoding": "zstd,gzip", "x-mock-content-encoding": "zstd"}
    for stream in (False, True):
        body = {
            "model": "gpt-4o-mini",
            "messages": MESSAGE,
            "stream": stream,
            "stream_options": {"include_usage": True},
        }
        if not stream:
            del body["stream_options"]
        with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=body, headers=headers) as response:
            raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "zstd"
        text = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        assert b'"completion_tokens":60' in text
    json_record, stream_record = recorder.wait_for_ends(2)
    assert json_record.tokens_output == stream_record.tokens_output == 60
    assert stream_record.error_type is None and stream_record.ttft_ms is not None


def test_gzip_bytes_reach_the_client_byte_for_byte(proxy):
    headers = {
        "x-api-key": "k",
        "anthropic-version": "2023-06-01",
        "x-mock-content-encoding": "gzip",
        "accept-encoding": "gzip",
    }
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGE}
    with httpx.stream("POST", proxy.url + "/v1/messages", json=body, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    assert raw[:2] == b"\x1f\x8b" and json.loads(gzip.decompress(raw))["usage"]["output_tokens"] == 60
    assert int(response.headers["content-length"]) == len(raw)


def test_a_decompression_bomb_is_passed_on_but_read_only_up_to_the_limit(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream={"max_decoded_bytes": 4096})
    message = claude(proxy.url).messages.create(
        model="claude-haiku-4-5",
        max_tokens=50,
        messages=MESSAGE,
        extra_headers={"x-mock-content-encoding": "gzip", "x-mock-delta-count": "5000"},
    )
    assert message.usage.output_tokens == 15000  # the client got the whole answer
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output, record.cost_usd, record.priced) == (
        200,
        None,
        None,
        None,
        False,
    )


def test_openai_stream_without_usage_is_unpriced_not_free(proxy, recorder):
    chunks = list(gpt(proxy.url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGE, stream=True))
    assert chunks and all(chunk.usage is None for chunk in chunks)
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.cost_usd, record.priced, record.error_type) == (None, None, False, None)


def test_include_usage_opt_in_asks_the_stream_for_usage(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_stream_include_usage": True})
    upstream.clear_requests()
    chunks = list(gpt(proxy.url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGE, stream=True))
    assert chunks[-1].usage.completion_tokens == 60  # the one extra chunk the client now gets
    [sent] = upstream.requests()
    assert json.loads(sent.body)["stream_options"] == {"include_usage": True}
    [record] = recorder.wait_for_ends(1)
    # gpt-4o-mini: 10 input tokens at $0.15 and 60 output tokens at $0.60 per million = $0.0000375
    assert record.priced and record.cost_usd * 10**7 == 375
    declined = list(
        gpt(proxy.url).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGE, stream=True, stream_options={"include_usage": False}
        )
    )
    assert all(chunk.usage is None for chunk in declined)  # the client's own choice is kept


def test_one_providers_full_pool_never_delays_the_other(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], upstream={"max_connections": 2, "pool_timeout_seconds": 0.5})
    hanging = [
        threading.Thread(
            target=lambda: claude(proxy.url).messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=MESSAGE, extra_headers={"x-mock-latency-ms": "4000"}
            )
        )
        for _ in range(2)
    ]
    for thread in hanging:
        thread.start()
    wait_until(lambda: upstream.stats()["answers_in_progress"] >= 2)
    with pytest.raises(anthropic.APIStatusError) as refused:
        claude(proxy.url).messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGE)
    assert refused.value.status_code == 504 and "UPSTREAM__POOL_TIMEOUT_SECONDS" in str(refused.value)
    assert gpt(proxy.url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGE).usage.completion_tokens == 60
    for thread in hanging:
        thread.join()
    errors = [record.error_type for record in recorder.wait_for_ends(4)]
    assert sorted(errors, key=str) == sorted([None, None, None, "upstream_pool_timeout"], key=str)


def test_base_urls_in_the_sdks_own_forms_reach_the_same_paths(proxy_factory, recorder, upstream):
    proxy = proxy_factory(
        plugins=[recorder],
        upstream={"openai_base_url": upstream.url + "/v1/", "anthropic_base_url": upstream.url + "/v1"},
    )
    upstream.clear_requests()
    gpt(proxy.url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGE)
    claude(proxy.url).messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGE)
    assert [request.path for request in upstream.requests()] == ["/v1/chat/completions", "/v1/messages"]


@pytest.mark.parametrize(
    "value",
    [
        "api.openai.com",
        "ftp://api.openai.com",
        "https://api.openai.com/v1?key=x",
        "https://",
        "http://127.0.0.1:99999",  # no port: every request would fail, so start-up stops instead
        "http://127.0.0.1:abc",
        "http://127.0.0.1:0",
        "http://[::1]9100",
        # Hosts no resolver can look up: each request was then answered 400 invalid_request, the client blamed.
        "https://api..anthropic.com",
        "https://.example",
        "https://" + "a" * 64 + ".example",
        "https://exa mple.com",
    ],
)
def test_a_base_url_ccproxy_cannot_use_is_refused_in_one_line(monkeypatch, value):
    monkeypatch.setenv("UPSTREAM__OPENAI_BASE_URL", value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith("invalid setting UPSTREAM__OPENAI_BASE_URL=") and "\n" not in str(
        refused.value
    )
