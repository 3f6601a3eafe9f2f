"""``ccproxy demo``: every observability feature on, the mock provider behind, a little traffic in front."""

from __future__ import annotations

import json
import logging
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import uvicorn

from ccproxy_core.errors import CcproxyError, SettingsError
from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.logging_setup import configure_logging
from ccproxy_core.runtime.serve import Server, uvicorn_config
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.runtime.stop_signals import hold_stop_signals

log = logging.getLogger("ccproxy.demo")

DEMO_MODELS = (("anthropic", "claude-sonnet-4-6"), ("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4o-mini"))
# A cached system prompt, so the demo shows cache reads and writes.
DEMO_SYSTEM = [
    {"type": "text", "text": "You are the ccproxy demo assistant. " * 40, "cache_control": {"type": "ephemeral"}}
]


def run_demo(listening: socket.socket, request_count: int, once: bool) -> int:
    """Serve the demo on the bound socket ``listening``; with ``once``, exit after checking the traffic was recorded.

    Returns the process exit code: 2 for a bad setting (the demo still reads the environment
    and config file), 1 when it could not start or the traffic was not recorded.
    """
    from ccproxy_core.testing.mock_upstream import serve_mock_in_thread

    hold_stop_signals()  # Ctrl-C, even while it starts, stops the demo as it stops `ccproxy serve`: cleanly, exit 0
    mock = serve_mock_in_thread()
    try:
        return _serve(listening, mock.url, request_count, once)
    except CcproxyError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, SettingsError) else 1
    finally:
        mock.stop()


def _serve(listening: socket.socket, mock_url: str, request_count: int, once: bool) -> int:
    port = listening.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="ccproxy-demo-") as data_dir:  # the demo's records go with it
        settings = load_settings(overrides=_demo_overrides(mock_url, port, Path(data_dir)))
        listener = configure_logging(settings.logging)
        try:
            server = Server(uvicorn_config(create_app(settings), settings))
            base = f"http://127.0.0.1:{port}"
            threading.Thread(target=_drive, args=(server, base, request_count, once), daemon=True).start()
            server.run(sockets=[listening])
        finally:
            listener.stop()
    return 0 if server.started and not getattr(server, "demo_failed", False) else 1


def _demo_overrides(mock_url: str, port: int, data_dir: Path) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "upstream": {"anthropic_base_url": mock_url, "openai_base_url": mock_url},
        "observability": {
            "metrics_endpoint_enabled": True,
            "logs_endpoints_enabled": True,
            "dashboard_enabled": True,
            "logs_collection_enabled": True,
            "duckdb_path": str(data_dir / "metrics.duckdb"),
        },
    }


def _drive(server: uvicorn.Server, base: str, request_count: int, once: bool) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    recorded = False
    try:
        for index in range(request_count):
            service_type, model = DEMO_MODELS[index % len(DEMO_MODELS)]
            # Every seventh request meets a rate limit, so the error views have something to show.
            _send(base, service_type, model, stream=index % 2 == 1, fail=index % 7 == 6)
        print(f"\nccproxy demo is running, {request_count} demo requests sent:", flush=True)
        for name, path in (("metrics", "/metrics"), ("logs", "/logs/query?limit=5"), ("dashboard", "/dashboard")):
            print(f"  {name:<10} {base}{path}", flush=True)
        if once:
            recorded = _recorded(base, request_count)
        else:
            print("Press Ctrl-C to stop.", flush=True)
    finally:
        if once:  # whatever happened above, --once ends the demo
            server.demo_failed = not recorded  # type: ignore[attr-defined]
            server.should_exit = True


def _send(base: str, service_type: str, model: str, stream: bool, fail: bool) -> None:
    prompt = [{"role": "user", "content": "Say hello to the ccproxy demo."}]
    if service_type == "anthropic":
        path, body = (
            "/v1/messages",
            {"model": model, "max_tokens": 64, "system": DEMO_SYSTEM, "messages": prompt, "stream": stream},
        )
        headers = {"x-api-key": "demo-key", "anthropic-version": "2023-06-01"}
    else:
        path, body = "/v1/chat/completions", {"model": model, "messages": prompt, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        headers = {"authorization": "Bearer demo-key"}
    headers.update({"content-type": "application/json", "user-agent": "ccproxy-demo"})
    if fail:
        headers["x-mock-status"] = "429"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        exc.read()
    except OSError as exc:
        log.warning("demo request failed: %s", exc)


def _recorded(base: str, expected: int) -> bool:
    deadline = time.monotonic() + 10
    rows = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/logs/status", timeout=10) as response:
                rows = json.load(response).get("row_count") or 0
        except (OSError, ValueError) as exc:
            print(f"  error: cannot read {base}/logs/status: {exc}", flush=True)
            return False
        if rows >= expected:
            print(f"  recorded   {rows} rows in DuckDB", flush=True)
            return True
        time.sleep(0.2)
    print(f"  error: only {rows} of {expected} demo requests were recorded", flush=True)
    return False
