"""``by_model`` of /logs/analytics stays small whatever model names clients send, and still adds up.

Hundreds of invented models go through a real proxy to the mock provider, into a real DuckDB file
or a real clickhouse-server; the answer lists the ten busiest and one ``other`` row for the rest.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from ccproxy_core.plugin_host.log_store import TOP_GROUPS
from ccproxy_logs_api.top_models import top_models
from tests.dashboard_pages import ALL_LOGS_ON, NO_VALUE
from tests.test_clickhouse_logs_api import clickhouse_storage
from tests.test_logs_api_integration import STORAGE_ON, stored_rows

RARE_MODELS = 300
BUSY = ["claude-haiku-4-5"] * 3 + [f"busy-{n}" for n in range(TOP_GROUPS - 1) for _ in range(2)]
RARE = [f"rare-{n:03d}" for n in range(RARE_MODELS)] + ["claude-opus-4-1"]
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def send_many_models(proxy_url: str) -> int:
    """Ten models with two or more requests, then 301 with one each and a refused one; returns the count."""
    with httpx.Client(base_url=proxy_url, headers=HEADERS, timeout=30) as client:
        for model in BUSY + RARE:
            body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            assert client.post("/v1/messages", json=body).status_code == 200
        refused = {"model": "rare-refused", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/messages", json=refused, headers={"x-mock-status": "429"}).status_code == 429
    return len(BUSY) + len(RARE) + 1


def check_top_models(proxy_url: str) -> dict:
    sent = send_many_models(proxy_url)
    stored_rows(proxy_url, sent)
    body = httpx.get(f"{proxy_url}/logs/analytics", params={"hours": 1}).json()
    rows = body["by_model"]
    assert [row["model"] for row in rows] == ["claude-haiku-4-5", *sorted(set(BUSY) - {"claude-haiku-4-5"}), "other"]
    other = rows[-1]
    assert (other["requests"], other["errors"], other["p95_ms"]) == (len(RARE) + 1, 1, None)
    assert other["unpriced_requests"] == RARE_MODELS + 1 and other["cost_usd"] > 0  # claude-opus-4-1 is priced
    assert sum(row["requests"] for row in rows) == body["totals"]["requests"] == sent
    assert sum(row["errors"] for row in rows) == body["totals"]["errors"] == 1
    assert body["tokens"]["input"] > 0 and body["tokens"]["output"] > 0
    for part, count in body["tokens"].items():
        assert sum(row["tokens"][part] for row in rows) == count
    assert sum(row["tokens_total"] for row in rows) == body["tokens"]["total"]
    assert sum(row["unpriced_requests"] for row in rows) == body["cost"]["unpriced_requests"]
    assert sum(row["cost_usd"] or 0 for row in rows) == pytest.approx(body["cost"]["total_usd"], rel=1e-9)
    return other


def test_duckdb_lists_the_ten_busiest_models_and_sums_the_rest(proxy_factory):
    check_top_models(proxy_factory(observability=STORAGE_ON).url)


def test_clickhouse_lists_the_ten_busiest_models_and_sums_the_rest(proxy_factory, clickhouse_server):
    check_top_models(proxy_factory(observability=clickhouse_storage(clickhouse_server.url)).url)


@pytest.mark.browser
def test_the_dashboard_shows_the_ten_busiest_models_and_other(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    other = check_top_models(proxy.url)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#by-model tr")).to_have_count(TOP_GROUPS + 1)
    last = tab.locator("#by-model tr").last
    expect(last).to_have_attribute("data-derived", "rest")
    expect(last.locator("td.derived")).to_have_text("other")
    expect(last.locator("td").nth(1)).to_have_text(str(other["requests"]))
    expect(last.locator("td").nth(5)).to_have_text(NO_VALUE)
    problems.assert_none()


def model_row(model: str, requests: int, **more) -> dict:
    tokens = {"input": requests, "output": 0, "cache_read": 0, "cache_write": 0, "total": requests}
    row = {"model": model, "requests": requests, "errors": 0, "tokens_total": requests, "tokens": tokens}
    return row | {"cost_usd": 0.5, "unpriced_requests": 0, "p95_ms": 10.0} | more


def test_a_store_s_own_rest_row_is_summed_once_wherever_it_stands_and_missing_counts_read_as_zero():
    # Before, a rest row placed by its request count stayed a "model", and the real tenth model was hidden
    # under a second rest row; a row without unpriced_requests made the answer a bare 500.
    models = [model_row(f"model-{n:02d}", 100 - n) for n in range(TOP_GROUPS)]
    rest = model_row("other", 500, rest=True, p95_ms=None)
    plain = model_row("model-99", 1)
    del plain["unpriced_requests"]
    rows = top_models([rest, *models, plain])
    assert [row["model"] for row in rows] == [*(f"model-{n:02d}" for n in range(TOP_GROUPS)), "other"]
    assert (rows[-1]["requests"], rows[-1]["tokens"]["input"], rows[-1]["unpriced_requests"]) == (501, 501, 0)
    assert rows[-1]["cost_usd"] == 1.0 and rows[-1]["rest"] is True
    assert top_models(models) == models
