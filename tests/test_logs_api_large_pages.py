"""Large /logs pages of fat rows: a client that stops reading one stalls nobody else, and any valid
``limit`` is answered with DuckDB's default memory, while the writer goes on writing."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.testing import wait_until
from tests.duckdb_records import fill_fat_rows, numbered_record, open_store

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


def test_the_largest_page_of_fat_rows_is_answered_while_the_writer_writes(proxy_factory, tmp_path):
    fat_store_file(tmp_path, 10_000)
    proxy = proxy_factory(observability=STORAGE_ON)
    store = host_of(proxy.app).log_store()
    written = store.stats()["rows_written"]
    stop = threading.Event()
    submitted = 0

    def write() -> None:  # fat records too, a batch at a time, as long as the reads go on
        nonlocal submitted
        while not stop.is_set():
            for _ in range(200):
                store.submit(numbered_record(submitted, request_id=f"new-{submitted}", path="/" + "p" * 2000))
                submitted += 1
            time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        answers = [httpx.get(proxy.url + "/logs/query", params={"limit": 10_000}, timeout=30) for _ in range(3)]
        body = answers[-1].json()
        following = httpx.get(
            proxy.url + "/logs/query", params={"limit": 10_000, "cursor": body["next_cursor"]}, timeout=30
        )
    finally:
        stop.set()
        writer.join()
    assert [answer.status_code for answer in answers] == [200, 200, 200], answers[0].text[:300]
    # Capped by bytes: fewer rows than asked, and the cursor to the rest.
    assert 0 < body["count"] == len(body["results"]) < 10_000 and body["limit"] == 10_000
    assert body["next_cursor"] and len(answers[-1].content) <= 17 * 1024 * 1024
    assert following.status_code == 200
    seen = {row["request_id"] for row in body["results"]}
    assert following.json()["results"] and seen.isdisjoint(row["request_id"] for row in following.json()["results"])
    wait_until(lambda: store.stats()["rows_written"] >= written + submitted, timeout=15)
    assert store.stats()["write_errors"] == 0 and store.stats()["dropped_records"] == 0


def asking(port: int, limit: int) -> socket.socket:
    """A client that asks for a page and reads nothing yet."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET /logs/query?limit={limit} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return client


def stalled_query(port: int, limit: int, expect: bytes = b"HTTP/1.1 200") -> socket.socket:
    """A client that asks for a page, reads its status line and then nothing more."""
    stalled = asking(port, limit)
    assert stalled.recv(len(expect)) == expect
    return stalled


def test_pages_held_for_clients_that_stop_reading_are_bounded_all_together(proxy_factory, tmp_path):
    # Before, each such client held its page (about 11 MB here) for the send timeout: 120 of them, 1.3 GB.
    fat_store_file(tmp_path, 1500)
    proxy = proxy_factory(observability={**STORAGE_ON, "logs_max_unsent_bytes": 16 * 1024 * 1024})
    port = int(proxy.url.rsplit(":", 1)[1])
    stalled = [stalled_query(port, 1500)]
    try:
        refused = stalled_query(port, 1500, expect=b"HTTP/1.1 503")  # a second page would pass the limit
        stalled.append(refused)
        assert b"retry-after: 5" in refused.recv(4096)
        small = httpx.get(proxy.url + "/logs/query?limit=1", timeout=8)  # one that fits still goes
        assert small.status_code == 200 and small.json()["count"] == 1
    finally:
        for client in stalled:
            client.close()
    wait_until(lambda: httpx.get(proxy.url + "/logs/query?limit=1500", timeout=8).status_code == 200)


def test_a_crowd_asking_at_once_holds_no_more_than_the_limit(proxy_factory, tmp_path):
    # Before, the limit was checked before each read's turn: reads queued at once all found nothing held.
    fat_store_file(tmp_path, 1500)
    proxy = proxy_factory(observability={**STORAGE_ON, "logs_max_unsent_bytes": 16 * 1024 * 1024})
    port = int(proxy.url.rsplit(":", 1)[1])
    crowd = [asking(port, 1500) for _ in range(12)]
    try:
        statuses = [client.recv(12) for client in crowd]
    finally:
        for client in crowd:
            client.close()
    assert statuses.count(b"HTTP/1.1 200") == 1 and statuses.count(b"HTTP/1.1 503") == 11
