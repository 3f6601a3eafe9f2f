"""Large /logs pages of fat rows: a client that stops reading one stalls nobody else, and any valid
``limit`` is answered with DuckDB's default memory, while the writer goes on writing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.duckdb_records import fill_fat_rows, open_store

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "log_flush_interval_seconds": 0.05}


def fat_store_file(tmp_path: Path, rows: int) -> None:
    """The proxy's DuckDB file (``make_settings`` puts it at tmp_path/ccproxy.duckdb), holding ``rows`` fat rows."""
    store = open_store(tmp_path, duckdb_path=str(tmp_path / "ccproxy.duckdb"))
    try:
        fill_fat_rows(store, rows)
    finally:
        store.close()


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        return httpx.get(url, timeout=8).status_code, time.monotonic() - started
    except httpx.TimeoutException:
        return 0, time.monotonic() - started


def test_a_client_that_stops_reading_a_large_page_stalls_no_other_reader(proxy_factory, tmp_path):
    fat_store_file(tmp_path, 1500)
    proxy = proxy_factory(observability=STORAGE_ON)  # one read at a time, the default
    port = int(proxy.url.rsplit(":", 1)[1])
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", port))
    try:
        # About 13 MB: far more than the socket buffers hold, so the answer stalls mid-way.
        stalled.sendall(f"GET /logs/query?limit=1500 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert stalled.recv(1024).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)
        for path in ("/logs/analytics?hours=1", "/logs/query?limit=1", "/logs/sessions?limit=1"):
            status, seconds = timed_get(proxy.url + path)
            assert (status, path) == (200, path), f"{path} answered {status} after {seconds:.1f} s"
            assert seconds < 5
    finally:
        stalled.close()
