"""The /logs API against a real server, the mock provider, the real SDKs and a real DuckDB file."""

from __future__ import annotations

from collections import Counter

import anthropic
import httpx
import openai
import pytest

from ccproxy_core.testing import make_settings, running_proxy, wait_until

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "log_flush_interval_seconds": 0.05}
MESSAGE = [{"role": "user", "content": "Tell me about the weather on the coast today, briefly."}]


def send_traffic(proxy_url: str) -> dict[str, object]:
    """Seven requests of every kind through the SDKs; returns what the SDKs saw, keyed by a label."""
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="test-key", max_retries=0)
    gpt = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="test-key", max_retries=0)
    seen: dict[str, object] = {}
    seen["claude"] = claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGE)
    cached = [
        {"role": "user", "content": [{"type": "text", "text": "x " * 400, "cache_control": {"type": "ephemeral"}}]}
    ]
    seen["claude-cached"] = claude.messages.create(model="claude-opus-4-1", max_tokens=64, messages=cached)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGE) as stream:
        seen["claude-stream"] = stream.get_final_message()
    seen["gpt"] = gpt.chat.completions.create(model="gpt-4o", messages=MESSAGE)
    chunks = list(
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGE, stream=True, stream_options={"include_usage": True}
        )
    )
    seen["gpt-stream"] = chunks[-1]
    seen["unpriced"] = gpt.chat.completions.create(model="mystery-model-x", messages=MESSAGE)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=MESSAGE, extra_headers={"x-mock-status": "429"}
        )
    return seen


def stored_rows(proxy_url: str, count: int, **params) -> list[dict]:
    """Poll /logs/query until ``count`` rows are stored (records arrive after the last byte)."""

    def rows():
        body = httpx.get(f"{proxy_url}/logs/query", params={"limit": 1000, **params}).json()
        return body["results"] if body["count"] == count else None

    return wait_until(rows)


def test_each_sdk_request_becomes_one_row_with_the_right_values(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability=STORAGE_ON)
    seen = send_traffic(proxy.url)
    records = recorder.wait_for_ends(7)
    rows = stored_rows(proxy.url, 7)
    assert {row["request_id"]: row for row in rows} == {record.request_id: record.to_dict() for record in records}

    by_model = {(row["model"], row["streaming"], row["status_code"]): row for row in rows}
    claude = by_model[("claude-haiku-4-5", False, 200)]
    assert claude["tokens_output"] == seen["claude"].usage.output_tokens
    assert claude["tokens_input"] == seen["claude"].usage.input_tokens
    assert (claude["service_type"], claude["endpoint"], claude["method"]) == ("anthropic", "/v1/messages", "POST")
    cached = by_model[("claude-opus-4-1", False, 200)]
    assert cached["cache_read_tokens"] == seen["claude-cached"].usage.cache_read_input_tokens > 0
    assert cached["cache_write_tokens"] == seen["claude-cached"].usage.cache_creation_input_tokens > 0
    assert cached["priced"] is True and cached["cost_usd"] == pytest.approx(
        cached["cost_input_usd"]
        + cached["cost_output_usd"]
        + cached["cost_cache_read_usd"]
        + cached["cost_cache_write_usd"]
    )
    streamed = by_model[("claude-haiku-4-5", True, 200)]
    assert streamed["tokens_output"] == seen["claude-stream"].usage.output_tokens and streamed["ttft_ms"] > 0
    gpt_stream = by_model[("gpt-4o-mini", True, 200)]
    assert gpt_stream["tokens_output"] == seen["gpt-stream"].usage.completion_tokens
    assert by_model[("gpt-4o", False, 200)]["endpoint"] == "/v1/chat/completions"
    unpriced = by_model[("mystery-model-x", False, 200)]
    assert unpriced["cost_usd"] is None and unpriced["priced"] is False
    limited = by_model[("claude-haiku-4-5", False, 429)]
    assert limited["error_type"] == "rate_limit_error" and limited["upstream_status"] == 429


def test_analytics_totals_equal_sums_of_the_rows_sent(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability=STORAGE_ON)
    send_traffic(proxy.url)
    records = recorder.wait_for_ends(7)
    stored_rows(proxy.url, 7)
    result = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1}).json()

    errors = [r for r in records if r.status_code >= 400 or r.error_type is not None]
    assert result["totals"] == {
        "requests": 7,
        "successes": 7 - len(errors),
        "errors": len(errors),
        "error_rate": pytest.approx(len(errors) / 7),
    }
    tokens = {
        "input": sum(r.tokens_input or 0 for r in records),
        "output": sum(r.tokens_output or 0 for r in records),
        "cache_read": sum(r.cache_read_tokens or 0 for r in records),
        "cache_write": sum(r.cache_write_tokens or 0 for r in records),
    }
    assert result["tokens"] == {**tokens, "total": sum(tokens.values())}
    total_cost = sum(r.cost_usd for r in records if r.cost_usd is not None)
    assert result["cost"]["total_usd"] == pytest.approx(float(total_cost), abs=1e-9)
    assert result["cost"]["unpriced_requests"] == sum(not r.priced for r in records)
    assert {m["model"]: m["requests"] for m in result["by_model"]} == dict(Counter(r.model for r in records))
    assert {s["service_type"]: s["requests"] for s in result["by_service_type"]} == {"anthropic": 4, "openai": 3}
    assert result["timeseries"]["bucket"] == "minute" and len(result["timeseries"]["points"]) in (60, 61)
    assert sum(point["requests"] for point in result["timeseries"]["points"]) == 7
    assert [e["request_id"] for e in result["recent_errors"]] == [r.request_id for r in errors]
    assert result["window"]["start"] < result["window"]["end"]


def test_a_model_without_a_known_price_shows_no_cost_rather_than_zero(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability=STORAGE_ON)
    send_traffic(proxy.url)
    records = recorder.wait_for_ends(7)
    stored_rows(proxy.url, 7)
    result = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1, "group_by": "model"}).json()
    for rows in (result["by_model"], [{**g, "model": g["key"]} for g in result["groups"]]):
        by_model = {row["model"]: row for row in rows}
        assert (by_model["mystery-model-x"]["cost_usd"], by_model["mystery-model-x"]["unpriced_requests"]) == (None, 1)
        # Haiku's rate-limited request has no usage, so no price; its two answers do.
        haiku = [r for r in records if r.model == "claude-haiku-4-5"]
        assert by_model["claude-haiku-4-5"]["unpriced_requests"] == 1
        assert by_model["claude-haiku-4-5"]["cost_usd"] == pytest.approx(float(sum(r.cost_usd or 0 for r in haiku)))
    service = {row["service_type"]: row for row in result["by_service_type"]}
    assert service["openai"]["unpriced_requests"] == 1 and service["openai"]["cost_usd"] > 0
    # The totals too: before, a window of unpriced requests alone said $0.00, where its rows say null.
    alone = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1, "model": "mystery-model-x"}).json()
    assert alone["cost"] == {"total_usd": None, "per_request_usd": None, "unpriced_requests": 1}


def test_query_pages_and_entries(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON)
    send_traffic(proxy.url)
    every_row = stored_rows(proxy.url, 7)
    seen, cursor = [], None
    while True:
        body = httpx.get(
            f"{proxy.url}/logs/query", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [row["request_id"] for row in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [row["request_id"] for row in every_row]
    only = httpx.get(f"{proxy.url}/logs/query", params={"service_type": "openai", "streaming": "false"}).json()
    assert {row["model"] for row in only["results"]} == {"gpt-4o", "mystery-model-x"}
    assert only["filters"]["service_type"] == "openai" and only["filters"]["streaming"] is False
    entries = httpx.get(
        f"{proxy.url}/logs/entries",
        params={"page": 2, "page_size": 2, "order_by": "duration_ms", "order_desc": "false"},
    ).json()
    ordered = sorted(every_row, key=lambda row: (row["duration_ms"], row["request_id"]))
    assert [row["request_id"] for row in entries["results"]] == [row["request_id"] for row in ordered[2:4]]
    assert (entries["total"], entries["page"], entries["order_by"], entries["order_desc"]) == (
        7,
        2,
        "duration_ms",
        False,
    )


def test_status_reports_the_store(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON)
    send_traffic(proxy.url)
    stored_rows(proxy.url, 7)
    status = httpx.get(f"{proxy.url}/logs/status").json()
    assert status["enabled"] == {"metrics": False, "logs_endpoints": True, "dashboard": False, "logs_collection": True}
    assert status["backend"] == "duckdb" and status["database_path"].endswith("ccproxy.duckdb")
    assert status["row_count"] == 7 and status["database_size_bytes"] > 0
    assert (status["queue_depth"], status["dropped_records"], status["write_errors"]) == (0, 0, 0)
    assert status["last_flush_at"].endswith("+00:00")


def test_reset_empties_and_a_restart_keeps_rows(upstream, tmp_path):
    settings = make_settings(upstream.url, tmp_path=tmp_path, observability=STORAGE_ON)
    with running_proxy(settings) as proxy:
        send_traffic(proxy.url)
        stored_rows(proxy.url, 7)
    with running_proxy(settings) as proxy:
        assert len(stored_rows(proxy.url, 7)) == 7
        assert httpx.post(f"{proxy.url}/logs/reset").json() == {"deleted": 7}
        assert httpx.get(f"{proxy.url}/logs/query").json()["count"] == 0


def test_reset_deletes_the_records_still_queued_too(proxy_factory):
    # Before, records answered just before the reset waited out the flush interval, were written
    # after it ({"deleted": 0}) and came back.
    proxy = proxy_factory(observability=STORAGE_ON | {"log_flush_interval_seconds": 60})
    send_traffic(proxy.url)
    wait_until(lambda: httpx.get(f"{proxy.url}/logs/status").json()["queue_depth"] == 7)
    assert httpx.post(f"{proxy.url}/logs/reset", timeout=15).json() == {"deleted": 7}
    assert httpx.get(f"{proxy.url}/logs/status").json()["queue_depth"] == 0
    assert httpx.get(f"{proxy.url}/logs/query").json()["count"] == 0


INJECTIONS = [
    "' OR '1'='1",
    "x'; DROP TABLE access_logs; --",
    '" OR 1=1 --',
    "1) UNION SELECT * FROM schema_version --",
    "%27%20OR%201=1",
    "\\'; DELETE FROM access_logs; --",
    "model\x00",
]
TEXT_FILTERS = ["model", "service_type", "endpoint"]
STRICT_PARAMS = {
    "/logs/query": ["status_code", "streaming", "start_time", "end_time", "limit", "cursor"],
    "/logs/entries": [
        "status_code",
        "streaming",
        "start_time",
        "end_time",
        "page",
        "page_size",
        "order_by",
        "order_desc",
    ],
    "/logs/analytics": ["status_code", "streaming", "start_time", "end_time", "hours", "bucket"],
}


def test_sql_injection_strings_in_every_filter_are_harmless(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON)
    send_traffic(proxy.url)
    stored_rows(proxy.url, 7)
    for path, strict in STRICT_PARAMS.items():
        for payload in INJECTIONS:
            for name in TEXT_FILTERS:
                response = httpx.get(f"{proxy.url}{path}", params={name: payload})
                assert response.status_code in (200, 422), (path, name, payload, response.text)
                if response.status_code == 200 and path != "/logs/analytics":
                    assert response.json()["results"] == [], (path, name, payload)
                if response.status_code == 200 and path == "/logs/analytics":
                    assert response.json()["totals"]["requests"] == 0
            for name in strict:
                response = httpx.get(f"{proxy.url}{path}", params={name: payload})
                assert response.status_code == 422, (path, name, payload, response.text)
                assert response.json()["detail"][0]["loc"][-1] == name
    status = httpx.get(f"{proxy.url}/logs/status").json()
    assert status["row_count"] == 7


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/logs/query", {"limit": 0}, "limit"),
        ("/logs/query", {"limit": 10001}, "limit"),
        ("/logs/query", {"start_time": "last tuesday"}, "start_time"),
        ("/logs/entries", {"page_size": 1001}, "page_size"),
        ("/logs/entries", {"page": 0}, "page"),
        ("/logs/entries", {"order_by": "rate_limits"}, "order_by"),
        ("/logs/analytics", {"bucket": "week"}, "bucket"),
        ("/logs/analytics", {"hours": -1}, "hours"),
        ("/logs/analytics", {"hours": 720, "bucket": "minute"}, "bucket"),
        ("/logs/analytics", {"start_time": "2030-01-01T00:00:00Z", "end_time": "2029-01-01T00:00:00Z"}, "start_time"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(proxy_factory, path, params, parameter):
    proxy = proxy_factory(observability=STORAGE_ON)
    response = httpx.get(f"{proxy.url}{path}", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == parameter


LOGS_ROUTES = [
    ("GET", "/logs/status"),
    ("GET", "/logs/query"),
    ("GET", "/logs/analytics"),
    ("GET", "/logs/entries"),
    ("GET", "/logs/stream"),
    ("POST", "/logs/reset"),
]


def test_every_route_needs_the_token_when_one_is_set(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON, security={"auth_token": "s3cret"})
    for method, path in LOGS_ROUTES:
        assert httpx.request(method, f"{proxy.url}{path}").status_code == 401, path
        wrong = httpx.request(method, f"{proxy.url}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
    good = {"Authorization": "Bearer s3cret"}
    for method, path in LOGS_ROUTES:
        if path == "/logs/stream":
            with httpx.stream(method, f"{proxy.url}{path}", headers=good) as response:
                assert response.status_code == 200
        else:
            assert httpx.request(method, f"{proxy.url}{path}", headers=good).status_code == 200, path


@pytest.mark.parametrize(
    "observability",
    [
        {"logs_endpoints_enabled": True},
        {"logs_endpoints_enabled": True, "logs_collection_enabled": True, "log_storage_backend": "none"},
    ],
    ids=["collection-off", "backend-none"],
)
def test_without_a_store_data_routes_answer_503_naming_the_settings(proxy_factory, observability):
    proxy = proxy_factory(observability=observability)
    for method, path in LOGS_ROUTES:
        if path in ("/logs/status", "/logs/stream"):
            continue
        response = httpx.request(method, f"{proxy.url}{path}")
        assert response.status_code == 503, path
        detail = response.json()["detail"]
        assert "OBSERVABILITY__LOGS_COLLECTION_ENABLED=true" in detail
        assert "OBSERVABILITY__LOG_STORAGE_BACKEND=duckdb" in detail
    status = httpx.get(f"{proxy.url}/logs/status").json()
    assert status["backend"] == "none" and status["row_count"] is None
    with httpx.stream("GET", f"{proxy.url}/logs/stream") as response:
        assert response.status_code == 200


def test_reset_is_refused_when_reachable_from_other_machines_without_a_token(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON, server={"host": "0.0.0.0"})
    response = httpx.post(f"{proxy.url}/logs/reset")
    assert response.status_code == 403
    assert "0.0.0.0" in response.json()["detail"] and "SECURITY__AUTH_TOKEN" in response.json()["detail"]


def test_reset_is_allowed_on_any_address_with_a_token(proxy_factory):
    proxy = proxy_factory(observability=STORAGE_ON, server={"host": "0.0.0.0"}, security={"auth_token": "s3cret"})
    response = httpx.post(f"{proxy.url}/logs/reset", headers={"Authorization": "Bearer s3cret"})
    assert response.json() == {"deleted": 0}


def test_a_storage_plugin_whose_hook_raises_makes_a_503_not_a_500(proxy_factory):
    from tests.plugin_fixtures import store_raises

    proxy = proxy_factory(plugins=[store_raises], observability=STORAGE_ON)
    answer = httpx.get(proxy.url + "/logs/query", timeout=10)
    assert answer.status_code == 503
    assert "the store's connection pool is closed" in answer.json()["detail"]
    with httpx.stream("GET", proxy.url + "/logs/stream", timeout=10) as stream:
        assert stream.status_code == 200  # this instance's own records still stream
