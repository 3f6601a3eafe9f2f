"""`ccproxy serve` as a process: a quiet shutdown, unknown settings refused before serving, its open-file limit."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from types import SimpleNamespace

import httpx

from ccproxy_core.runtime.app import startup_line
from ccproxy_core.runtime.settings import Settings
from tests.test_reliability_signals import ANTHROPIC, BODY, ServeProcess, serve_env


def test_a_shutdown_with_duckdb_prints_no_leaked_instances(upstream, tmp_path):
    server = ServeProcess(tmp_path, serve_env(upstream.url, tmp_path / "quiet.duckdb")).start()
    try:
        assert httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).status_code == 200
        server.send(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.stop()
    assert "Application shutdown complete" in server.stderr
    assert "leaked" not in server.stderr.lower(), server.stderr[-2000:]
    # Where requests went and what ran, said once at start-up.
    (line,) = [line for line in server.stderr.splitlines() if "ccproxy forwards to" in line]
    assert f"anthropic at {upstream.url} and openai at {upstream.url}; plugins on: duckdb" in line


def test_a_mistyped_observability_variable_stops_serve_with_one_line_and_exit_2(tmp_path):
    server = ServeProcess(tmp_path, {"OBSERVABILITY__METRIC_ENDPOINT_ENABLED": "true"})
    result = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "serve"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "unknown setting OBSERVABILITY__METRIC_ENDPOINT_ENABLED (or observability.metric_endpoint_enabled in a "
        "config file): did you mean OBSERVABILITY__METRICS_ENDPOINT_ENABLED?"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def serve_under_ulimit(tmp_path, upstream, limits: str) -> ServeProcess:
    """``ccproxy serve`` started by a shell whose ``ulimit`` is set first (``-Sn 1024``: soft only)."""
    command = ["bash", "-c", f"ulimit {limits} && exec {sys.executable} -m ccproxy_core serve"]
    return ServeProcess(tmp_path, serve_env(upstream.url, tmp_path / "files.duckdb"), command).start()


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return int(line.split()[3])


def test_serve_raises_its_own_open_file_limit_to_fit_the_connections_it_allows(tmp_path, upstream):
    server = serve_under_ulimit(tmp_path, upstream, "-Sn 1024")
    try:
        # SERVER__MAX_CONNECTIONS (4096) plus two provider pools of UPSTREAM__MAX_CONNECTIONS (1000) and its own.
        assert open_files_limit(server.process.pid) >= 4096 + 2000
        assert httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).status_code == 200
    finally:
        server.stop()
    assert "ulimit" not in server.stderr


def test_serve_says_when_the_hard_open_file_limit_is_below_the_connections_it_allows(tmp_path, upstream):
    server = serve_under_ulimit(tmp_path, upstream, "-n 1024")
    server.stop()
    assert "SERVER__MAX_CONNECTIONS=4096" in server.stderr and "LimitNOFILE=" in server.stderr


def test_a_key_in_a_websocket_query_never_reaches_the_log(upstream, tmp_path):
    # uvicorn logs each upgrade with its path and query; Azure's Realtime API takes a key there.
    import websockets.sync.client

    server = ServeProcess(tmp_path, serve_env(upstream.url, tmp_path / "ws.duckdb")).start()
    try:
        url = server.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime&api-key=AZUREQUERYKEY7"
        with contextlib.suppress(Exception):  # accepted or refused, the upgrade is logged either way
            with websockets.sync.client.connect(url, open_timeout=10) as socket:
                socket.close()
        server.send(signal.SIGTERM)
        server.wait()
    finally:
        server.stop()
    assert '"WebSocket /v1/realtime?..."' in server.stderr, server.stderr[-2000:]
    assert "AZUREQUERYKEY7" not in server.stderr


def test_the_start_up_line_masks_a_key_pasted_into_a_base_url():
    key = "sk-ant-api03-BASEURLPATH0123456789abcdefghijklmnop"
    settings = Settings(upstream={"anthropic_base_url": f"http://gateway.example/{key}"})
    line = startup_line(SimpleNamespace(settings=settings, plugin_manager=None))
    assert "anthropic at http://gateway.example/sk-" in line and "BASEURLPATH" not in line


def test_a_quieter_log_level_keeps_the_access_lines(upstream, tmp_path):
    env = {**serve_env(upstream.url, tmp_path / "quiet.duckdb"), "LOGGING__LEVEL": "WARNING"}
    server = ServeProcess(tmp_path, env).start()
    try:
        answer = httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC)
        assert answer.status_code == 200
        server.send(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.stop()
    assert "ccproxy forwards to" not in server.stderr  # an INFO line: quieted
    [line] = [line for line in server.stderr.splitlines() if " INFO ccproxy.access: " in line]
    assert "POST /v1/messages 200" in line, line
