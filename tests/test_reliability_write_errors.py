"""A write error at run time, through a running server: it keeps serving, counts the error, then catches up.

The disk is made full for real while the server runs: its DuckDB write-ahead log is
replaced by a link to /dev/full (see tests/test_duckdb_write_errors.py), so every insert
fails with ENOSPC; removing the link gives the space back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import wait_until
from tests.test_duckdb_write_errors import fill_the_disk

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")

OBSERVABILITY = {
    "metrics_endpoint_enabled": True,
    "logs_collection_enabled": True,
    "logs_endpoints_enabled": True,
    "log_flush_interval_seconds": 0.05,
}
HELLO = [{"role": "user", "content": "hello"}]


def send_mixed(proxy_url: str, count: int) -> set[str]:
    """``count`` successful requests, both providers, streamed and not; the request ids."""
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-disk", max_retries=0)
    gpt = openai.OpenAI(base_url=proxy_url + "/v1", api_key="sk-disk", max_retries=0)
    ids = set()
    response: Any  # the raw response of whichever SDK call this turn makes
    for index in range(count):
        if index % 3 == 0:
            response = claude.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
        elif index % 3 == 1:
            response = gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
        else:
            with claude.messages.with_streaming_response.create(
                model="claude-haiku-4-5", max_tokens=10, messages=HELLO, stream=True
            ) as response:
                assert b"message_stop" in response.read()
        assert response.status_code == 200
        ids.add(response.headers["x-ccproxy-request-id"])
    return ids


def status(proxy_url: str) -> dict:
    """/logs/status, which must answer even while the writer keeps reopening the file."""
    response = httpx.get(proxy_url + "/logs/status")
    assert response.status_code == 200, response.text
    return response.json()


def writer_metrics(proxy_url: str) -> dict[str, float]:
    """The ccproxy_log_* samples on /metrics, by sample name."""
    text = httpx.get(proxy_url + "/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("ccproxy_log_")
    }


def test_a_full_disk_at_run_time_is_counted_and_served_through_then_caught_up(proxy_factory):
    proxy = proxy_factory(observability=OBSERVABILITY)
    before = send_mixed(proxy.url, 3)
    wait_until(lambda: status(proxy.url)["row_count"] == 3)
    store = proxy.app.state.ccproxy.log_store()
    store.writer.first_retry_seconds = 0.1  # retry quickly, so the test need not wait for the 1 s default
    wal = Path(f"{store.database.path}.wal")
    try:
        fill_the_disk(store, wal)
        during = send_mixed(proxy.url, 6)  # every one answered 200 while nothing can be written

        # a streamed request's record lands just after its last byte: wait for all six to be queued
        seen = wait_until(
            lambda: (now := status(proxy.url)).get("write_errors", 0) >= 2 and now["queue_depth"] == 6 and now
        )
        assert (seen["row_count"], seen["dropped_records"]) == (3, 0)
        metrics = writer_metrics(proxy.url)
        assert metrics["ccproxy_log_write_errors_total"] >= 2
        assert metrics["ccproxy_log_queue_depth"] == 6 and metrics["ccproxy_log_rows_written_total"] == 3
        assert httpx.get(proxy.url + "/health").json()["status"] == "ok"
    finally:
        wal.unlink()  # space is back

    # the retry that succeeds reopens the file once more, so a read may still race it until the rows are in
    wait_until(lambda: status(proxy.url).get("row_count") == 9, timeout=15)
    after = send_mixed(proxy.url, 3)
    wait_until(lambda: status(proxy.url)["row_count"] == 12)
    rows = httpx.get(proxy.url + "/logs/query", params={"limit": 100}).json()["results"]
    assert {row["request_id"] for row in rows} == before | during | after
    final = status(proxy.url)
    assert (final["queue_depth"], final["dropped_records"]) == (0, 0)
    assert writer_metrics(proxy.url)["ccproxy_log_write_errors_total"] == final["write_errors"] >= 2
