"""The plugin inside a real ccproxy (installed through its entry point), against the mock provider."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import anthropic
import pytest

from ccproxy_core.record import AccessRecord
from ccproxy_core.testing import wait_until
from ccproxy_jsonl.exporter import JsonlExporter
from ccproxy_jsonl.settings import JsonlSettings

MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_request_becomes_one_line_and_shutdown_flushes(ccproxy_proxy_factory, monkeypatch, tmp_path):
    path = tmp_path / "out" / "access.jsonl"
    monkeypatch.setenv("CCPROXY_JSONL__PATH", str(path))
    proxy = ccproxy_proxy_factory()
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)
    ids = [client.messages.with_raw_response.create(**MESSAGE).headers["x-ccproxy-request-id"] for _ in range(3)]
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**MESSAGE, extra_headers={"x-mock-status": "529"})
    wait_until(lambda: len(read_records(path)) >= 4)
    proxy.stop()
    records = read_records(path)
    assert len(records) == 4
    assert [r["request_id"] for r in records[:3]] == ids
    assert records[0]["tokens_output"] > 0 and records[0]["cost_usd"] > 0
    assert records[3]["status_code"] == 529 and records[3]["error_type"] == "overloaded_error"


# uvicorn ends its thread with SystemExit when start-up fails; that is the behaviour under test.
startup_fails = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@startup_fails
def test_a_bad_setting_stops_start_up_naming_the_variable(ccproxy_proxy_factory, monkeypatch, caplog):
    monkeypatch.setenv("CCPROXY_JSONL__MAX_BYTES", "10")
    with pytest.raises(RuntimeError, match="failed to start"):
        ccproxy_proxy_factory()
    assert "invalid setting CCPROXY_JSONL__MAX_BYTES='10'" in caplog.text


@startup_fails
def test_an_unwritable_path_stops_start_up_naming_it(ccproxy_proxy_factory, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CCPROXY_JSONL__PATH", str(blocker / "access.jsonl"))
    with pytest.raises(RuntimeError, match="failed to start"):
        ccproxy_proxy_factory()
    assert f"cannot open CCPROXY_JSONL__PATH={blocker / 'access.jsonl'}" in caplog.text


def sample_record(request_id: str) -> AccessRecord:
    return AccessRecord(
        request_id=request_id, timestamp=datetime.now(UTC), method="POST", endpoint="/v1/messages",
        path="/v1/messages", query="", client_ip="127.0.0.1", user_agent="test", service_type="anthropic",
        model="claude-sonnet-4-6", streaming=False, status_code=200, duration_ms=1.0, duration_seconds=0.001,
        tokens_input=1, tokens_output=1, cache_read_tokens=0, cache_write_tokens=0, cost_usd=None, cost_sdk_usd=None,
    )


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, caplog):
    exporter = JsonlExporter(JsonlSettings(path=tmp_path / "access.jsonl", queue_size=2))
    with caplog.at_level(logging.WARNING, logger="ccproxy.jsonl"):
        for number in range(5):
            exporter.on_request_end(sample_record(f"r{number}"))  # the writer is not running: the queue fills
    assert exporter.dropped == 3 and "records dropped" in caplog.text
    exporter.start()
    exporter.stop()
    assert [r["request_id"] for r in read_records(tmp_path / "access.jsonl")] == ["r0", "r1"]
