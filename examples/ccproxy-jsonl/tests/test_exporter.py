"""The plugin inside a real ccproxy (installed through its entry point), against the mock provider."""

from __future__ import annotations

import json
import logging

import anthropic
import pytest

from ccproxy_core import SettingsError
from ccproxy_core.testing import make_record, wait_until
from ccproxy_jsonl.exporter import JsonlExporter
from ccproxy_jsonl.settings import JsonlSettings

MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_request_becomes_one_line_and_shutdown_flushes(ccproxy_proxy_factory, tmp_path):
    path = tmp_path / "out" / "access.jsonl"
    proxy = ccproxy_proxy_factory(plugin_settings={"jsonl": {"path": str(path)}})
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


def test_a_bad_setting_stops_start_up_naming_the_variable(ccproxy_proxy_factory):
    with pytest.raises(SettingsError, match=r"^invalid setting PLUGINS__JSONL__MAX_BYTES=10: Input should be greater"):
        ccproxy_proxy_factory(plugin_settings={"jsonl": {"max_bytes": 10}})


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_path_stops_start_up_naming_the_variable(ccproxy_proxy_factory, empty):
    with pytest.raises(SettingsError, match=r"^invalid setting PLUGINS__JSONL__PATH=.*: Value error, is empty"):
        ccproxy_proxy_factory(plugin_settings={"jsonl": {"path": empty}})


def test_a_mistyped_setting_stops_start_up_naming_the_right_one(ccproxy_proxy_factory):
    with pytest.raises(SettingsError, match="did you mean PLUGINS__JSONL__MAX_BYTES"):
        ccproxy_proxy_factory(plugin_settings={"jsonl": {"max_byte": 2048}})


@startup_fails
def test_an_unwritable_path_stops_start_up_naming_it(ccproxy_proxy_factory, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RuntimeError, match="failed to start"):
        ccproxy_proxy_factory(plugin_settings={"jsonl": {"path": str(blocker / "access.jsonl")}})
    assert f"cannot open PLUGINS__JSONL__PATH={blocker / 'access.jsonl'}" in caplog.text


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, caplog):
    exporter = JsonlExporter(JsonlSettings(path=tmp_path / "access.jsonl", queue_size=2))
    with caplog.at_level(logging.WARNING, logger="ccproxy.jsonl"):
        for number in range(5):
            exporter.submit(make_record(request_id=f"r{number}"))  # the writer is not running: the queue fills
    assert exporter.dropped == 3 and "records dropped" in caplog.text
    exporter.start()
    exporter.stop()
    assert [r["request_id"] for r in read_records(tmp_path / "access.jsonl")] == ["r0", "r1"]
