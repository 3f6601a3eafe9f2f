"""SIGTERM and SIGKILL on a real ``python -m ccproxy_core serve`` process.

SIGTERM: streams in flight finish, the DuckDB writer flushes, the Pushgateway gets a last
push, the process exits 0, however many come at once. SIGKILL: at most the last flush interval of records is lost, and
the next start opens the same file cleanly (DuckDB replays its write-ahead log).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from ccproxy_core.testing import free_port, wait_until

ANTHROPIC = {"x-api-key": "sk-ant-signals", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}
# 20 deltas 100 ms apart: each stream lasts about 2 s.
SLOW_STREAM = {**ANTHROPIC, "x-mock-delta-count": "20", "x-mock-delta-interval-ms": "100"}
# 200 deltas 100 ms apart: about 20 s, longer than any shutdown here lets it run.
LONG_STREAM = {**ANTHROPIC, "x-mock-delta-count": "200", "x-mock-delta-interval-ms": "100"}
STREAM_END = b'data: {"type":"message_stop"}'
_OWN_PREFIXES = ("SERVER__", "UPSTREAM__", "OBSERVABILITY__", "SECURITY__", "LOGGING__", "PLUGINS__", "CCPROXY_")


class ServeProcess:
    """``python -m ccproxy_core serve`` (or another command) as a child process, configured by environment only.

    It runs in ``workdir`` (no stray .env) with XDG_CONFIG_HOME there (no user config file);
    stderr goes to a file that :attr:`stderr` reads.
    """

    def __init__(self, workdir: Path, env: dict[str, str], command: list[str] | None = None) -> None:
        self.port = int(env.get("SERVER__PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.stderr_path = workdir / f"ccproxy-{self.port}.stderr"
        self.command = command or [sys.executable, "-m", "ccproxy_core", "serve"]
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
        self.env = {**inherited, "XDG_CONFIG_HOME": str(workdir / "config"), "SERVER__PORT": str(self.port), **env}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ServeProcess:
        """Start it and wait until /health answers."""
        with self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.workdir, stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            assert self.process.poll() is None, f"ccproxy exited with {self.process.returncode}:\n{self.stderr}"
            assert time.monotonic() < deadline, f"ccproxy did not answer /health in {timeout} s:\n{self.stderr}"
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go; for clean-up."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def serve_env(upstream_url: str, database: Path, **observability: str) -> dict[str, str]:
    """Environment for a server in front of the mock, storing to ``database``."""
    env = {
        "UPSTREAM__ANTHROPIC_BASE_URL": upstream_url,
        "UPSTREAM__OPENAI_BASE_URL": upstream_url,
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
        "OBSERVABILITY__DUCKDB_PATH": str(database),
    }
    env.update({f"OBSERVABILITY__{name.upper()}": value for name, value in observability.items()})
    return env


def stored_request_ids(database: Path) -> set[str]:
    """Request ids in the file, opened read-only after the server is gone."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return {row[0] for row in connection.execute("SELECT request_id FROM access_logs").fetchall()}


class SlowStream(threading.Thread):
    """One streamed request read to its end in a thread; keeps what the client saw."""

    def __init__(self, url: str, headers: dict[str, str] = SLOW_STREAM) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.started = threading.Event()
        self.body = b""
        self.request_id: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST", self.url + "/v1/messages", json={**BODY, "stream": True}, headers=self.headers, timeout=30
            ) as response:
                self.request_id = response.headers["x-ccproxy-request-id"]
                for chunk in response.iter_bytes():
                    self.body += chunk
                    self.started.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class LogStreamSubscriber(threading.Thread):
    """A /logs/stream client in a thread: the request ids it got, and how its stream ended."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.request_ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/logs/stream", timeout=httpx.Timeout(30, read=None)) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        self.request_ids.append(json.loads(line[5:])["request_id"])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def quick_requests_then_streams(url: str, quick: int, slow: int) -> tuple[set[str], list[SlowStream]]:
    """``quick`` answered requests (their ids), then ``slow`` streams under way (each has begun)."""
    quick_ids = {
        httpx.post(url + "/v1/messages", json=BODY, headers=ANTHROPIC).headers["x-ccproxy-request-id"]
        for _ in range(quick)
    }
    streams = [SlowStream(url) for _ in range(slow)]
    for stream in streams:
        stream.start()
    for stream in streams:
        assert stream.started.wait(10), "a stream never began"
    return quick_ids, streams


def gateway_requests_total(gateway, instance: str) -> float:
    return gateway.pushed("ccproxy_requests_total", job="ccproxy", instance=instance)


def test_sigterm_finishes_streams_flushes_pushes_and_exits_0(upstream, start_gateway, tmp_path):
    gateway = start_gateway()
    database = tmp_path / "ccproxy.duckdb"
    # A long push interval: after the start-up push only the final push can carry the count.
    env = serve_env(
        upstream.url,
        database,
        pushgateway_url=gateway.url,
        pushgateway_interval_seconds="300",
        pushgateway_instance="sigterm-test",
        log_flush_interval_seconds="5",
    )
    server = ServeProcess(tmp_path, env).start()
    subscriber = LogStreamSubscriber(server.url)
    try:
        subscriber.start()
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1)
        quick_ids, streams = quick_requests_then_streams(server.url, 3, 4)
        assert gateway_requests_total(gateway, "sigterm-test") == 0
        assert not any(stream.body.rstrip().endswith(STREAM_END) for stream in streams), "too late: streams ended"

        server.send(signal.SIGTERM)
        assert server.wait(30) == 0, server.stderr
    finally:
        server.stop()
    assert "Traceback" not in server.stderr, server.stderr

    for stream in streams:
        stream.join(5)
        assert stream.error is None, stream.error
        assert stream.body.rstrip().endswith(STREAM_END), stream.body[-200:]
    stream_ids = {stream.request_id for stream in streams}
    # The live stream ends cleanly once the requests the shutdown waited for are recorded, carrying them too:
    # a client reconnecting to the next process could not get them back.
    subscriber.join(5)
    assert subscriber.error is None, repr(subscriber.error)
    assert sorted(subscriber.request_ids) == sorted(quick_ids | stream_ids)
    assert stored_request_ids(database) == quick_ids | stream_ids
    assert gateway_requests_total(gateway, "sigterm-test") == 7


def test_sigkill_loses_at_most_the_last_flush_interval_and_the_file_reopens(upstream, tmp_path):
    database = tmp_path / "ccproxy.duckdb"
    env = serve_env(upstream.url, database, log_flush_interval_seconds="1")
    server = ServeProcess(tmp_path, env).start()
    try:
        first = {
            httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).headers["x-ccproxy-request-id"]
            for _ in range(5)
        }
        # Wait past one flush interval: the first batch is on disk (committed to the write-ahead log).
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["row_count"] == 5, timeout=10)
        second = {
            httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).headers["x-ccproxy-request-id"]
            for _ in range(5)
        }
        server.send(signal.SIGKILL)
        assert server.wait(10) == -signal.SIGKILL
    finally:
        server.stop()

    survived = stored_request_ids(database)
    assert first <= survived <= first | second
    lost = len(second - survived)
    print(f"SIGKILL right after the second batch: {lost} of {len(second)} records of the last interval lost")

    restarted = ServeProcess(tmp_path, env).start()
    try:
        assert " ERROR " not in restarted.stderr and " WARNING " not in restarted.stderr, restarted.stderr
        status = httpx.get(restarted.url + "/logs/status").json()
        assert status["row_count"] == len(survived)
        new_id = httpx.post(restarted.url + "/v1/messages", json=BODY, headers=ANTHROPIC).headers[
            "x-ccproxy-request-id"
        ]
        wait_until(lambda: httpx.get(restarted.url + "/logs/status").json()["row_count"] == len(survived) + 1)
        restarted.send(signal.SIGTERM)
        assert restarted.wait(30) == 0, restarted.stderr
    finally:
        restarted.stop()
    assert stored_request_ids(database) == survived | {new_id}


def test_a_second_sigint_exits_sooner_but_still_writes_every_record(upstream, tmp_path):
    database = tmp_path / "ccproxy.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database, log_flush_interval_seconds="5")).start()
    try:
        quick_ids, streams = quick_requests_then_streams(server.url, 3, 2)
        server.send(signal.SIGINT)
        time.sleep(0.3)
        server.send(signal.SIGINT)  # uvicorn's "press again to force quit"
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    for stream in streams:
        stream.join(5)
    assert "forced exit: 2 request(s) in flight were cut off" in server.stderr
    # Before, a forced exit skipped the writer's last flush: none of these five were in the file.
    assert stored_request_ids(database) == quick_ids | {stream.request_id for stream in streams}


def test_a_request_cut_by_the_shutdown_timeout_gets_the_503_its_record_names(upstream, tmp_path):
    database = tmp_path / "ccproxy.duckdb"
    env = serve_env(upstream.url, database) | {"SERVER__SHUTDOWN_TIMEOUT_SECONDS": "1"}
    server = ServeProcess(tmp_path, env).start()
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                server.url + "/v1/messages", json=BODY, headers={**ANTHROPIC, "x-mock-latency-ms": "20000"}, timeout=30
            )
        ),
        daemon=True,
    )
    try:
        waiting.start()
        time.sleep(1.0)  # the request is at the provider, which answers in 20 s
        server.send(signal.SIGTERM)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    waiting.join(5)
    [answer] = answers
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "api_error"
    assert "Traceback" not in server.stderr, server.stderr
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(
            "SELECT status_code, error_type FROM access_logs WHERE request_id = ?",
            [answer.headers["x-ccproxy-request-id"]],
        ).fetchone()
    assert row == (503, "proxy_cancelled")


def test_a_hang_up_stops_like_sigterm_finishing_streams_and_writing_every_record(upstream, tmp_path):
    # SIGHUP is what a closed terminal or ssh session sends the server in its foreground.
    database = tmp_path / "hangup.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database, log_flush_interval_seconds="5")).start()
    try:
        quick_ids, streams = quick_requests_then_streams(server.url, 3, 2)
        server.send(signal.SIGHUP)
        assert server.wait(30) == 0, server.stderr
    finally:
        server.stop()
    for stream in streams:
        stream.join(5)
        assert stream.error is None and stream.body.rstrip().endswith(STREAM_END), stream.error
    assert stored_request_ids(database) == quick_ids | {stream.request_id for stream in streams}


def test_a_stream_cut_by_the_shutdown_timeout_is_one_warning_line_not_a_traceback(upstream, tmp_path):
    database = tmp_path / "cut.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database) | {"SERVER__SHUTDOWN_TIMEOUT_SECONDS": "1"})
    stream = SlowStream(server.start().url, LONG_STREAM)
    try:
        stream.start()
        assert stream.started.wait(10), "the stream never began"
        server.send(signal.SIGTERM)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    stream.join(5)
    assert not stream.body.rstrip().endswith(STREAM_END), "the stream was meant to be cut"
    # Before, uvicorn logged the cancellation as an application crash: ERROR and some 35 lines of traceback.
    assert "Traceback" not in server.stderr and "Exception in ASGI application" not in server.stderr, server.stderr
    assert "WARNING uvicorn.error: a response under way was cut off by the shutdown" in server.stderr
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(
            "SELECT status_code, error_type FROM access_logs WHERE request_id = ?", [stream.request_id]
        ).fetchone()
    assert row == (200, "proxy_cancelled")


@pytest.mark.parametrize("timeout", ["0.5", "2"])
def test_the_live_stream_carries_the_records_of_streams_the_shutdown_timeout_cut(upstream, tmp_path, timeout):
    # Before, the server's timeout cut the live stream with the requests, before their records were made:
    # its client lost them for good, as the next process cannot replay them.
    database = tmp_path / "cut-follow.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database) | {"SERVER__SHUTDOWN_TIMEOUT_SECONDS": timeout})
    subscriber = LogStreamSubscriber(server.start().url)
    streams = [SlowStream(server.url, LONG_STREAM) for _ in range(3)]
    try:
        subscriber.start()
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1)
        for stream in streams:
            stream.start()
            assert stream.started.wait(10), "a stream never began"
        server.send(signal.SIGTERM)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    subscriber.join(5)
    assert subscriber.error is None, repr(subscriber.error)  # ended cleanly, not mid-chunk
    assert sorted(subscriber.request_ids) == sorted(stream.request_id for stream in streams)
    assert "Traceback" not in server.stderr, server.stderr
    assert "timeout graceful shutdown exceeded" not in server.stderr, server.stderr  # all ended in time


def test_an_answer_the_provider_broke_off_is_no_application_error_in_the_log(upstream, tmp_path):
    database = tmp_path / "broken.duckdb"
    server = ServeProcess(tmp_path, serve_env(upstream.url, database)).start()
    try:
        headers = {**ANTHROPIC, "x-mock-abort-after": "3"}
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(server.url + "/v1/messages", json={**BODY, "stream": True}, headers=headers, timeout=10)
        server.send(signal.SIGTERM)
        assert server.wait(20) == 0, server.stderr
    finally:
        server.stop()
    # Before, uvicorn's "ASGI callable returned without completing response." came at ERROR.
    assert " ERROR " not in server.stderr, server.stderr
    assert "INFO uvicorn.error: an answer was cut short and its connection closed" in server.stderr
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("SELECT error_type FROM access_logs").fetchall() == [("upstream_stream_aborted",)]
