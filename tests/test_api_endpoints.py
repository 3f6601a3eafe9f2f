"""Embeddings, legacy completions, moderations, images, audio, any other path, HEAD and CORS through a real ccproxy."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage

from .raw_upstream import json_answer, raw_upstream

OPENAI_AUTH = {"authorization": "Bearer sk-test"}
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def client(proxy):
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)


def price(model, record):
    usage = Usage(record.tokens_input, record.tokens_output, record.cache_read_tokens, record.cache_write_tokens)
    return PriceBook().compute("openai", model, usage).total


@pytest.mark.parametrize("encoding", [{"encoding_format": "float"}, {}])  # the SDK's default asks for base64
def test_embeddings_are_priced_by_input_tokens(proxy, recorder, encoding):
    answer = client(proxy).embeddings.create(
        model="text-embedding-3-small", input=["first text here", "second"], **encoding
    )
    assert [len(item.embedding) for item in answer.data] == [8, 8]
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.model, record.status_code) == ("/v1/embeddings", "text-embedding-3-small", 200)
    assert record.tokens_input == answer.usage.prompt_tokens > 0 and record.tokens_output is None
    assert record.cost_usd == price("text-embedding-3-small", record) and record.cost_usd > 0


def test_legacy_completions_are_metered(proxy, recorder):
    answer = client(proxy).completions.create(model="gpt-3.5-turbo-instruct", prompt="Say something " * 10)
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "/v1/completions" and answer.choices[0].text
    assert (record.tokens_input, record.tokens_output) == (answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert record.cost_usd == price("gpt-3.5-turbo-instruct", record) > 0


def test_moderations_are_recorded_as_free(proxy, recorder):
    answer = client(proxy).moderations.create(model="omni-moderation-latest", input=["hello", "there"])
    assert [result.flagged for result in answer.results] == [False, False]
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "/v1/moderations" and record.priced is True and record.cost_usd == 0


def test_image_generation_usage_is_priced(proxy, recorder):
    answer = client(proxy).images.generate(model="gpt-image-1", prompt="a lighthouse at dusk, painted")
    assert answer.data[0].b64_json
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "/v1/images/generations"
    assert (record.tokens_input, record.tokens_output) == (answer.usage.input_tokens, answer.usage.output_tokens)
    assert record.cost_usd is not None and record.cost_usd > 0


def test_transcription_multipart_reaches_the_provider_byte_for_byte(proxy, upstream, recorder):
    upstream.clear_requests()
    audio = bytes(range(256)) * 20
    answer = client(proxy).audio.transcriptions.create(model="gpt-4o-transcribe", file=("clip.wav", audio, "audio/wav"))
    assert answer.text
    [received] = upstream.requests()
    assert audio in received.body and received.header("content-type").startswith("multipart/form-data; boundary=")
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "/v1/audio/transcriptions" and record.tokens_input == len(audio) // 100
    assert record.tokens_output == answer.usage.output_tokens


@pytest.mark.parametrize("query", [{"model": "gpt-4o-transcribe"}, {"stream": "true"}])
def test_a_form_whose_url_query_also_names_its_model_is_recorded_unpriced(proxy, recorder, query):
    # Go's Request.FormValue reads the query's model first: the record priced the body's, half the query's.
    audio = bytes(range(256)) * 20
    client(proxy).audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("clip.wav", audio, "audio/wav"), extra_query=query
    )
    [record] = recorder.wait_for_ends(1)
    assert (record.model, record.cost_usd, record.priced) == (None, None, False)  # before: gpt-4o-mini-transcribe


@pytest.mark.parametrize(
    "path, headers, endpoint, service_type",
    [
        ("/v1/vector_stores/vs_123/files", OPENAI_AUTH, "/v1/vector_stores/*", "openai"),
        ("/api/v1/fine_tuning/jobs", OPENAI_AUTH, "/v1/fine_tuning/*", "openai"),
        ("/v1/skills", ANTHROPIC_HEADERS, "/v1/skills/*", "anthropic"),
        ("/v1/something-new/abc/def", OPENAI_AUTH, "/v1/*", "openai"),
    ],
)
def test_any_other_api_path_is_forwarded_to_the_provider_and_recorded(
    proxy, upstream, recorder, path, headers, endpoint, service_type
):
    upstream.clear_requests()
    response = httpx.get(proxy.url + path + "?limit=2", headers=headers)
    # The mock has no such route: its own 404 (not ccproxy's) comes back, shaped like the provider's.
    assert response.status_code == 404 and "mock upstream has no route" in response.text
    [received] = upstream.requests()
    assert (received.path, received.query) == (path.removeprefix("/api"), "limit=2")
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.service_type, record.upstream_status) == (endpoint, service_type, 404)


def test_head_is_answered_as_get_without_a_body(proxy, recorder):
    get = httpx.get(proxy.url + "/v1/models", headers=OPENAI_AUTH)
    head = httpx.head(proxy.url + "/v1/models", headers=OPENAI_AUTH)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and int(head.headers["content-length"]) == len(get.content)
    records = recorder.wait_for_ends(2)
    assert [(r.method, r.endpoint, r.status_code, r.response_bytes) for r in records] == [
        ("GET", "/v1/models", 200, len(get.content)),
        ("HEAD", "/v1/models", 200, 0),  # the record counts what was sent: no body
    ]


PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


def test_cors_preflights_are_refused_by_default_and_never_forwarded(proxy, upstream, recorder):
    upstream.clear_requests()
    response = httpx.options(proxy.url + "/v1/chat/completions", headers=PREFLIGHT)
    assert response.status_code == 403 and "SECURITY__ALLOWED_ORIGINS" in response.json()["error"]["message"]
    assert "access-control-allow-origin" not in response.headers
    assert upstream.requests() == [] and recorder.starts == []


def test_cors_allowed_origin_gets_preflight_and_answer_headers(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], security={"allowed_origins": ["https://app.example"]})
    response = httpx.options(proxy.url + "/v1/chat/completions", headers=PREFLIGHT)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    other = httpx.options(proxy.url + "/v1/chat/completions", headers={**PREFLIGHT, "origin": "https://evil.example"})
    assert other.status_code == 403
    assert recorder.starts == []
    answer = httpx.post(
        proxy.url + "/v1/embeddings",
        headers={**OPENAI_AUTH, "origin": "https://app.example"},
        json={"model": "text-embedding-3-small", "input": "hi"},
    )
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://app.example"
    assert len(recorder.wait_for_ends(1)) == 1


def test_openai_calls_that_are_not_billed_cost_nothing(proxy_factory, recorder):
    # The vector store object as OpenAI's reference shows it: no usage, as no such call is billed.
    store = b'{"id": "vs_1", "object": "vector_store", "created_at": 1, "name": "docs", "usage_bytes": 0}'
    with raw_upstream({"": json_answer(b"200 OK", store)}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url)
        openai_client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)
        assert openai_client.vector_stores.create(name="docs").id == "vs_1"
        [record] = recorder.wait_for_ends(1)
    # Before: read as a metered call without usage, of unknown cost, in every unpriced count.
    assert (record.endpoint, record.status_code, record.cost_usd, record.priced) == (
        "/v1/vector_stores/*",
        200,
        0,
        True,
    )


def test_anthropic_admin_calls_are_management_calls(proxy_factory, recorder):
    # An invite as Anthropic's Admin API answers one: no usage, as no admin call is billed.
    invite = (
        b'{"id": "invite_1", "type": "invite", "email": "a@example.com", "role": "user", "status": "pending",'
        b' "invited_at": "2026-12-01T00:00:00Z", "expires_at": "2026-12-22T00:00:00Z", "rbac_group_ids": []}'
    )
    with raw_upstream({"": json_answer(b"200 OK", invite)}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url)
        client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-admin-test", max_retries=0)
        assert client.organization.invites.create(email="a@example.com", role="user").id == "invite_1"
        [record] = recorder.wait_for_ends(1)
    # Before: recorded under /v1/* as a metered call without usage, of unknown cost.
    assert (record.endpoint, record.service_type, record.status_code, record.cost_usd, record.priced) == (
        "/v1/organizations/*",
        "anthropic",
        200,
        0,
        True,
    )
