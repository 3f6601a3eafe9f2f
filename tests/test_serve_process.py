"""`ccproxy serve` as a process: a quiet shutdown, and unknown settings refused before serving."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

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
        "unknown setting OBSERVABILITY__METRIC_ENDPOINT_ENABLED (observability.metric_endpoint_enabled in the "
        "config file): did you mean OBSERVABILITY__METRICS_ENDPOINT_ENABLED?"
    ) in result.stderr
    assert "Traceback" not in result.stderr
