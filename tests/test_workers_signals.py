"""A supervisor's signals reach its workers as they would a single process: a second SIGINT, and nohup."""

from __future__ import annotations

import os
import signal
import time

import duckdb
import httpx

from tests.test_reliability_signals import LONG_STREAM, STREAM_END, serve_env
from tests.test_workers import WatchedStream, quick_request
from tests.workers_load import serve_workers, worker_pids


def test_a_second_sigint_to_the_supervisor_alone_cuts_the_workers_requests_and_records_them(upstream, tmp_path):
    # kill -INT twice, or a service manager that signals the main process only. Before, the supervisor went on
    # waiting for the workers to finish every stream, then logged a forced exit that cut nothing.
    database = tmp_path / "forced.duckdb"
    server = serve_workers(tmp_path, serve_env(upstream.url, database))
    streams = [WatchedStream(server.url, LONG_STREAM) for _ in range(2)]
    try:
        for stream in streams:
            stream.start()
        for stream in streams:
            assert stream.started.wait(15) and stream.error is None, stream.error
        began = time.monotonic()
        server.send(signal.SIGINT)
        time.sleep(0.5)
        server.send(signal.SIGINT)
        assert server.wait(30) == 0, server.stderr[-3000:]
        took = time.monotonic() - began
    finally:
        server.stop()
    for stream in streams:
        stream.join(10)
        assert not stream.body.rstrip().endswith(STREAM_END), "the streams had some 20 s to go"
    assert took < 10, server.stderr[-3000:]
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT error_type FROM access_logs WHERE request_id IN (?, ?)", [s.request_id for s in streams]
        ).fetchall()
    assert rows == [("proxy_cancelled",), ("proxy_cancelled",)]


def test_workers_of_a_supervisor_run_under_nohup_keep_serving_through_a_hang_up(upstream, tmp_path):
    # A closed terminal hangs up every process of the job. Before, the supervisor ignored it but each worker
    # drained and was replaced: uvloop starts them with every signal at its default.
    server = serve_workers(tmp_path, serve_env(upstream.url, tmp_path / "nohup.duckdb"), run_under=("nohup",))
    workers = worker_pids(server)
    try:
        for pid in [server.process.pid, *workers]:
            os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
        assert worker_pids(server) == workers and quick_request(server.url)[1] in workers, server.stderr[-3000:]
        assert "Shutting down" not in server.stderr, server.stderr[-3000:]
    finally:
        server.stop()


def until_refused(url: str) -> float:
    """Seconds the first refused connection took, trying until the workers have closed their copies of the port."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            httpx.get(url, timeout=30)  # a worker not yet draining may still answer
        except httpx.ConnectError:
            return time.monotonic() - began
        time.sleep(0.2)
    raise AssertionError("the port was still open 15 s into the drain")


def test_a_new_client_is_refused_at_once_while_the_workers_drain(upstream, tmp_path):
    # Before, the supervisor held the port open through the drain: the kernel queued new clients that no worker
    # would accept, and reset them when the drain ended, up to SERVER__SHUTDOWN_TIMEOUT_SECONDS later.
    server = serve_workers(tmp_path, serve_env(upstream.url, tmp_path / "drain.duckdb"))
    stream = WatchedStream(server.url, LONG_STREAM)
    try:
        stream.start()
        assert stream.started.wait(15) and stream.error is None, stream.error
        server.send(signal.SIGTERM)
        refused_after = until_refused(server.url + "/health")
        assert stream.is_alive(), "the stream in flight is still being drained"
        assert server.wait(60) == 0, server.stderr[-3000:]
    finally:
        server.stop()
    stream.join(10)
    assert stream.error is None and stream.body.rstrip().endswith(STREAM_END), stream.error
    assert refused_after < 1, refused_after
