"""Requests the shutdown cuts before they reached the provider: each gets a provider-shaped 503 and one record.

The server stops taking requests at SIGTERM and gives those under way SERVER__SHUTDOWN_TIMEOUT_SECONDS;
these are still reading their body, or held in a plugin's ``on_request_start``, when that time runs out.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import duckdb
import httpx

from tests.test_reliability_signals import ANTHROPIC, BODY, ServeProcess, serve_env

SLOW_START_PLUGIN = """
import asyncio
from ccproxy_core import hookimpl

@hookimpl
async def on_request_start(context):
    try:
        await asyncio.sleep(30)  # far past the shutdown's time
    except asyncio.CancelledError:  # ccproxy's time limit on hooks: swallowed, so only the shutdown ends the wait
        await asyncio.sleep(30)
"""


def stored_outcomes(database) -> list[tuple[int, str | None]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("SELECT status_code, error_type FROM access_logs").fetchall()


SLOW_FIELDS_PLUGIN = """
import asyncio
from ccproxy_core.forwarding import proxy

async def _slow_fields(*args, **kwargs):
    await asyncio.sleep(30)  # a large body's model still looked for when the shutdown's time runs out

proxy.request_fields = _slow_fields
"""


def slow_start_plugin_path(folder, source: str) -> str:
    """A folder that makes ``zzslowstart`` (``source``) an installed ccproxy plugin when put on PYTHONPATH."""
    (folder / "zzslowstart.py").write_text(source)
    metadata = folder / "zzslowstart-0.1.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: zzslowstart\nVersion: 0.1\n")
    (metadata / "entry_points.txt").write_text("[ccproxy]\nzzslowstart = zzslowstart\n")
    return os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def test_a_body_still_arriving_when_the_shutdown_time_runs_out_gets_a_recorded_503(upstream, tmp_path):
    database = tmp_path / "cut.duckdb"
    env = serve_env(upstream.url, database) | {"SERVER__SHUTDOWN_TIMEOUT_SECONDS": "1"}
    server = ServeProcess(tmp_path, env).start()
    body = json.dumps(BODY).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in ANTHROPIC.items())
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(
                f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}content-length: {len(body)}\r\n\r\n".encode()
            )
            client.sendall(body[:20])
            time.sleep(0.3)
            server.send(signal.SIGTERM)
            for index in range(20, 35):  # a byte every 0.2 s: still arriving when the second is up
                try:
                    client.sendall(body[index : index + 1])
                except OSError:
                    break
                time.sleep(0.2)
            while chunk := client.recv(65536):
                answer += chunk
        assert server.wait(30) == 0, server.stderr
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert b"shutting down" in answer
    assert stored_outcomes(database) == [(503, "proxy_cancelled")]


def test_a_request_waiting_for_body_room_when_the_shutdown_time_runs_out_gets_a_recorded_503(upstream, tmp_path):
    database = tmp_path / "waiting.duckdb"
    limits = {"SERVER__MAX_REQUEST_BYTES": "1048576", "SERVER__MAX_BUFFERED_BODY_BYTES": "1048576"}
    env = serve_env(upstream.url, database) | {"SERVER__SHUTDOWN_TIMEOUT_SECONDS": "1", **limits}
    server = ServeProcess(tmp_path, env).start()
    head = "".join(f"{name}: {value}\r\n" for name, value in ANTHROPIC.items())
    request = f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}content-length: 600000\r\n\r\n".encode()
    answers = []
    try:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as holder,
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as waiting,
        ):
            holder.sendall(request + b"{")  # holds 600,000 of the 1 MiB room, its body still arriving
            time.sleep(0.3)
            waiting.sendall(request)  # needs as much again: waits its turn, its body not yet sent
            time.sleep(0.5)
            server.send(signal.SIGTERM)
            for client in (holder, waiting):
                answer = b""
                while chunk := client.recv(65536):
                    answer += chunk
                answers.append(answer)
        assert server.wait(30) == 0, server.stderr
    finally:
        server.stop()
    # Before: the waiting one's connection was reset, and it had no record.
    assert all(answer.startswith(b"HTTP/1.1 503") and b"shutting down" in answer for answer in answers), answers
    assert stored_outcomes(database) == [(503, "proxy_cancelled")] * 2


def held_when_the_shutdown_time_runs_out(upstream, tmp_path, plugin: str) -> httpx.Response:
    """One request, held by ``plugin`` while the server is stopped with a second to spare; its answer."""
    env = serve_env(upstream.url, tmp_path / "cut.duckdb") | {
        "SERVER__SHUTDOWN_TIMEOUT_SECONDS": "1",
        "PYTHONPATH": slow_start_plugin_path(tmp_path, plugin),
    }
    server = ServeProcess(tmp_path, env).start()
    answers: list[httpx.Response] = []
    client = threading.Thread(
        target=lambda: answers.append(httpx.post(server.url + "/v1/messages", json=BODY, headers=ANTHROPIC, timeout=30))
    )
    try:
        client.start()
        time.sleep(1.0)  # held by the plugin
        server.send(signal.SIGTERM)
        client.join(30)
        assert server.wait(30) == 0, server.stderr
    finally:
        server.stop()
    [answer] = answers
    return answer


def test_a_request_held_in_on_request_start_when_the_shutdown_time_runs_out_gets_a_recorded_503(upstream, tmp_path):
    answer = held_when_the_shutdown_time_runs_out(upstream, tmp_path, SLOW_START_PLUGIN)
    assert answer.status_code == 503 and answer.json()["error"]["message"] == "ccproxy is shutting down"
    assert stored_outcomes(tmp_path / "cut.duckdb") == [(503, "proxy_cancelled")]


def test_a_request_whose_model_is_still_looked_for_when_the_shutdown_time_runs_out_gets_a_recorded_503(
    upstream, tmp_path
):
    answer = held_when_the_shutdown_time_runs_out(upstream, tmp_path, SLOW_FIELDS_PLUGIN)
    # Before: uvicorn's bare 500, and no record.
    assert answer.status_code == 503 and answer.json()["error"]["message"] == "ccproxy is shutting down"
    assert stored_outcomes(tmp_path / "cut.duckdb") == [(503, "proxy_cancelled")]
