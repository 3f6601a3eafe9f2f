"""Route matching, the bounded endpoint of unknown API paths, and the batch results_url rewrite."""

from __future__ import annotations

import pytest

from ccproxy_core.accounting.batch_results import results_url_through_proxy
from ccproxy_core.forwarding.route_table import RouteTable, api_path, fallback_route
from ccproxy_core.providers import service_type_for


@pytest.mark.parametrize(
    "method, path, template, reader",
    [
        ("POST", "/v1/responses", "/v1/responses", "responses"),
        ("GET", "/v1/responses/resp_123", "/v1/responses/{response_id}", "stored_response"),
        ("HEAD", "/v1/responses/resp_123", "/v1/responses/{response_id}", "stored_response"),
        ("GET", "/v1/responses/resp_123/input_items", "/v1/responses/{response_id}/input_items", "none"),
        ("POST", "/v1/responses/input_tokens", "/v1/responses/input_tokens", "free"),
        ("GET", "/v1/messages/batches/msgbatch_1/results", "/v1/messages/batches/{batch_id}/results", "batch_results"),
        ("GET", "/v1/files/file-1/content", "/v1/files/{file_id}/content", "batch_results"),
        ("POST", "/v1/moderations", "/v1/moderations", "free"),
        ("POST", "/v1/embeddings", "/v1/embeddings", "usage"),
        # Empty segments, as a server merging slashes (nginx's default) reads them.
        ("GET", "/v1/messages/batches//msgbatch_1/results", "/v1/messages/batches/{batch_id}/results", "batch_results"),
        ("GET", "/v1//files/file-1/content/", "/v1/files/{file_id}/content", "batch_results"),
        ("POST", "/v1//messages", "/v1/messages", "usage"),
    ],
)
def test_named_routes_are_found_with_their_reader(method, path, template, reader):
    route = RouteTable().match(method, path)
    assert (route.template, route.reader) == (template, reader)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/responses/"),  # an empty id is not an id
        ("PUT", "/v1/responses/resp_1"),  # no such method
        ("GET", "/v1/responses/a/b/c"),
    ],
)
def test_near_misses_are_not_named_routes(method, path):
    assert RouteTable().match(method, path) is None


def test_unknown_paths_get_a_bounded_endpoint_whatever_they_are():
    endpoints = {fallback_route("GET", f"/v1/made-up-{n}/x").template for n in range(1000)}
    assert endpoints == {"/v1/*"}
    assert fallback_route("POST", "/v1/vector_stores/vs_1/files").template == "/v1/vector_stores/*"
    assert fallback_route("POST", "/v1/threads/t/runs").reader == "usage"
    assert fallback_route("GET", "/v1/threads/t/runs").reader == "none"
    # OpenAI bills none of these calls: they are management calls, not calls of unknown cost.
    for path in ("/v1/vector_stores", "/v1/vector_stores/vs_1/search", "/v1/conversations/c/items"):
        assert fallback_route("POST", path).reader == "none"
    assert fallback_route("POST", "/v1/realtime/client_secrets").reader == "none"
    # Nor does Anthropic bill its Admin and Compliance APIs.
    for path in ("/v1/organizations/invites", "/v1/compliance/review/cases/c_1/respond"):
        assert fallback_route("POST", path).reader == "none"
    assert fallback_route("POST", "/v1/organizations/workspaces").template == "/v1/organizations/*"
    assert fallback_route("POST", "/v1/realtime/calls").reader == "usage"
    assert fallback_route("POST", "/v1/vector_stores_new").reader == "usage"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/v1/messages", "/v1/messages"),
        ("/api/v1/messages", "/v1/messages"),
        ("/v1", None),
        ("/api/v2/x", None),
        ("/health", None),
        ("/", None),
    ],
)
def test_api_path(path, expected):
    assert api_path(path) == expected


def test_results_url_is_pointed_at_ccproxy_and_nothing_else_changes():
    body = (
        b'{"id":"msgbatch_1","results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_1/results",'
        b'"note":"https://api.anthropic.com/v1/other"}'
    )
    rewritten = results_url_through_proxy(body, "https://api.anthropic.com", "http://127.0.0.1:8000/api")
    assert rewritten == body.replace(
        b'"results_url":"https://api.anthropic.com/', b'"results_url":"http://127.0.0.1:8000/api/'
    )
    assert (
        results_url_through_proxy(b'{"results_url":null}', "https://api.anthropic.com", "http://x")
        == b'{"results_url":null}'
    )


@pytest.mark.parametrize(
    ("method", "path", "provider"),
    [
        ("GET", "/v1/messages", "anthropic"),
        ("OPTIONS", "/v1/messages", "anthropic"),
        ("DELETE", "/v1/messages/msg_1", "anthropic"),
        ("GET", "/v1/messages/count_tokens", "anthropic"),
        ("GET", "/v1/complete", "anthropic"),
        ("GET", "/v1/chat/completions/chatcmpl-1/messages", "openai"),
        ("DELETE", "/v1/responses/resp_1/input_items", "openai"),
        ("GET", "/v1/files/file_1/other", "openai"),  # shared: decided by the headers (none here)
        ("GET", "/v1/made-up/x", "openai"),
    ],
)
def test_a_path_under_a_resource_only_one_provider_has_goes_to_that_provider_whatever_the_headers(
    method, path, provider
):
    # Before, a GET or DELETE under /v1/messages without Anthropic's headers went to OpenAI with the
    # operator's OpenAI key, and was recorded as an OpenAI call.
    route = RouteTable().match(method, path) or fallback_route(method, path)
    assert service_type_for(route, {}) == provider
    with_anthropic_headers = service_type_for(route, {"anthropic-version": "2023-06-01"})
    assert with_anthropic_headers == (route.service_type or "anthropic")
    assert route.service_type in (provider, None)
