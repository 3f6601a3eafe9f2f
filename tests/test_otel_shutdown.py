"""A collector that does not answer cannot hold ccproxy's exit past its shutdown time.

Before, the OpenTelemetry SDK's own exit handler retried every queued batch against the silent
collector, each up to OTEL_EXPORTER_OTLP_TIMEOUT, after ccproxy had finished: 30 to 45 s with the
defaults, past an orchestrator's usual grace period of 30 s.
"""

from __future__ import annotations

import signal
import socket
import time

import httpx

from tests.test_reliability_signals import ANTHROPIC, BODY, ServeProcess


def test_a_silent_collector_does_not_hold_the_exit(tmp_path, upstream):
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)  # connections queue; nothing ever answers
    env = {
        "UPSTREAM__ANTHROPIC_BASE_URL": upstream.url,
        "SERVER__SHUTDOWN_TIMEOUT_SECONDS": "2",
        "OBSERVABILITY__OTEL_ENABLED": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "4",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1",  # one batch, one timeout, per span
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # every span still queued at shutdown
    }
    server = ServeProcess(tmp_path, env).start()
    try:
        for _ in range(6):
            assert httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).status_code == 200
        asked_to_stop = time.monotonic()
        server.send(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        took = time.monotonic() - asked_to_stop
    finally:
        server.stop()
        silent.close()
    assert took < 15, f"exited {took:.1f} s after SIGTERM (six batches of 4 s each would be 24 s)"
