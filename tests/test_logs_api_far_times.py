"""Windows reaching far past or before what a store's date type holds answer alike on every store;
a store's error reaches the client as one clean line."""

from __future__ import annotations

import httpx
import pytest
from clickhouse_driver.errors import ServerException

from ccproxy_logs_api.routes import store_reason
from tests.test_clickhouse_logs_api import clickhouse_storage
from tests.test_logs_api_integration import STORAGE_ON, send_traffic, stored_rows

FAR_ENDS = ["2106-01-01T00:00:00Z", "9999-01-01T00:00:00Z", "253402300799", "9999-12-31T23:00:00-08:00"]


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.needs_tool("clickhouse"))])
def proxy_with_rows(request, proxy_factory):
    """A proxy on each store, holding the seven rows of ``send_traffic``."""
    if request.param == "clickhouse":
        server = request.getfixturevalue("clickhouse_server")
        proxy = proxy_factory(observability=clickhouse_storage(server.url))
    else:
        proxy = proxy_factory(observability=STORAGE_ON)
    send_traffic(proxy.url)
    stored_rows(proxy.url, 7)
    return proxy


def test_a_far_future_end_is_no_end(proxy_with_rows):
    for end in FAR_ENDS:
        window = {"start_time": "2000-01-01T00:00:00Z", "end_time": end}
        assert httpx.get(f"{proxy_with_rows.url}/logs/query", params=window).json()["count"] == 7, end
        assert httpx.get(f"{proxy_with_rows.url}/logs/entries", params=window).json()["total"] == 7, end
        sessions = httpx.get(f"{proxy_with_rows.url}/logs/sessions", params=window).json()
        assert sessions == httpx.get(f"{proxy_with_rows.url}/logs/sessions").json() | {"filters": sessions["filters"]}


def test_a_very_early_start_is_from_the_first_record(proxy_with_rows):
    for start in ("0001-01-01T00:00:00Z", "0999-06-01T00:00:00Z", "1900-01-01T00:00:00Z", "0001-01-01T00:00:00+05:30"):
        body = httpx.get(f"{proxy_with_rows.url}/logs/query", params={"start_time": start}).json()
        assert body["count"] == 7, start


def test_a_window_entirely_outside_the_dates_is_empty_not_an_error(proxy_with_rows):
    for start, end in [
        ("0999-01-01T00:00:00Z", "0999-01-02T00:00:00Z"),
        ("2200-01-01T00:00:00Z", "2200-01-02T00:00:00Z"),
    ]:
        window = {"start_time": start, "end_time": end}
        analytics = httpx.get(f"{proxy_with_rows.url}/logs/analytics", params=window)
        assert analytics.status_code == 200, analytics.text[:500]
        assert analytics.json()["totals"]["requests"] == 0
        assert httpx.get(f"{proxy_with_rows.url}/logs/query", params=window).json()["count"] == 0


def test_a_store_error_is_one_line_without_the_stack_trace():
    trace = "\n".join(
        f"{n}. /lib/x86_64-linux-gnu/libclickhouse.so.18.16(+0x18f95d2) [0x7fc387af95d2]" for n in range(40)
    )
    error = ServerException(f"DB::Exception: Cannot parse date: value is too short. Stack trace:\n\n{trace}", 38)
    assert store_reason(error) == "Code: 38. DB::Exception: Cannot parse date: value is too short."
    assert store_reason(RuntimeError("x" * 1000)) == "x" * 299 + "…"
    assert store_reason(RuntimeError()) == "RuntimeError"
