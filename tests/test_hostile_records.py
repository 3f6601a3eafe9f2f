"""One poisoned value never stops, wipes or corrupts the record.

A real server, every plugin on, in front of a provider that answers with hostile values;
clients send hostile models, user agents, request ids and paths. After each attack the
metrics still render, the writer still writes, the live stream still flows, and every
output is valid JSON without control characters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import unicodedata

import httpx
import pytest

from ccproxy_core.accounting.attribution.clean import clean_text
from ccproxy_core.safe_values import safe_text
from ccproxy_core.testing import wait_until
from tests.hostile_upstream import hostile_upstream

EVERYTHING_ON = {
    "metrics_endpoint_enabled": True,
    "logs_endpoints_enabled": True,
    "logs_collection_enabled": True,
    "dashboard_enabled": True,
    "log_flush_interval_seconds": 0.05,
}
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def hostile():
    with hostile_upstream() as server:
        yield server


@pytest.fixture
def server(proxy_factory, hostile):
    return proxy_factory(upstream_url=hostile.url, observability=EVERYTHING_ON)


class StreamReader(threading.Thread):
    """A /logs/stream subscriber that keeps every data line."""

    def __init__(self, url: str, headers: dict | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.events: list[dict] = []
        self.ids: list[int] = []
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream(
                "GET", self.url + "/logs/stream", headers=self.headers, timeout=httpx.Timeout(10, read=None)
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))  # strict: NaN is not JSON
                    elif line.startswith("id: "):
                        self.ids.append(int(line[4:]))
        except (httpx.HTTPError, ValueError):
            pass
        finally:
            self.ended.set()


def strict_json(text: str):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


def send(url: str, hostile_kind: str = "", body: bytes | None = None, **headers: str) -> httpx.Response:
    content = body if body is not None else json.dumps(BODY).encode()
    return httpx.post(
        url + "/v1/messages", content=content, headers={**ANTHROPIC, "x-hostile": hostile_kind, **headers}, timeout=10
    )


def stored_rows(url: str, count: int) -> list[dict]:
    def enough():
        response = httpx.get(url + "/logs/query?limit=100", timeout=10)
        rows = strict_json(response.text)["results"]
        return rows if len(rows) >= count else None

    return wait_until(enough, timeout=10)


def test_a_lone_surrogate_in_the_model_stops_nothing(server):
    poisoned = b'{"model": "claude-\\udc80-x", "max_tokens": 10, "messages": []}'
    assert send(server.url, body=poisoned).status_code == 200
    assert send(server.url, "surrogate-model").status_code == 200
    assert send(server.url).status_code == 200
    rows = stored_rows(server.url, 3)  # the writer went on past both poisoned records
    models = {row["model"] for row in rows}
    assert "claude-\ufffd-x" in models and "claude-haiku-4-5" in models
    assert "claude-\ufffd-evil" in {row["response_model"] for row in rows}
    metrics = httpx.get(server.url + "/metrics", timeout=10)
    assert metrics.status_code == 200 and 'model="claude-\ufffd-x"' in metrics.text
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 200


def test_control_characters_are_escaped_everywhere(server):
    # The HTTP parser itself refuses C0 controls but \t in a header; C1 controls arrive as UTF-8.
    headers = {"user-agent": "evil\x9b31m\tagent".encode(), "x-request-id": "id\x85del".encode()}
    response = send(server.url, "control-model", **headers)
    assert response.status_code == 200
    request_id = response.headers["x-ccproxy-request-id"]
    assert all(32 <= ord(ch) < 127 for ch in request_id)
    row = stored_rows(server.url, 1)[0]
    for column in ("model", "response_model", "user_agent", "request_id", "client_request_id"):
        assert not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in row[column] or ""), (column, row[column])
    assert row["response_model"] == "claude-\\x1b[31mred\\n\\r\\x00"
    assert row["user_agent"] == "evil\\x9b31m\\tagent"  # the tab escaped too


def test_header_bytes_that_are_not_utf8_are_replaced_in_the_record(server):
    # Refused (they cannot be forwarded unchanged), and recorded without the raw bytes.
    response = send(server.url, **{"user-agent": b"evil\x9b31m\tagent", "x-request-id": b"id\x85del"})
    assert response.status_code == 400
    row = stored_rows(server.url, 1)[0]
    assert (row["user_agent"], row["client_request_id"]) == ("evil\ufffd31m\\tagent", "id\ufffddel")


def test_bidi_controls_are_escaped_everywhere(server):
    """A right-to-left override shown raw makes a viewer show the rest of a line reversed."""
    body = json.dumps({**BODY, "model": "claude-haiku-4-5\u202e"}).encode()
    headers = {"user-agent": "ua\u202eexe.gnp".encode(), "x-ccproxy-session": "sess\u2067evil\u2069".encode()}
    assert send(server.url, body=body, **headers).status_code == 200
    row = stored_rows(server.url, 1)[0]
    assert (row["model"], row["user_agent"], row["session_id"]) == (
        "claude-haiku-4-5\\u202e",
        "ua\\u202eexe.gnp",
        "sess\\u2067evil\\u2069",
    )


@pytest.mark.parametrize("clean", [lambda text: safe_text(text, 100), lambda text: clean_text(text, 100)])
def test_every_unicode_format_character_is_escaped(clean):
    format_chars = [chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"]
    assert "\u202e" in format_chars and "\u200f" in format_chars
    kept = [char for char in format_chars if char in clean(f"a{char}b")]
    assert kept == []
    assert clean("a\U000e0041b") == "a\\U000e0041b"  # a tag character: eight hex digits, unambiguous


def test_non_finite_provider_numbers_become_null_and_the_stream_goes_on(server):
    reader = StreamReader(server.url)
    reader.start()
    wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1)
    assert send(server.url, "snan-cost").status_code == 200
    assert send(server.url).status_code == 200
    wait_until(lambda: len(reader.events) >= 2)
    assert not reader.ended.is_set(), "the stream ended on a non-finite number"
    poisoned = reader.events[0]
    assert poisoned["cost_sdk_usd"] is None
    assert poisoned["rate_limits"] == {}
    # a reconnect from before the poisoned event replays it, and goes on
    replay = StreamReader(server.url, {"Last-Event-ID": str(reader.ids[0] - 1)})
    replay.start()
    wait_until(lambda: len(replay.events) >= 2)
    assert not replay.ended.is_set()
    rows = stored_rows(server.url, 2)
    assert [row["cost_sdk_usd"] for row in rows if row["rate_limits"] == {}]


def test_huge_token_counts_do_not_stop_the_writer(server):
    assert send(server.url, "huge-tokens").status_code == 200
    assert send(server.url).status_code == 200
    rows = stored_rows(server.url, 2)
    assert all(row["tokens_output"] is None or row["tokens_output"] < 2**63 for row in rows)
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 200


def test_negative_charges_and_limits_from_the_provider_are_not_recorded(server):
    assert send(server.url, "negative-numbers").status_code == 200
    row = stored_rows(server.url, 1)[0]
    assert row["cost_sdk_usd"] is None and row["rate_limits"] == {"requests_limit": 50.0}
    assert row["priced"] is True and row["cost_usd"] > 0


def test_a_count_beyond_any_answer_is_unpriced_not_a_priced_null(server):
    assert send(server.url, "absurd-usage").status_code == 200
    row = stored_rows(server.url, 1)[0]
    assert row["tokens_input"] is None  # before, kept up to 2^53: 1,024 such rows wrapped ClickHouse's sum
    assert (row["priced"], row["cost_usd"], row["cost_input_usd"], row["cost_output_usd"]) == (False, None, None, None)


def test_huge_values_from_the_client_are_capped(server):
    huge_model = "m" * 1_000_000
    response = send(
        server.url,
        body=json.dumps({**BODY, "model": huge_model}).encode(),
        **{"user-agent": "u" * 7_000, "x-request-id": "r" * 7_000},
    )  # the provider takes 8 KiB
    assert response.status_code == 200
    assert len(response.headers["x-ccproxy-request-id"]) <= 128
    row = stored_rows(server.url, 1)[0]
    assert len(row["model"]) <= 256 and len(row["user_agent"]) <= 512 and len(row["client_request_id"]) <= 128
    assert len(httpx.get(server.url + "/metrics", timeout=10).text) < 1_000_000


def test_provider_error_text_keeps_no_secret_and_no_control_characters(server):
    response = send(server.url, "error-with-secrets")
    assert response.status_code == 400
    row = stored_rows(server.url, 1)[0]
    assert "sk-LEAK-9" not in row["error_message"] and "\n" not in row["error_message"]


@pytest.mark.parametrize("key", ["sk-ant-api03-TYPELEAK7777", "gw-PLAINLEAK8888abcd"])
def test_a_key_the_provider_echoes_in_its_error_is_masked_everywhere(server, key):
    response = send(server.url, "error-echoing-the-key", **{"x-api-key": key})
    assert response.status_code == 401 and key in response.text  # the client gets the provider's answer as it is
    row = stored_rows(server.url, 1)[0]
    assert row["status_code"] == 401 and row["error_type"] and "***" in row["error_message"]
    assert key not in json.dumps(row)
    assert key not in httpx.get(server.url + "/metrics", timeout=10).text


@pytest.mark.parametrize("key", ["sk-ant-api03-ANSWERLEAK7777", "gw-PLAINLEAK9999abcd"])
def test_a_key_the_provider_echoes_in_its_answer_or_the_client_puts_in_its_query_is_masked(server, key):
    headers = {**ANTHROPIC, "x-api-key": key, "x-hostile": "answer-echoing-the-key"}
    response = httpx.post(server.url + f"/v1/messages?beta=true&k={key}", json=BODY, headers=headers, timeout=30)
    assert response.status_code == 200 and response.json()["model"] == f"model-{key}"  # the client's answer, as it is
    row = stored_rows(server.url, 1)[0]
    assert (row["response_model"], row["upstream_request_id"]) == ("model-***", "req-***")
    assert row["service_tier"] == "tier-***" and row["query"] == "beta=true&k=***"
    assert key not in json.dumps(row)


def test_a_key_the_client_puts_in_its_path_is_masked(server):
    # Before, the path was stored and logged as sent; only the query was masked.
    key = "sk-ant-api03-PATHLEAK5555"
    response = httpx.get(server.url + f"/v1/files/{key}/content", headers={**ANTHROPIC, "x-api-key": key}, timeout=10)
    assert response.status_code == 404  # the provider's answer
    row = stored_rows(server.url, 1)[0]
    assert row["path"] == "/v1/files/***/content"
    assert key not in json.dumps(row)


def test_a_key_in_the_path_of_a_request_answered_by_ccproxy_itself_is_masked(proxy_factory, hostile):
    # Before, only keys sent to the provider were looked for: a request refused here kept its own.
    key = "sk-ant-api03-PATHLEAK6666"
    server = proxy_factory(upstream_url=hostile.url, observability=EVERYTHING_ON, server={"max_request_bytes": 1024})
    headers = {**ANTHROPIC, "x-api-key": key}
    too_large = httpx.post(server.url + f"/v1/files/{key}/content", content=b"x" * 4096, headers=headers, timeout=10)
    dot_segment = httpx.get(server.url + f"/v1/files/{key}/%2e%2e/x", headers=headers, timeout=10)
    assert (too_large.status_code, dot_segment.status_code) == (413, 404)
    rows = stored_rows(server.url, 2)
    assert sorted(row["path"] for row in rows) == ["/v1/files/***/../x", "/v1/files/***/content"]
    assert key not in json.dumps(rows)


def test_a_key_cut_short_where_its_path_was_cut_is_masked(server):
    # Before, the path was cut to its cap first: the part of the key before the cut no longer matched.
    key = "sk-ant-api03-" + "K" * 95
    path = "/v1/files/" + "p" * (2048 - len("/v1/files/") - 60) + key
    response = httpx.get(server.url + path, headers={**ANTHROPIC, "x-api-key": key}, timeout=10)
    assert response.status_code == 404  # the provider's answer
    row = stored_rows(server.url, 1)[0]
    assert row["path"].endswith("p***\u2026") and len(row["path"]) <= 2048
    assert key[:40] not in json.dumps(row)


def test_a_key_with_a_tab_that_the_provider_echoes_in_a_label_is_masked(server):
    # A label is read with its control characters made "?": before, the key then no longer matched.
    key = "gw-TAB\tLEAK9999abcd"
    headers = {**ANTHROPIC, "x-api-key": key, "x-hostile": "answer-echoing-the-key"}
    assert httpx.post(server.url + "/v1/messages", json=BODY, headers=headers, timeout=30).status_code == 200
    row = stored_rows(server.url, 1)[0]
    assert row["service_tier"] == "tier-***"
    assert "LEAK9999abcd" not in json.dumps(row)


def test_an_answer_nested_too_deep_to_read_reaches_the_client_unchanged(server):
    response = send(server.url, "deep-json")
    assert response.status_code == 200 and response.content.count(b"[") == 100_000
    row = stored_rows(server.url, 1)[0]
    assert (row["status_code"], row["error_type"], row["cost_usd"]) == (200, None, None)


def test_an_answer_larger_than_is_held_passes_as_it_arrives_unpriced(proxy_factory, hostile):
    server = proxy_factory(
        upstream_url=hostile.url, observability=EVERYTHING_ON, upstream={"max_decoded_bytes": 1024 * 1024}
    )
    response = send(server.url, "huge-json")
    assert response.status_code == 200 and len(response.content) > 3_000_000
    assert response.json()["usage"] == {"input_tokens": 10, "output_tokens": 5}  # whole, unchanged
    row = stored_rows(server.url, 1)[0]
    assert (row["status_code"], row["error_type"], row["priced"], row["cost_usd"]) == (200, None, False, None)
    assert row["response_bytes"] == len(response.content)
    assert send(server.url).status_code == 200  # the connection pool is still sound


def test_a_nul_in_a_path_is_a_recorded_404_not_a_500(server):
    for path in ("/v1/models/%00", "/v1/models/a%0d%0aSet-Cookie:%20x", "/v1/%ff%fe/x"):
        response = httpx.get(server.url + path, headers={"x-api-key": "k"}, timeout=10)
        assert response.status_code == 404, (path, response.status_code)  # the provider's answer
    metrics = httpx.get(server.url + "/metrics").text
    assert "ccproxy_active_requests 0.0" in metrics
    rows = stored_rows(server.url, 3)
    assert all("\x00" not in row["path"] and "\r" not in row["path"] for row in rows)


def test_a_query_string_that_is_not_utf8_is_recorded(server):
    response = httpx.post(server.url + "/v1/messages?q=%ff%fe&token=abc", json=BODY, headers=ANTHROPIC, timeout=10)
    assert response.status_code == 200
    row = stored_rows(server.url, 1)[0]
    assert "abc" not in row["query"]


def test_a_nul_in_a_path_against_the_mock_provider(proxy_factory):
    proxy = proxy_factory(observability=EVERYTHING_ON)
    response = httpx.get(proxy.url + "/v1/models/%00", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert "ccproxy_active_requests 0.0" in httpx.get(proxy.url + "/metrics").text
    [row] = stored_rows(proxy.url, 1)
    assert row["path"] == "/v1/models/\\x00" and row["status_code"] == response.status_code


def test_queue_full_drops_are_counted_and_logged_rate_limited(tmp_path, caplog):
    from datetime import UTC, datetime

    from ccproxy_core.accounting.record import AccessRecord
    from ccproxy_duckdb.database import Database
    from ccproxy_duckdb.writer import LogWriter

    database = Database.open(str(tmp_path / "full.duckdb"))
    writer = LogWriter(database, queue_size=1, batch_size=10, flush_interval=0.05)  # not started: nothing drains
    record = AccessRecord(
        "id-0",
        datetime.now(UTC),
        "POST",
        "/v1/messages",
        "/v1/messages",
        "",
        None,
        None,
        "anthropic",
        None,
        False,
        200,
        1.0,
        0.001,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    with caplog.at_level("WARNING", logger="ccproxy.duckdb"):
        for index in range(50):
            writer.submit(dataclasses.replace(record, request_id=f"id-{index}"))
    assert writer.stats()["dropped_records"] == 49
    lines = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(lines) == 1 and "OBSERVABILITY__LOG_QUEUE_SIZE=1" in lines[0] and "id-1" in lines[0]
    writer.start()
    writer.close(10)
    database.close()


def test_a_key_put_in_the_requested_model_is_masked_everywhere(proxy_factory, hostile):
    operator_key = "sk-ant-OPERATORKEY-zzq7"
    server = proxy_factory(
        upstream_url=hostile.url, observability=EVERYTHING_ON, upstream={"anthropic_api_key": operator_key}
    )
    client_key = "sk-ant-api03-CLIENTSECRETKEY-abcd1234"
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    for model, key_header in ((f"claude-{client_key}", {"x-api-key": client_key}), (operator_key, {})):
        body = json.dumps({**BODY, "model": model})  # a model variable that took the key's value
        assert httpx.post(server.url + "/v1/messages", content=body, headers={**headers, **key_header}).status_code
    rows = stored_rows(server.url, 2)
    assert sorted(row["model"] for row in rows) == ["***", "claude-***"]
    exposed = json.dumps(rows) + httpx.get(server.url + "/metrics", timeout=10).text
    assert client_key not in exposed and operator_key not in exposed


def test_a_key_of_any_shape_put_in_the_model_stays_out_of_the_unpriced_models_warning(proxy_factory, hostile, caplog):
    # Before, "No price known for model 'AZUREKEY…'": only sk- shaped keys were masked in that line.
    server = proxy_factory(upstream_url=hostile.url, observability=EVERYTHING_ON)
    client_key = "AZUREKEY0123456789abcdef12786"
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json", "x-api-key": client_key}
    caplog.set_level(logging.DEBUG, logger="ccproxy_core.accounting.cost")
    body = json.dumps({**BODY, "model": f"gpt-{client_key}"})
    echoed = {**headers, "x-hostile": "answer-echoing-the-key"}  # and the provider answers with it as its model
    for sent in (headers, echoed):
        assert httpx.post(server.url + "/v1/messages", content=body, headers=sent).status_code == 200
    assert {row["model"] for row in stored_rows(server.url, 2)} == {"gpt-***"}
    assert any("No price known" in record.getMessage() for record in caplog.records)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert client_key not in logged
