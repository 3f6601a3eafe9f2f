"""``ccproxy serve --workers 2`` stopped while its hub is behind: every answered request keeps its one record.

A plugin's slow ``on_request_start`` makes the hub fall behind the workers, which answer a burst
of requests at once. SIGTERM then comes while most events still wait in the channels: the hub
reads them to their end and runs the hooks of each before it stops its plugins.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx

from tests.test_reliability_signals import ANTHROPIC, BODY, ServeProcess, serve_env
from tests.workers_load import serve_workers

REPOSITORY = Path(__file__).resolve().parent.parent
REQUESTS = 12
"""With 1 s of hook each, at least one worker's channel holds 6 s of them: longer than the hub ever waited before."""


def slow_plugin_site(folder: Path) -> Path:
    """A folder that, on PYTHONPATH, installs ``tests/plugin_fixtures/slow_start.py`` as plugin ``slowstart``."""
    info = folder / "ccproxy_slowstart-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ccproxy-slowstart\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ccproxy]\nslowstart = tests.plugin_fixtures.slow_start\n")
    return folder


def one(url: str, number: int) -> tuple[str, int]:
    """One request on a connection of its own (so both workers get some); its id and the status the client saw."""
    headers = {**ANTHROPIC, "x-mock-status": "429"} if number % 4 == 3 else ANTHROPIC
    answer = httpx.post(url + "/v1/messages", json=BODY, headers=headers, timeout=30)
    return answer.headers["x-ccproxy-request-id"], answer.status_code


def slow_hub(upstream_url: str, tmp_path: Path, **extra: str) -> ServeProcess:
    """``serve --workers 2`` with the ``slowstart`` plugin, storing to ``tmp_path / "backlog.duckdb"``."""
    site = slow_plugin_site(tmp_path / "site")
    path = os.pathsep.join(filter(None, [str(site), str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    env = {**serve_env(upstream_url, tmp_path / "backlog.duckdb"), "PYTHONPATH": path, **extra}
    return serve_workers(tmp_path, env)


def stored(database: Path) -> list[tuple[str, int, str | None]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("SELECT request_id, status_code, error_type FROM access_logs").fetchall()


def test_sigterm_while_the_hub_is_behind_keeps_exactly_one_record_per_answered_request(upstream, tmp_path):
    server = slow_hub(upstream.url, tmp_path, SLOW_START_SECONDS="1")
    try:
        assert "slowstart" in httpx.get(server.url + "/health", timeout=10).json()["plugins"], server.stderr[-3000:]
        with ThreadPoolExecutor(REQUESTS) as pool:
            answered = dict(pool.map(lambda number: one(server.url, number), range(REQUESTS)))
        server.send(signal.SIGTERM)
        assert server.wait(60) == 0, server.stderr[-3000:]
    finally:
        server.stop()
    assert len(answered) == REQUESTS and set(answered.values()) == {200, 429}
    rows = stored(tmp_path / "backlog.duckdb")
    exited = [row for row in rows if row[2] == "ccproxy_worker_exited"]
    assert not exited, server.stderr[-3000:]
    assert sorted((request_id, status) for request_id, status, _ in rows) == sorted(answered.items()), server.stderr[
        -3000:
    ]
    assert "lost" not in server.stderr and "dropped" not in server.stderr, server.stderr[-3000:]


def test_requests_cut_while_waiting_for_a_hub_that_is_behind_are_recorded_with_the_503_they_got(upstream, tmp_path):
    # Workers ask the hub to admit each request; it answers behind its backlog. The shutdown timeout cuts the
    # requests first (503, proxy_cancelled), then the workers leave before the answers come. Before, writing
    # those answers broke the hub's reading, and the requests were recorded as 502 ccproxy_worker_exited.
    server = slow_hub(
        upstream.url, tmp_path, SLOW_START_SECONDS="2", SLOW_START_ADMITS="1", SERVER__SHUTDOWN_TIMEOUT_SECONDS="1"
    )
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = [pool.submit(one, server.url, 0) for _ in range(4)]
            time.sleep(0.5)  # every request waits for its admission
            server.send(signal.SIGTERM)
            answered = dict(answer.result() for answer in answers)
        assert server.wait(60) == 0, server.stderr[-3000:]
    finally:
        server.stop()
    assert set(answered.values()) == {503}
    rows = stored(tmp_path / "backlog.duckdb")
    assert sorted(rows) == sorted((request_id, 503, "proxy_cancelled") for request_id in answered), server.stderr[
        -3000:
    ]
