"""Signals that come in bursts (Ctrl-C twice, a supervisor's death signal once per thread, logrotate's
SIGHUPs) and hang-ups under nohup, on a real ``python -m ccproxy_core serve`` process."""

from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from sse_starlette.sse import AppStatus

from ccproxy_core.runtime.serve import Server
from tests.test_reliability_signals import ServeProcess, quick_requests_then_streams, serve_env, stored_request_ids


class FlagSetUnderLock:
    """Sets itself under a plain, non-reentrant lock as ``threading.Event`` does; while it holds the lock,
    the server's signal handler runs again, as it does when a second signal arrives at that moment."""

    def __init__(self) -> None:
        self.lock, self.flag = threading.Lock(), False
        self.server: Server | None = None

    def set(self) -> None:
        with self.lock:
            if self.server is not None:
                server, self.server = self.server, None
                server.handle_exit(signal.SIGTERM, None)
            self.flag = True

    def is_set(self) -> bool:
        return self.flag


def test_a_signal_arriving_inside_the_first_ones_handler_does_not_freeze_the_server(monkeypatch):
    # sse-starlette hooks uvicorn's handle_exit to end every event stream of the process: undone after the test.
    monkeypatch.setattr(AppStatus, "should_exit", False)
    draining = FlagSetUnderLock()
    server = Server(uvicorn.Config(SimpleNamespace(state=SimpleNamespace(draining=draining))))
    draining.server = server
    handling = threading.Thread(target=server.handle_exit, args=(signal.SIGTERM, None), daemon=True)
    handling.start()
    handling.join(5)
    assert not handling.is_alive(), "the second signal waited for the lock the first one held"
    assert server.should_exit and draining.is_set()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_burst_of_sigterms_stops_the_server_and_writes_every_record(upstream, tmp_path, sig):
    # A worker gets its supervisor's death signal once per supervisor thread; an operator presses Ctrl-C twice;
    # logrotate sends SIGHUP. Before, a signal landing inside the first one's handler froze the process for good
    # (7 runs in 20), and a SIGHUP after the stop killed the process (exit -1) as it wrote its last lines.
    database = tmp_path / "burst.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database)).start()
    try:
        quick_ids, _ = quick_requests_then_streams(server.url, 3, 0)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and server.process.poll() is None:
            server.send(sig)
            time.sleep(0.00002)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    assert stored_request_ids(database) == quick_ids


def test_a_server_started_under_nohup_keeps_serving_through_a_hang_up(upstream, tmp_path):
    server = ServeProcess(tmp_path, serve_env(upstream.url, tmp_path / "nohup.duckdb"))
    server.command = ["nohup", *server.command]  # nohup runs the server in its own process, hang-ups ignored
    server.start()
    try:
        server.send(signal.SIGHUP)
        time.sleep(0.5)
        assert server.process.poll() is None and httpx.get(server.url + "/health").status_code == 200, server.stderr
        server.send(signal.SIGTERM)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
