"""Malformed /logs parameters are a 422 naming the parameter, never a 500, against a real server."""

from __future__ import annotations

import base64

import httpx
import pytest

BIG = "1" + "0" * 5000
DEEP_CURSOR = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
CASES = [
    ("/logs/query", {"status_code": "\u00b2"}, "status_code"),  # "²".isdigit() is True, int("²") fails
    ("/logs/query", {"status_code": "\u0663\u0660\u0660"}, "status_code"),  # Arabic-Indic 300
    ("/logs/query", {"status_code": BIG}, "status_code"),
    ("/logs/query", {"limit": BIG}, "limit"),
    ("/logs/query", {"start_time": BIG}, "start_time"),
    ("/logs/query", {"start_time": "nan"}, "start_time"),
    ("/logs/query", {"end_time": "-" + BIG}, "end_time"),
    ("/logs/query", {"cursor": BIG}, "cursor"),
    ("/logs/query", {"cursor": DEEP_CURSOR}, "cursor"),  # nested deeper than Python's JSON parser goes
    ("/logs/entries", {"page": BIG}, "page"),
    ("/logs/analytics", {"hours": BIG}, "hours"),
    ("/logs/analytics", {"hours": "nan"}, "hours"),
    # A window reaching back before year 1: the start cannot be computed.
    ("/logs/analytics", {"end_time": "0001-01-01"}, "hours"),
    ("/logs/analytics", {"end_time": "0001-01-01T00:00:00Z", "hours": "1"}, "hours"),
    ("/logs/analytics", {"end_time": "0001-01-02T00:00:00Z", "hours": "87840"}, "hours"),
    ("/logs/query", {"start_time": "2025-02-01T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}, "start_time"),
    ("/logs/entries", {"start_time": "2025-02-01T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}, "start_time"),
    # Digits float() takes but the API does not: full-width, Arabic-Indic, an underscore between digits.
    ("/logs/query", {"end_time": "\uff11"}, "end_time"),
    ("/logs/query", {"start_time": "\u0661\u0662\u0663"}, "start_time"),
    ("/logs/query", {"end_time": "1_000"}, "end_time"),
    ("/logs/analytics", {"hours": "1e-300"}, "hours"),  # a window shorter than a microsecond
    ("/logs/analytics", {"hours": "NaN"}, "hours"),
    # A cursor whose request id is a lone surrogate: valid JSON, no text DuckDB or ClickHouse take.
    ("/logs/query", {"cursor": base64.urlsafe_b64encode(b'[1738324800123456,"\\ud800"]').decode()}, "cursor"),
    ("/logs/stream", {"last_event_id": "\u00b2"}, "last_event_id"),
    ("/logs/stream", {"last_event_id": BIG}, "last_event_id"),
    # A misspelt filter would otherwise answer with every record, as if filtered.
    ("/logs/query", {"modle": "gpt-5"}, "modle"),
    ("/logs/analytics", {"group-by": "model"}, "group-by"),
    ("/logs/status", {"tag.team": "a"}, "tag.team"),  # tag filters are for the routes that filter
    ("/logs/stream", {"model": "x", "status": "5xx"}, "status"),
    ("/logs/status", {"verbose": "1"}, "verbose"),
    # Given twice, only the last would count, in an answer that reads as filtered by both.
    ("/logs/query", {"model": ["gpt-4o", "claude-haiku-4-5"]}, "model"),
    ("/logs/analytics", {"project": ["webshop", "backend"]}, "project"),
    ("/logs/entries", {"page_size": ["5", "7"]}, "page_size"),
    ("/logs/query", {"streaming": "maybe"}, "streaming"),
]


@pytest.fixture(scope="module")
def server(ccproxy_upstream, tmp_path_factory):
    from ccproxy_core.testing import make_settings, running_proxy

    settings = make_settings(
        ccproxy_upstream.url,
        tmp_path=tmp_path_factory.mktemp("params"),
        observability={"logs_endpoints_enabled": True, "logs_collection_enabled": True},
    )
    with running_proxy(settings) as proxy:
        yield proxy


@pytest.mark.parametrize(("path", "params", "named"), CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_a_malformed_parameter_is_a_422_naming_it(server, path, params, named):
    response = httpx.get(server.url + path, params=params, timeout=10)
    assert response.status_code == 422, response.text[:300]
    assert [error["loc"][-1] for error in response.json()["detail"]] == [named]


def test_a_window_of_nan_hours_is_told_it_is_no_number(server):
    response = httpx.get(server.url + "/logs/analytics", params={"hours": "nan"}, timeout=10)
    assert "finite number" in response.json()["detail"][0]["msg"]  # before: "less than or equal to 87840"


def test_a_bad_last_event_id_header_is_named(server):
    response = httpx.get(server.url + "/logs/stream", headers={"last-event-id": "\u00b2".encode()}, timeout=10)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


def test_every_parameter_a_route_declares_is_taken(server):
    query = {"model": "m", "service_type": "anthropic", "status_code": "2xx", "streaming": "true", "limit": "5"}
    query |= {"session_id": "s", "project": "p", "end_user": "u", "api_key_id": "k", "client_name": "c"}
    tags = {"tag.team": ["a", "b"], "tag.env": "prod"}
    response = httpx.get(server.url + "/logs/query", params=query | tags, timeout=10)
    assert response.status_code == 200, response.text[:300]  # tag filters may repeat: each must hold
    # Every one shown as applied (before, only a repeated name's last value was).
    assert response.json()["filters"]["tags"] == {"team": ["a", "b"], "env": "prod"}
    response = httpx.get(server.url + "/logs/analytics", params={"hours": "2", "group_by": "model", "top": "3"})
    assert response.status_code == 200, response.text[:300]
    message = httpx.get(server.url + "/logs/query", params={"modle": "m"}, timeout=10).json()["detail"][0]["msg"]
    assert "not a parameter of /logs/query" in message and "model" in message


def test_an_empty_streaming_filter_is_no_filter_as_a_forms_blank_field(server):
    for path in ("/logs/query", "/logs/entries", "/logs/analytics"):
        response = httpx.get(server.url + path, params={"streaming": "", "model": " "}, timeout=10)
        assert response.status_code == 200, (path, response.text[:300])
    echoed = httpx.get(server.url + "/logs/query", params={"streaming": " TRUE "}, timeout=10).json()["filters"]
    assert echoed["streaming"] is True
