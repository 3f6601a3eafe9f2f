"""The mock upstream as a server: recorded requests, counters, options, start and stop."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from ccproxy_core.testing.mock_upstream import MockOptions, MockServer, redact_secret, serve_mock_in_thread
from ccproxy_core.testing.mock_upstream.tokens import prompt_tokens

ANTHROPIC_MODEL = "claude-sonnet-4-6"
PROMPT = "Say hello to the mock upstream, please."


@pytest.fixture(scope="module")
def mock():
    with serve_mock_in_thread() as server:
        yield server


def user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_recorded_requests_keep_exact_bytes_and_redact_secrets():
    with serve_mock_in_thread(MockOptions(recorded_requests_limit=2)) as server:
        body = b'{"model":  "m", "messages": [],  "odd spacing": true}'
        for number in range(3):
            httpx.post(
                f"{server.url}/v1/chat/completions?n={number}",
                content=body,
                headers={"Authorization": "Bearer sk-secret", "X-Custom-Case": "Kept"},
            )
        listed = httpx.get(f"{server.url}/_mock/requests").json()
        assert listed["count"] == 2 and [item["query"] for item in listed["requests"]] == ["n=1", "n=2"]
        last = listed["requests"][-1]
        assert base64.b64decode(last["body_base64"]) == body and last["body"] == body.decode()
        assert ["X-Custom-Case", "Kept"] in last["headers"]
        assert ["Authorization", redact_secret("Bearer sk-secret")] in last["headers"]
        assert "sk-secret" not in json.dumps(listed)
        assert server.requests()[-1].header("x-custom-case") == "Kept" and server.requests()[-1].json()["model"] == "m"
        assert httpx.delete(f"{server.url}/_mock/requests").status_code == 204
        assert server.requests() == [] and httpx.get(f"{server.url}/_mock/requests").json()["count"] == 0


def test_requests_remaining_counts_down_per_provider():
    with serve_mock_in_thread() as server:
        body = {"model": ANTHROPIC_MODEL, "max_tokens": 10, "messages": user()}
        remaining = [
            httpx.post(f"{server.url}/v1/messages", json=body).headers["anthropic-ratelimit-requests-remaining"]
            for _ in range(3)
        ]
        openai_remaining = httpx.post(f"{server.url}/v1/chat/completions", json=body).headers[
            "x-ratelimit-remaining-requests"
        ]
    assert remaining == ["3999", "3998", "3997"] and openai_remaining == "9999"


def test_server_options_set_the_defaults_and_are_checked():
    with serve_mock_in_thread(MockOptions(delta_count=4)) as server:
        answer = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "m", "messages": user()})
        assert answer.json()["usage"]["completion_tokens"] == 12
    with pytest.raises(ValueError, match="delta_count"):
        MockOptions(delta_count=-1)
    with pytest.raises(ValueError, match="latency_ms"):
        MockOptions(latency_ms=10**9)


def test_prompt_tokens_count_text_at_any_depth():
    payload = {
        "system": "abcd",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "efgh"},
                    {"type": "tool_result", "content": [{"type": "text", "text": "ijkl"}]},
                    {"type": "image", "source": {"data": "not counted"}},
                ],
            }
        ],
    }
    assert prompt_tokens(payload) == 3 and prompt_tokens({}) == 1


def test_mock_server_stops_cleanly_and_frees_its_port():
    server = MockServer().start()
    assert httpx.get(f"{server.url}/_mock/health").json() == {"status": "ok"}
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/_mock/health")


def test_mock_server_reports_a_port_it_cannot_bind(mock):
    port = int(mock.url.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="could not start"):
        MockServer(port=port).start()


def test_mock_server_stops_with_a_stream_in_flight():
    server = serve_mock_in_thread()
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={"model": "m", "messages": [], "stream": True},
        headers={"x-mock-delta-interval-ms": "1000"},
    ) as response:
        assert response.status_code == 200
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/_mock/health")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_run_mock_upstream_serves_until_signalled(stop_signal):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from ccproxy_core.testing.mock_upstream import MockOptions, run_mock_upstream;"
        f"run_mock_upstream('127.0.0.1', {port}, MockOptions(delta_count=2))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert f"http://127.0.0.1:{port}" in process.stdout.readline()
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "m", "messages": []})
            assert answer.json()["usage"]["completion_tokens"] == 6
            process.send_signal(stop_signal)
            assert process.wait(timeout=10) == 0
            assert "Traceback" not in process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()


def test_a_client_hanging_up_mid_stream_is_counted_not_logged(caplog):
    with serve_mock_in_thread() as server:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/messages",
            json={"model": "m", "messages": [], "stream": True},
            headers={"x-mock-delta-interval-ms": "50"},
        ) as response:
            next(response.iter_raw())
        deadline = time.monotonic() + 5
        while server.stats()["client_disconnects"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.stats() == {"answers_in_progress": 0, "answers_completed": 0, "client_disconnects": 1}
        assert httpx.get(f"{server.url}/_mock/stats").json()["client_disconnects"] == 1
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
