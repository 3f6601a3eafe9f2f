"""Hostile-input figures: what heavy /logs reads add to proxied latency, memory under size attacks,
and the per-request cost of the defences.

    python benchmarks/bench_hostile.py reads      # p99 added to proxied requests by 8 heavy /logs readers
    python benchmarks/bench_hostile.py sizes      # RSS over idle under the size attacks; /health latency
    python benchmarks/bench_hostile.py cost       # the guard and value checks per request; hostile bodies
    python benchmarks/bench_hostile.py all

Real processes: ``ccproxy serve`` (every plugin on) in front of ``ccproxy mock-upstream``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib.hostile_bodies import (
    bomb_decode_milliseconds,
    error_text_milliseconds,
    form_type_milliseconds,
    scan_seconds,
)
from benchlib.processes import Service, plugins_on_settings, start_mock, start_proxy

ANTHROPIC = {"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
MIB = 1024 * 1024


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def fill(url: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one() -> None:
            async with semaphore:
                await client.post(url + "/v1/messages", content=BODY, headers=ANTHROPIC)

        await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)


async def proxied_latencies(url: str, seconds: float) -> list[float]:
    """Milliseconds of sequential proxied requests for ``seconds``."""
    samples: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await client.post(url + "/v1/messages", content=BODY, headers=ANTHROPIC)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _read_forever(url: str, stop, done) -> None:  # multiprocessing primitives
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            with client.stream("GET", url + "/logs/query", params={"limit": 10_000}) as response:
                for _ in response.iter_raw():
                    pass
            with done.get_lock():
                done.value += 1


def heavy_readers(url: str, count: int):
    """``count`` processes (not threads: their own work must not slow the measuring client) reading forever."""
    context = multiprocessing.get_context("spawn")
    stop, done = context.Event(), context.Value("i", 0)
    processes = [context.Process(target=_read_forever, args=(url, stop, done), daemon=True) for _ in range(count)]
    for process in processes:
        process.start()
    return processes, stop, done


def prefill(database: Path, rows: int) -> None:
    """Write ``rows`` realistic records straight into the DuckDB file, before the proxy opens it."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from ccproxy_core.accounting.record import AccessRecord
    from ccproxy_duckdb.settings import DuckDBSettings
    from ccproxy_duckdb.store import DuckDBLogStore

    store = DuckDBLogStore.open(DuckDBSettings(duckdb_path=str(database), log_queue_size=rows + 1))
    now = datetime.now(UTC)
    for index in range(rows):
        store.submit(
            AccessRecord(
                request_id=f"{index:032x}",
                timestamp=now - timedelta(seconds=index),
                method="POST",
                endpoint="/v1/messages",
                path="/v1/messages",
                query="",
                client_ip="127.0.0.1",
                user_agent="claude-cli/2.0.1 (external, cli)",
                service_type="anthropic",
                model="claude-sonnet-4-5",
                streaming=index % 2 == 0,
                status_code=200,
                duration_ms=812.5,
                duration_seconds=0.8125,
                tokens_input=1200,
                tokens_output=340,
                cache_read_tokens=5000,
                cache_write_tokens=0,
                cost_usd=Decimal("0.0123"),
                cost_sdk_usd=None,
                ttft_ms=210.0,
                upstream_status=200,
                upstream_duration_ms=800.0,
                proxy_overhead_ms=0.4,
                response_model="claude-sonnet-4-5-20250929",
                priced=True,
                request_bytes=2048,
                response_bytes=4096,
                rate_limits={"requests_remaining": 49.0},
            )
        )
    store.close()


def bench_reads(workdir: Path, rows: int = 10_000, seconds: float = 15.0, workers: int = 1) -> dict:
    settings = {**plugins_on_settings(workdir, "reads"), "SERVER__WORKERS": str(workers)}
    prefill(Path(settings["OBSERVABILITY__DUCKDB_PATH"]), rows)
    mock = start_mock(workdir)
    proxy = start_proxy("reads", mock, workdir, settings=settings)
    try:
        time.sleep(1)
        quiet = asyncio.run(proxied_latencies(proxy.url, seconds))
        processes, stop, done = heavy_readers(proxy.url, 8)
        time.sleep(3)
        loaded = asyncio.run(proxied_latencies(proxy.url, seconds))
        stop.set()
        for process in processes:
            process.join(120)
    finally:
        proxy.stop()
        mock.stop()
    result = {
        "rows": rows,
        "workers": workers,
        "quiet_p50_ms": statistics.median(quiet),
        "quiet_p99_ms": percentile(quiet, 99),
        "loaded_p50_ms": statistics.median(loaded),
        "loaded_p99_ms": percentile(loaded, 99),
        "loaded_max_ms": max(loaded),
        "p99_added_ms": percentile(loaded, 99) - percentile(quiet, 99),
        "heavy_reads_done": done.value,
    }
    print(
        f"heavy reads, {workers} worker(s): 8 clients looping /logs/query?limit=10000 over {rows} rows "
        f"({done.value} reads done)"
    )
    print(
        f"  proxied p50 {result['quiet_p50_ms']:.2f} ms -> {result['loaded_p50_ms']:.2f} ms; "
        f"p99 {result['quiet_p99_ms']:.2f} ms -> {result['loaded_p99_ms']:.2f} ms "
        f"(added {result['p99_added_ms']:.2f} ms); max {result['loaded_max_ms']:.1f} ms"
    )
    return result


class MemoryWatch(threading.Thread):
    """Samples a process's RSS every 20 ms and keeps the highest."""

    def __init__(self, service: Service) -> None:
        super().__init__(daemon=True)
        self.service, self.peak_kib, self.stop = service, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kib = max(self.peak_kib, self.service.memory_kib()["rss"])
            time.sleep(0.02)

    def __enter__(self) -> MemoryWatch:
        self.peak_kib = self.service.memory_kib()["rss"]
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def attack_huge_models(url: str) -> None:
    huge = "m" * MIB
    body = json.dumps({"model": huge, "max_tokens": 1, "messages": []})
    with httpx.Client(timeout=60) as client:
        for _ in range(200):
            client.post(url + "/v1/messages", content=body, headers=ANTHROPIC)


def attack_header_lines(url: str) -> None:
    def one() -> None:
        with socket.create_connection(_address(url)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            try:
                for _ in range(1024):  # 64 MiB
                    sock.sendall(b"a" * 65536)
            except OSError:
                pass

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def attack_slow_headers(url: str, count: int = 1_100) -> int:
    """Open ``count`` connections that send half a request head; how many the server closed within 15 s."""
    socks = []
    for _ in range(count):
        try:
            sock = socket.create_connection(_address(url))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 12")
            socks.append(sock)
        except OSError:
            break
    deadline, closed = time.monotonic() + 15, 0
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            while sock.recv(4096):
                pass
            closed += 1
        except OSError:
            pass
        sock.close()
    return closed


def attack_large_bodies(url: str, count: int = 4, size: int = 30 * MIB) -> tuple[float, list[int]]:
    """``count`` concurrent ``size`` bodies; the slowest /health answer meanwhile (ms) and the statuses."""
    padding = "x" * size
    body = json.dumps(
        {"model": "claude-haiku-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": padding}]}
    ).encode()
    statuses: list[int] = []

    def send() -> None:
        statuses.append(httpx.post(url + "/v1/messages", content=body, headers=ANTHROPIC, timeout=120).status_code)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    slowest = 0.0
    with httpx.Client(timeout=30) as client:
        while any(thread.is_alive() for thread in threads):
            started = time.perf_counter()
            client.get(url + "/health")
            slowest = max(slowest, (time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    return slowest, statuses


def bench_sizes(workdir: Path) -> dict:
    mock = start_mock(workdir)
    proxy = start_proxy("sizes", mock, workdir, settings=plugins_on_settings(workdir, "sizes"))
    results: dict[str, float | int | list[int]] = {}
    try:
        asyncio.run(fill(proxy.url, 50))
        httpx.get(proxy.url + "/metrics")
        time.sleep(1)
        idle = proxy.memory_kib()["rss"]
        results["idle_rss_mib"] = idle / 1024
        print(f"size attacks: idle RSS {idle / 1024:.0f} MiB")
        attacks = [
            ("200 requests naming 1 MiB models", lambda: attack_huge_models(proxy.url)),
            ("8 unfinished 64 MiB header lines", lambda: attack_header_lines(proxy.url)),
        ]
        for name, attack in attacks:
            with MemoryWatch(proxy) as watch:
                attack()
            results[name] = (watch.peak_kib - idle) / 1024
            print(f"  {name}: peak RSS {watch.peak_kib / 1024:.0f} MiB ({results[name]:+.0f} MiB over idle)")
        metrics_bytes = len(httpx.get(proxy.url + "/metrics").content)
        results["metrics_bytes"] = metrics_bytes
        print(f"  /metrics after the model attack: {metrics_bytes / 1024:.0f} KiB")
        with MemoryWatch(proxy) as watch:
            closed = attack_slow_headers(proxy.url)
        results["slow_headers_closed"] = closed
        print(
            f"  1,100 slow-header connections: {closed} closed by the server within 15 s; "
            f"peak {(watch.peak_kib - idle) / 1024:+.0f} MiB"
        )
        with MemoryWatch(proxy) as watch:
            slowest, statuses = attack_large_bodies(proxy.url)
        results["large_bodies_peak_over_idle_mib"] = (watch.peak_kib - idle) / 1024
        results["health_max_ms_during_bodies"] = slowest
        print(
            f"  4 concurrent 30 MiB bodies: statuses {sorted(statuses)}, peak RSS {watch.peak_kib / 1024:.0f} MiB "
            f"({(watch.peak_kib - idle) / 1024:+.0f} MiB over idle), slowest /health {slowest:.0f} ms"
        )
        assert httpx.get(proxy.url + "/health").status_code == 200
    finally:
        proxy.stop()
        mock.stop()
    return results


def bench_cost(iterations: int = 200_000) -> dict:
    """Microseconds per request of the browser guard and of the value checks, in-process."""
    from ccproxy_core.runtime.settings import Settings
    from ccproxy_core.safe_values import new_request_id, redact_query, safe_text
    from ccproxy_core.security.browser_guard import BrowserGuard

    async def app(scope, receive, send) -> None:
        return None

    guard = BrowserGuard(app, Settings(), refusals=__import__("collections").Counter())
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "scheme": "http",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"x-api-key", b"k"),
            (b"anthropic-version", b"2023-06-01"),
            (b"user-agent", b"claude-cli/2.0.1 (external, cli)"),
            (b"content-length", b"120"),
            (b"accept", b"application/json"),
        ],
    }

    async def run_guard() -> float:
        started = time.perf_counter()
        for _ in range(iterations):
            await guard(scope, None, None)
        return (time.perf_counter() - started) / iterations * 1e6

    guard_us = asyncio.run(run_guard())
    started = time.perf_counter()
    for _ in range(iterations):
        new_request_id()
        safe_text("/v1/messages", 2048)
        redact_query(b"", 2048)
        safe_text("claude-cli/2.0.1 (external, cli)", 512)
        safe_text("claude-sonnet-4-5", 256)
    values_us = (time.perf_counter() - started) / iterations * 1e6
    print(f"cost per request: browser guard {guard_us:.2f} us; value checks on arrival {values_us:.2f} us")
    texts = {"error_text_ms": error_text_milliseconds(), "scan_s": scan_seconds(), "form_ms": form_type_milliseconds()}
    texts["bomb_ms"] = bomb_decode_milliseconds()
    return {"guard_us": guard_us, "values_us": values_us, **texts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["reads", "sizes", "cost", "all"])
    parser.add_argument("--workers", type=int, default=1, help="SERVER__WORKERS of the proxy in the reads part")
    arguments = parser.parse_args()
    part = arguments.part
    with tempfile.TemporaryDirectory(prefix="ccproxy-hostile-") as tmp:
        workdir = Path(tmp)
        if part in ("cost", "all"):
            bench_cost()
        if part in ("sizes", "all"):
            bench_sizes(workdir)
        if part in ("reads", "all"):
            bench_reads(workdir, workers=arguments.workers)


if __name__ == "__main__":
    main()
