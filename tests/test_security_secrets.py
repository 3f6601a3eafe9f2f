"""Secrets never leave the request: no log line, row, metric, event or page holds a client's API key.

A real ``python -m ccproxy_core serve`` with every plugin on (and DEBUG logging) takes
requests carrying recognisable keys, for both providers, streamed and not, answered with
errors, refused locally, and with a key in the query string. Then every output is searched:
stderr (text and JSON formats), the DuckDB file's bytes and every column of every row,
/metrics, the Pushgateway, /logs/*, the SSE stream and the dashboard. The mock provider
must still have received each key unchanged.
"""

from __future__ import annotations

import re
import signal
import threading

import duckdb
import httpx
import pytest

from ccproxy_core.testing import wait_until
from ccproxy_core.testing.mock_upstream.recorder import redact_secret
from tests.test_reliability_signals import ServeProcess

ANTHROPIC_KEY = "sk-ant-SECRET-7f3a9c"
OPENAI_KEY = "sk-proj-SECRET-b41d"
QUERY_KEY = "qk-SECRET-5e21"
SECRETS = (ANTHROPIC_KEY, OPENAI_KEY, QUERY_KEY, "SECRET-7f3a9c", "SECRET-b41d", "SECRET-5e21")
ANTHROPIC = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": f"Bearer {OPENAI_KEY}"}
CLAUDE_BODY = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}
GPT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
MAX_REQUEST_BYTES = 4096

# (method, path, headers, JSON body or raw bytes, status the client gets)
REQUESTS = [
    ("POST", "/v1/messages", ANTHROPIC, CLAUDE_BODY, 200),
    ("POST", "/v1/messages", ANTHROPIC, {**CLAUDE_BODY, "stream": True}, 200),
    ("POST", "/v1/messages", {**ANTHROPIC, "x-mock-status": "401"}, CLAUDE_BODY, 401),
    ("GET", "/v1/models", ANTHROPIC, None, 200),
    ("POST", "/v1/chat/completions", OPENAI, GPT_BODY, 200),
    (
        "POST",
        "/v1/chat/completions",
        OPENAI,
        {**GPT_BODY, "stream": True, "stream_options": {"include_usage": True}},
        200,
    ),
    ("POST", "/v1/chat/completions", {**OPENAI, "x-mock-status": "429"}, GPT_BODY, 429),
    ("POST", f"/v1/chat/completions?key={QUERY_KEY}&api_key={QUERY_KEY}", OPENAI, GPT_BODY, 200),
    (
        "GET",
        "/no/such/route",
        {**ANTHROPIC, **OPENAI},
        None,
        404,
    ),  # outside the provider APIs: answered by ccproxy itself
    ("POST", "/v1/messages", ANTHROPIC, b"x" * (MAX_REQUEST_BYTES + 1), 413),  # answered by ccproxy itself
]
ANSWERED_LOCALLY = (404, 413)


def assert_no_secret(where: str, text: str | bytes) -> None:
    for secret in SECRETS:
        found = secret.encode() in text if isinstance(text, bytes) else secret in text
        assert not found, f"{secret!r} found in {where}"


def send(url: str, method: str, path: str, headers: dict, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    payload = body if isinstance(body, dict) else None
    return httpx.request(method, url + path, headers=headers, json=payload, content=content, timeout=30)


class RawStream(threading.Thread):
    """A /logs/stream subscriber keeping the raw text it reads."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.lines: list[str] = []

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/logs/stream", timeout=httpx.Timeout(30, read=None)) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass  # how the stream ends at shutdown is test_reliability_signals' business; here only its text counts

    def records(self) -> int:
        return sum(line == "event: record" for line in self.lines)


def serve_with_everything_on(tmp_path, upstream_url: str, gateway_url: str, log_format: str) -> ServeProcess:
    env = {
        "UPSTREAM__ANTHROPIC_BASE_URL": upstream_url,
        "UPSTREAM__OPENAI_BASE_URL": upstream_url,
        "SERVER__MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "LOGGING__FORMAT": log_format,
        "LOGGING__LEVEL": "DEBUG",
        "LOGGING__ACCESS_LOG": "true",
        "OBSERVABILITY__METRICS_ENDPOINT_ENABLED": "true",
        "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__DASHBOARD_ENABLED": "true",
        "OBSERVABILITY__DUCKDB_PATH": str(tmp_path / "secrets.duckdb"),
        "OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS": "0.1",
        "OBSERVABILITY__PUSHGATEWAY_URL": gateway_url,
        "OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS": "0.2",
    }
    return ServeProcess(tmp_path, env).start()


def check_the_provider_got_the_keys(upstream_url: str) -> None:
    received = httpx.get(upstream_url + "/_mock/requests").json()["requests"]
    assert len(received) == sum(status not in ANSWERED_LOCALLY for *_, status in REQUESTS)
    for request in received:
        headers = {name.lower(): value for name, value in request["headers"]}
        if request["path"].startswith("/v1/chat/"):
            assert headers["authorization"] == redact_secret(f"Bearer {OPENAI_KEY}")
        else:
            assert headers["x-api-key"] == redact_secret(ANTHROPIC_KEY)
    assert f"key={QUERY_KEY}&api_key={QUERY_KEY}" in [request["query"] for request in received]


def check_the_live_outputs(server: ServeProcess, gateway_url: str) -> None:
    for path in (
        "/metrics",
        "/logs/status",
        "/logs/query?limit=100",
        "/logs/entries?page_size=100",
        "/logs/analytics?hours=1",
        "/health",
    ):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        assert_no_secret(path, response.text)
    assert len(httpx.get(server.url + "/logs/query").json()["results"]) == len(REQUESTS)
    page = httpx.get(server.url + "/dashboard")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert_no_secret("/dashboard", page.text)
    for asset in set(re.findall(r'/dashboard/static/[^"\'?]+', page.text)):
        assert_no_secret(asset, httpx.get(server.url + asset).content)
    wait_until(lambda: "ccproxy_requests_total" in httpx.get(gateway_url + "/metrics").text)
    assert_no_secret("the Pushgateway", httpx.get(gateway_url + "/metrics").text)


def check_the_database(path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        if file.exists():
            assert_no_secret(file.name, file.read_bytes())
    with duckdb.connect(str(path), read_only=True) as connection:
        columns = [
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'access_logs'"
            ).fetchall()
        ]
        assert "request_id" in columns and "query" in columns
        assert connection.execute("SELECT count(*) FROM access_logs").fetchone()[0] == len(REQUESTS)
        for column in columns:
            for secret in SECRETS:
                found = connection.execute(
                    f'SELECT count(*) FROM access_logs WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{secret}%"]
                ).fetchone()[0]
                assert found == 0, f"{secret!r} stored in column {column}"
        queries = {row[0] for row in connection.execute("SELECT query FROM access_logs").fetchall()}
        assert "key=***&api_key=***" in queries, queries  # as the docs write it, not URL-encoded


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_client_keys_appear_in_no_output(upstream, start_gateway, tmp_path, log_format):
    gateway = start_gateway()
    httpx.delete(upstream.url + "/_mock/requests")
    server = serve_with_everything_on(tmp_path, upstream.url, gateway.url, log_format)
    try:
        stream = RawStream(server.url)
        stream.start()
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1)
        request_ids = []
        for method, path, headers, body, status in REQUESTS:
            response = send(server.url, method, path, headers, body)
            assert response.status_code == status, (path, response.text)
            assert_no_secret(f"the answer to {method} {path}", response.content)
            request_ids.append(response.headers["x-ccproxy-request-id"])
        wait_until(lambda: stream.records() >= len(REQUESTS))
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["row_count"] == len(REQUESTS))
        assert_no_secret("/logs/stream", "\n".join(stream.lines))
        check_the_live_outputs(server, gateway.url)
        server.send(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.stop()

    stderr = server.stderr
    assert all(request_id in stderr for request_id in request_ids), "the access lines are missing: nothing was checked"
    assert_no_secret(f"the {log_format} log", stderr)
    check_the_database(tmp_path / "secrets.duckdb")
    check_the_provider_got_the_keys(upstream.url)
