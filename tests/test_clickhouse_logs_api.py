"""The whole /logs API on the ClickHouse store: a real clickhouse-server, a real uvicorn, the real SDKs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import httpx
import pytest

from ccproxy_core.testing import wait_until
from tests.test_logs_api_integration import send_traffic, stored_rows


def clickhouse_storage(url: str, **more) -> dict:
    return {
        "logs_collection_enabled": True,
        "logs_endpoints_enabled": True,
        "log_storage_backend": "clickhouse",
        "clickhouse_url": url,
        "log_flush_interval_seconds": 0.05,
        **more,
    }


def test_every_request_is_one_row_equal_to_its_record(proxy_factory, recorder, clickhouse_server):
    proxy = proxy_factory(plugins=[recorder], observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    records = recorder.wait_for_ends(7)
    rows = stored_rows(proxy.url, 7)
    assert {row["request_id"]: row for row in rows} == {record.request_id: record.to_dict() for record in records}
    assert [row["timestamp"] for row in rows] == sorted((row["timestamp"] for row in rows), reverse=True)
    ((count,),) = clickhouse_server.query("SELECT count() FROM ccproxy.access_logs")
    assert count == 7


def test_status_names_the_backend_and_masks_the_password(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    status = wait_until(lambda: (s := httpx.get(f"{proxy.url}/logs/status").json())["rows_written"] == 7 and s)
    assert status["backend"] == "clickhouse" and status["row_count"] == 7
    assert status["database_path"] == f"clickhouse://ccproxy:***@127.0.0.1:{clickhouse_server.port}/ccproxy"
    assert status["database_size_bytes"] > 0 and status["dropped_records"] == 0 and status["queue_depth"] == 0
    assert "ch-s3cret-pw" not in json.dumps(status)


def test_query_pages_filters_and_entries(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    every = stored_rows(proxy.url, 7)
    seen, cursor = [], None
    while True:
        page = httpx.get(
            f"{proxy.url}/logs/query", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [row["request_id"] for row in page["results"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [row["request_id"] for row in every]
    openai_rows = httpx.get(f"{proxy.url}/logs/query", params={"service_type": "openai"}).json()["results"]
    assert len(openai_rows) == 3 and {row["service_type"] for row in openai_rows} == {"openai"}
    errors = httpx.get(f"{proxy.url}/logs/query", params={"status_code": "4xx"}).json()["results"]
    assert [row["status_code"] for row in errors] == [429]
    not_haiku = httpx.get(f"{proxy.url}/logs/query", params={"model": "!claude-haiku-4-5"}).json()["results"]
    assert len(not_haiku) == 4 and "claude-haiku-4-5" not in {row["model"] for row in not_haiku}
    streams = httpx.get(f"{proxy.url}/logs/query", params={"streaming": "true"}).json()["results"]
    assert len(streams) == 2
    entries = httpx.get(
        f"{proxy.url}/logs/entries",
        params={"order_by": "tokens_output", "order_desc": "false", "page_size": 4, "page": 1},
    ).json()
    outputs = [row["tokens_output"] for row in entries["results"]]
    assert entries["total"] == 7 and outputs == sorted(outputs)
    by_ttft = httpx.get(f"{proxy.url}/logs/entries", params={"order_by": "ttft_ms", "page_size": 7}).json()["results"]
    assert [row["ttft_ms"] is None for row in by_ttft] == [False, False, True, True, True, True, True]


def test_analytics_match_the_records(proxy_factory, recorder, clickhouse_server):
    proxy = proxy_factory(plugins=[recorder], observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    records = recorder.wait_for_ends(7)
    stored_rows(proxy.url, 7)
    body = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1}).json()
    assert body["totals"] == {"requests": 7, "successes": 6, "errors": 1, "error_rate": pytest.approx(1 / 7)}
    assert body["tokens"]["output"] == sum(r.tokens_output or 0 for r in records)
    assert body["tokens"]["cache_read"] == sum(r.cache_read_tokens or 0 for r in records)
    assert body["cost"]["total_usd"] == pytest.approx(float(sum(r.cost_usd or 0 for r in records)))
    assert body["cost"]["unpriced_requests"] == sum(1 for r in records if not r.priced)
    durations = sorted(r.duration_ms for r in records)
    assert body["duration_ms"]["p50"] in durations and body["duration_ms"]["p99"] == durations[-1]
    assert {part["model"]: part["requests"] for part in body["by_model"]} == {
        "claude-haiku-4-5": 3,
        "claude-opus-4-1": 1,
        "gpt-4o": 1,
        "gpt-4o-mini": 1,
        "mystery-model-x": 1,
    }
    assert {part["service_type"]: part["requests"] for part in body["by_service_type"]} == {"anthropic": 4, "openai": 3}
    points = body["timeseries"]["points"]
    assert body["timeseries"]["bucket"] == "minute" and len(points) in (60, 61)
    assert sum(point["requests"] for point in points) == 7
    assert [error["status_code"] for error in body["recent_errors"]] == [429]


def test_reset_empties_the_table_for_good(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    stored_rows(proxy.url, 7)
    # Many small parts, which the server merges: parts replaced by a merge are what a restart brought back.
    for _ in range(30):
        clickhouse_server.query("INSERT INTO ccproxy.access_logs SELECT * FROM ccproxy.access_logs LIMIT 1")
    wait_until(lambda: clickhouse_server.query("SELECT count() FROM system.parts WHERE NOT active") != [(0,)])
    assert httpx.post(f"{proxy.url}/logs/reset").json() == {"deleted": 37}
    assert httpx.get(f"{proxy.url}/logs/query").json()["count"] == 0
    clickhouse_server.stop()
    clickhouse_server.start()
    # Before, TRUNCATE left the replaced parts on disk, and the restarted server served their rows again.
    assert clickhouse_server.query("SELECT count() FROM ccproxy.access_logs") == [(0,)]


@pytest.mark.needs_tool("clickhouse")
def test_unreachable_at_start_the_proxy_serves_and_stores_once_clickhouse_answers(
    proxy_factory, recorder, tmp_path, caplog
):
    from tests.clickhouse_servers import ClickHouseServer, clickhouse_binary

    caplog.set_level(logging.INFO, logger="ccproxy.clickhouse")
    server = ClickHouseServer(clickhouse_binary(), tmp_path, "late")
    proxy = proxy_factory(plugins=[recorder], observability=clickhouse_storage(server.url))
    send_traffic(proxy.url)
    recorder.wait_for_ends(7)
    status = httpx.get(f"{proxy.url}/logs/status")
    assert status.status_code == 200 and "could not answer" in status.json()["store_error"]
    assert httpx.get(f"{proxy.url}/logs/query").status_code == 503  # reads need the store
    server.start()
    try:
        rows = wait_until(
            lambda: (body := httpx.get(f"{proxy.url}/logs/query").json()).get("count") == 7 and body["results"],
            timeout=30,
            interval=0.5,
        )
        assert {row["request_id"] for row in rows} == {record.request_id for record in recorder.ends}
    finally:
        server.stop()
    assert "ch-s3cret-pw" not in caplog.text and "ccproxy:***@127.0.0.1" in caplog.text


def test_attribution_filters_groups_and_sessions(proxy_factory, clickhouse_server):
    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    sent = [("alpha", "s-1", "red"), ("alpha", "s-1", "blue"), ("beta", "s-2", "red"), ("gamma", "s-2", "blue")]
    for project, session, colour in sent:
        headers = {
            "x-api-key": "sk-ant-attrib",
            "anthropic-version": "2023-06-01",
            "x-ccproxy-project": project,
            "x-ccproxy-session": session,
            "x-ccproxy-tag-colour": colour,
        }
        assert httpx.post(f"{proxy.url}/v1/messages", json=body, headers=headers).status_code == 200
    stored_rows(proxy.url, 4)
    alpha = httpx.get(f"{proxy.url}/logs/query", params={"project": "alpha"}).json()["results"]
    assert sorted(row["tags"]["colour"] for row in alpha) == ["blue", "red"]
    red = httpx.get(f"{proxy.url}/logs/query", params={"tag.colour": "red"}).json()["results"]
    assert sorted(row["project"] for row in red) == ["alpha", "beta"]
    grouped = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1, "group_by": "project", "top": 1}).json()
    assert [(group["key"], group["requests"]) for group in grouped["groups"]] == [("alpha", 2), ("other", 2)]
    sessions = httpx.get(f"{proxy.url}/logs/sessions").json()
    assert sessions["total"] == 2 and {
        s["session_id"]: (s["requests"], s["project"]) for s in sessions["sessions"]
    } == {
        "s-1": (2, "alpha"),
        "s-2": (2, "beta, gamma"),  # every project the session used
    }
    one = httpx.get(f"{proxy.url}/logs/sessions/s-1").json()
    assert [row["tags"]["colour"] for row in one["requests"]] == ["red", "blue"]


@pytest.mark.needs_tool("clickhouse")
def test_a_wrong_password_stops_start_up_with_one_line(clickhouse_server, tmp_path):
    password = clickhouse_server.url.split("@")[0].rsplit(":", 1)[1]
    env = {
        **os.environ,
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__LOG_STORAGE_BACKEND": "clickhouse",
        "OBSERVABILITY__CLICKHOUSE_URL": clickhouse_server.url.replace(f":{password}@", ":not-the-password@"),
    }
    command = [sys.executable, "-m", "ccproxy_core", "serve", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "refused to set up the access log" in line]
    assert "Wrong password" in line and "not-the-password" not in done.stderr
    assert "Stack trace" not in done.stderr and "DB::Exception::Exception" not in done.stderr


def test_a_query_page_stops_at_its_byte_cap_and_its_cursor_leads_to_the_rest(
    proxy_factory, clickhouse_server, monkeypatch
):
    # Before, a page held every row asked for, up to 10,000 rows at their size caps (some 80 MB).
    from ccproxy_clickhouse import queries

    proxy = proxy_factory(observability=clickhouse_storage(clickhouse_server.url))
    send_traffic(proxy.url)
    every = stored_rows(proxy.url, 7)
    sizes = [len(json.dumps(row, separators=(",", ":"), default=str).encode()) + 1 for row in every]
    monkeypatch.setattr(queries, "PAGE_BYTES", sum(sizes[:3]) + 2)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{proxy.url}/logs/query", params=params).json()
        assert 1 <= len(page["results"]) <= 3
        seen += page["results"]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break
    assert seen == every and pages >= 3
