"""``ccproxy serve --workers 2`` as a real process with every plugin on: one view of every worker's requests.

The hub process runs the plugins (DuckDB, metrics, logs API, Pushgateway); the workers serve
the port and send it their request events. Nothing may be counted twice or lost: not under a
mixed load, not when a worker is killed mid-stream, not when the whole server is stopped under load.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import wait_until
from tests.test_reliability_signals import (
    ANTHROPIC,
    BODY,
    SLOW_STREAM,
    STREAM_END,
    LogStreamSubscriber,
    ServeProcess,
    serve_env,
    stored_request_ids,
)
from tests.workers_load import KINDS, logged_ids, mixed_load, one_request, serve_workers, worker_pids

INSTANCE = "workers-test"
EXITED = {"gone", "Z"}
"""A worker whose supervisor died is reparented; once it exits it may wait a while as a zombie
(``Z``) for its new parent to reap it, but it no longer runs."""


def metric_samples(url: str, name: str) -> list:
    text = httpx.get(url + "/metrics", timeout=10).text
    return [
        sample for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name
    ]


def test_two_workers_one_view_of_every_request(upstream, start_gateway, tmp_path):
    gateway = start_gateway()
    env = serve_env(
        upstream.url,
        tmp_path / "workers.duckdb",
        metrics_endpoint_enabled="true",
        pushgateway_url=gateway.url,
        pushgateway_interval_seconds="1",
        pushgateway_instance=INSTANCE,
        log_flush_interval_seconds="0.2",
    )
    server = serve_workers(tmp_path, env)
    subscriber = LogStreamSubscriber(server.url)
    try:
        subscriber.start()
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1, timeout=15)
        answered = mixed_load(server.url, rounds=6)
        sent = [request_id for request_id, _ in answered]
        served_by = dict(answered)
        assert set(served_by.values()) == worker_pids(server), "both workers should have served requests"

        wait_until(lambda: len(logged_ids(server.url)) >= len(sent), timeout=30)
        ids = logged_ids(server.url)
        assert Counter(ids) == Counter(sent)  # every request, exactly once
        records = httpx.get(server.url + "/logs/query", params={"limit": 10_000}).json()["results"]

        by_status = Counter(str(record["status_code"]) for record in records)
        metric_by_status = Counter()
        for sample in metric_samples(server.url, "ccproxy_requests_total"):
            metric_by_status[sample.labels["status"]] += int(sample.value)
        assert metric_by_status == by_status
        output_tokens = sum(record["tokens_output"] or 0 for record in records)
        assert (
            sum(s.value for s in metric_samples(server.url, "ccproxy_tokens_total") if s.labels["type"] == "output")
            == output_tokens
            > 0
        )
        assert sum(s.value for s in metric_samples(server.url, "ccproxy_active_requests")) == 0

        gateway.wait_for("ccproxy_requests_total", float(len(sent)), job="ccproxy", instance=INSTANCE)

        wait_until(lambda: set(subscriber.request_ids) >= set(sent), timeout=15)
        assert Counter(subscriber.request_ids) == Counter(sent)
        assert {served_by[request_id] for request_id in subscriber.request_ids} == worker_pids(server)
    finally:
        server.stop()
    assert "Traceback" not in server.stderr, server.stderr[-3000:]


class WatchedStream(threading.Thread):
    """A slow stream read in a thread; keeps its request id, the worker that serves it, and how it ended."""

    def __init__(self, url: str, headers: dict[str, str] = SLOW_STREAM) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.started = threading.Event()
        self.request_id: str | None = None
        self.worker: int | None = None
        self.body = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST", self.url + "/v1/messages", json={**BODY, "stream": True}, headers=self.headers, timeout=30
            ) as response:
                self.request_id = response.headers["x-ccproxy-request-id"]
                self.worker = int(response.headers["x-ccproxy-worker"])
                for chunk in response.iter_bytes():
                    self.body += chunk
                    self.started.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.started.set()


def quick_request(url: str) -> tuple[str, int]:
    with httpx.Client() as client:  # a connection of its own: any worker may take it
        response = client.post(url + "/v1/messages", json=BODY, headers=ANTHROPIC)
    assert response.status_code == 200
    return response.headers["x-ccproxy-request-id"], int(response.headers["x-ccproxy-worker"])


def test_a_worker_killed_mid_stream_is_replaced_and_its_request_recorded(upstream, tmp_path):
    server = serve_workers(
        tmp_path, serve_env(upstream.url, tmp_path / "kill.duckdb", log_flush_interval_seconds="0.2")
    )
    try:
        before = [quick_request(server.url) for _ in range(6)]
        stream = WatchedStream(server.url)
        stream.start()
        assert stream.started.wait(15) and stream.error is None, stream.error
        victim, workers_before = stream.worker, worker_pids(server)
        os.kill(victim, signal.SIGKILL)
        stream.join(15)
        assert not stream.body.rstrip().endswith(STREAM_END), "the stream was meant to be cut"

        pids = wait_until(lambda: (p := worker_pids(server)) and len(p) == 2 and victim not in p and p, timeout=30)
        newcomer = pids - workers_before
        assert len(newcomer) == 1
        wait_until(lambda: quick_request(server.url)[1] in newcomer, timeout=30, interval=0)

        def record_of(request_id):
            rows = httpx.get(server.url + "/logs/query", params={"limit": 1000}).json()["results"]
            return next((row for row in rows if row["request_id"] == request_id), None)

        cut = wait_until(lambda: record_of(stream.request_id), timeout=15)
        assert cut["error_type"] == "ccproxy_worker_exited" and cut["status_code"] == 502
        assert {request_id for request_id, _ in before} <= set(logged_ids(server.url))
    finally:
        server.stop()
    assert f"(pid {victim}) exited with code -9; starting a new one" in server.stderr


def test_sigterm_under_load_stores_every_answered_request(upstream, tmp_path):
    database = tmp_path / "sigterm.duckdb"
    server = serve_workers(tmp_path, serve_env(upstream.url, database, log_flush_interval_seconds="5"))
    answered: list[str] = []
    stop = threading.Event()

    def keep_sending(kind: str) -> None:
        while not stop.is_set():
            try:
                answered.append(one_request(server.url, kind)[0])
            except Exception:  # noqa: BLE001 - refused or cut by the shutdown: not answered
                return

    streams = [WatchedStream(server.url) for _ in range(3)]
    senders = [threading.Thread(target=keep_sending, args=(kind,), daemon=True) for kind in KINDS[:4]]
    subscriber = LogStreamSubscriber(server.url)
    try:
        subscriber.start()
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["stream_subscribers"] == 1, timeout=15)
        for thread in [*streams, *senders]:
            thread.start()
        wait_until(lambda: len(answered) >= 20 and all(s.started.is_set() for s in streams), timeout=30)
        server.send(signal.SIGTERM)
        assert server.wait(60) == 0, server.stderr[-3000:]
    finally:
        stop.set()
        server.stop()
    for thread in [*streams, *senders]:
        thread.join(10)
    for stream in streams:
        assert stream.error is None and stream.body.rstrip().endswith(STREAM_END), stream.error
    stored = stored_request_ids(database)
    assert set(answered) | {stream.request_id for stream in streams} <= stored
    # The live feed carried the streams the workers drained too, and then ended cleanly.
    subscriber.join(10)
    assert subscriber.error is None, repr(subscriber.error)
    assert set(answered) | {stream.request_id for stream in streams} <= set(subscriber.request_ids)
    assert "Traceback" not in server.stderr, server.stderr[-3000:]


def test_a_project_budget_spent_through_one_worker_refuses_through_the_other(upstream, tmp_path):
    budget = [{"name": "alpha-daily", "scope": "project:alpha", "limit_usd": 0.0002, "action": "block"}]
    env = {
        **serve_env(upstream.url, tmp_path / "budget.duckdb"),
        "OBSERVABILITY__BUDGETS_ENABLED": "true",
        "BUDGETS": json.dumps(budget),
    }
    server = serve_workers(tmp_path, env)
    alpha = {**ANTHROPIC, "x-ccproxy-project": "alpha"}
    try:
        first = httpx.post(server.url + "/v1/messages", json=BODY, headers=alpha)
        assert first.status_code == 200  # spends $0.000301 of $0.0002
        spender = int(first.headers["x-ccproxy-worker"])

        def through_the_other_worker():
            with httpx.Client() as client:
                answer = client.post(server.url + "/v1/messages", json=BODY, headers=alpha)
            return answer if int(answer.headers["x-ccproxy-worker"]) != spender else None

        refused = wait_until(through_the_other_worker, timeout=30, interval=0)
        assert refused.status_code == 429
        assert "alpha-daily" in refused.json()["error"]["message"]
    finally:
        server.stop()


def test_zero_workers_is_refused_with_one_line_naming_the_setting(tmp_path):
    server = ServeProcess(tmp_path, {"SERVER__WORKERS": "0"})
    result = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "serve"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SERVER__WORKERS='0'" in lines[0] and "greater than or equal to 1" in lines[0], (
        result.stderr
    )


def test_paths_served_by_the_hub_keep_the_token_the_host_check_and_the_clients_address(upstream, tmp_path):
    env = {
        **serve_env(upstream.url, tmp_path / "hub.duckdb", metrics_endpoint_enabled="true"),
        "SECURITY__AUTH_TOKEN": "workers-secret-token",
    }
    server = serve_workers(tmp_path, env)
    token = {"authorization": "Bearer workers-secret-token"}
    try:
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/metrics", headers=token).status_code == 200
        assert httpx.get(server.url + "/metrics", headers={**token, "host": "evil.example"}).status_code == 403
        assert httpx.get(server.url + "/metrics", headers={**token, "host": "ccproxy-hub"}).status_code == 403
        # HTTP/1.0 needs no Host (health checkers send none): before, the hub judged the one added to reach it.
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as client:
            client.sendall(b"GET /metrics HTTP/1.0\r\nauthorization: Bearer workers-secret-token\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200 ")
        # A client cannot pass itself off as another address: its copy of the workers' header is dropped.
        spoofed = httpx.get(server.url + "/not-an-api-path", headers={"x-ccproxy-worker-client": "http 203.0.113.9 1"})
        assert spoofed.status_code == 404

        def record_of(request_id):
            rows = httpx.get(server.url + "/logs/query", params={"limit": 100}, headers=token).json()["results"]
            return next((row for row in rows if row["request_id"] == request_id), None)

        unmatched = wait_until(lambda: record_of(spoofed.headers["x-ccproxy-request-id"]), timeout=15)
        assert (unmatched["endpoint"], unmatched["client_ip"]) == ("unmatched", "127.0.0.1")
    finally:
        server.stop()


def test_a_dashboard_login_through_a_worker_opens_nothing_to_other_clients(upstream, tmp_path):
    env = {
        **serve_env(upstream.url, tmp_path / "login.duckdb", metrics_endpoint_enabled="true", dashboard_enabled="true"),
        "SECURITY__AUTH_TOKEN": "workers-secret-token",
    }
    server = serve_workers(tmp_path, env)
    try:
        logins = [httpx.get(server.url + "/dashboard?token=workers-secret-token") for _ in range(4)]
        assert {login.status_code for login in logins} == {303}
        # The name carries the port the client connected to, as it does without workers.
        assert {name for login in logins for name in login.cookies} == {f"ccproxy_session_{server.port}"}
        for _ in range(6):  # a connection of its own each time: both workers relay some
            assert httpx.get(server.url + "/logs/query").status_code == 401
            assert httpx.get(server.url + "/metrics").status_code == 401
            assert httpx.post(server.url + "/logs/reset").status_code == 401
        with httpx.Client(cookies=logins[0].cookies) as browser:
            assert browser.get(server.url + "/logs/query").status_code == 200
    finally:
        server.stop()


def process_state(pid: int) -> str:
    """The state letter of ``pid`` from /proc (``R``, ``S``, ``Z``, ...), or ``gone``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.fixture
def short_tmpdir():
    """A TMPDIR short enough for the hub's unix sockets made inside it (pytest's own is too long)."""
    folder = Path(tempfile.mkdtemp(prefix="ccw-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_workers_do_not_outlive_a_killed_supervisor_and_the_next_server_removes_its_folder(
    upstream, tmp_path, short_tmpdir
):
    env = {**serve_env(upstream.url, tmp_path / "orphans.duckdb"), "TMPDIR": str(short_tmpdir)}
    server = serve_workers(tmp_path, env)
    workers = worker_pids(server)
    try:
        server.send(signal.SIGKILL)
        server.wait(10)

        try:
            wait_until(lambda: all(process_state(pid) in EXITED for pid in workers), timeout=60)
        except AssertionError:
            states = {pid: process_state(pid) for pid in workers}
            raise AssertionError(f"workers still running: {states}\n{server.stderr[-4000:]}") from None
    finally:
        for pid in workers:  # only the workers this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Its runtime folder (with a copy of the config file) outlived it; the next server on the machine removes it,
    # and leaves the folder of a server still running (this test's own pid stands for one).
    [left] = short_tmpdir.glob("ccproxy-workers-*")
    running = short_tmpdir / f"ccproxy-workers-{os.getpid()}-live"
    running.mkdir()
    following = serve_workers(tmp_path, env)
    try:
        remaining = set(short_tmpdir.glob("ccproxy-workers-*"))
        assert left not in remaining and running in remaining and len(remaining) == 2
    finally:
        following.stop()


def test_a_worker_started_in_place_of_one_that_died_runs_with_the_settings_the_server_started_with(upstream, tmp_path):
    config = tmp_path / "ccproxy.toml"
    config.write_text(f'[upstream]\nanthropic_base_url = "{upstream.url}"\n')
    command = [sys.executable, "-m", "ccproxy_core", "serve", "--workers", "2", "--config", str(config)]
    server = ServeProcess(tmp_path, {}, command).start(timeout=60)
    try:
        wait_until(lambda: len(worker_pids(server)) == 2, timeout=60)
        # The operator edits the file while it runs (the next start will read it), and a worker dies.
        config.write_text('[upstream]\nanthropic_base_url = "http://127.0.0.1:9"\n')
        before = worker_pids(server)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        pids = wait_until(lambda: (p := worker_pids(server)) and len(p) == 2 and victim not in p and p, timeout=30)
        wait_until(lambda: httpx.get(server.url + "/health").json()["worker"] in pids - before, timeout=30)
        statuses = {
            httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC).status_code for _ in range(20)
        }
        assert statuses == {200}, statuses  # every worker forwards where the server was told at start
    finally:
        server.stop()


def test_a_temporary_folder_too_deep_for_the_workers_sockets_is_named_with_the_fix(upstream, tmp_path):
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    env = {**os.environ, **serve_env(upstream.url, tmp_path / "deep.duckdb"), "TMPDIR": str(deep)}
    command = [sys.executable, "-m", "ccproxy_core", "serve", "--workers", "2", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert "set TMPDIR to a shorter folder" in done.stderr and "Traceback" not in done.stderr
    assert not list(deep.iterdir())  # nothing left behind
