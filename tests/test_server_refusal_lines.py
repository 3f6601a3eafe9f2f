"""The server's refusal lines: one log per kind of refusal, and a burst that stopped is told in full."""

from __future__ import annotations

import asyncio
import logging
import socket

from ccproxy_core.runtime import server_limits
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.testing import wait_until

from .test_server_limits import address

HEAD = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


def refusal_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("refused")]


def test_connections_refused_after_an_oversized_head_are_logged_and_a_stopped_burst_is_counted(
    proxy_factory, caplog, monkeypatch
):
    for name in ("_connections_log", "_heads_log", "_requests_log"):
        monkeypatch.setattr(server_limits, name, RateLimitedLog(server_limits.log, interval_seconds=0.5))
    caplog.set_level(logging.WARNING, logger=server_limits.log.name)
    proxy = proxy_factory(server={"max_connections": 1, "max_header_bytes": 1024, "header_timeout_seconds": 30})
    with socket.create_connection(address(proxy.url)) as oversized:
        oversized.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 2000 + b"\r\n\r\n")
        assert oversized.recv(65536).startswith(b"HTTP/1.1 431 ")
    with socket.create_connection(address(proxy.url)) as held:
        held.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")  # its head never ends: it stays open
        for _ in range(5):
            with socket.create_connection(address(proxy.url)) as beyond:
                beyond.sendall(HEAD)
                assert beyond.recv(65536).startswith(b"HTTP/1.1 503 ")
        told = wait_until(
            lambda: [line for line in refusal_lines(caplog) if "not logged one by one" in line], timeout=5
        )
    lines = refusal_lines(caplog)
    assert lines[0].startswith("refused a request head larger than SERVER__MAX_HEADER_BYTES=1024")
    # Before: the 431's line held the 503s' back, and nothing ever said how many there were.
    assert lines[1].startswith("refused a connection: ") and lines[1].endswith(" open (SERVER__MAX_CONNECTIONS=1)")
    assert told == ["refused connections beyond SERVER__MAX_CONNECTIONS=1 (4 of them not logged one by one)"]


def test_a_burst_held_back_on_a_loop_that_ended_is_still_told_on_the_next(caplog):
    caplog.set_level(logging.WARNING, logger=server_limits.log.name)
    lines = RateLimitedLog(server_limits.log, interval_seconds=3.0)  # both bursts fall in one interval

    async def burst(sleep: float) -> None:
        for _ in range(3):
            lines.log_in_loop("refused things", "refused a thing")
        await asyncio.sleep(sleep)

    asyncio.run(burst(0))  # ends before its summary is due: that timer never runs
    asyncio.run(burst(3.5))
    told = [line for line in refusal_lines(caplog) if "not logged one by one" in line]
    assert told == ["refused things (5 of them not logged one by one)"]


def test_a_burst_still_held_back_when_the_server_stops_is_told_before_it_ends(proxy_factory, caplog, monkeypatch):
    monkeypatch.setattr(server_limits, "_heads_log", RateLimitedLog(server_limits.log, interval_seconds=600))
    caplog.set_level(logging.WARNING, logger=server_limits.log.name)
    proxy = proxy_factory(server={"max_header_bytes": 1024})
    for _ in range(3):
        with socket.create_connection(address(proxy.url)) as oversized:
            oversized.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 2000 + b"\r\n\r\n")
            assert oversized.recv(65536).startswith(b"HTTP/1.1 431 ")
    assert [line for line in refusal_lines(caplog) if "not logged one by one" in line] == []
    proxy.stop()
    # Before: the summary waited for a timer ten minutes away, and the loop ended first.
    told = [line for line in refusal_lines(caplog) if "not logged one by one" in line]
    assert told == ["refused request heads larger than SERVER__MAX_HEADER_BYTES=1024 (2 of them not logged one by one)"]
