"""What one upstream request costs the proxy's HTTP client: aiohttp against httpx, and aiohttp with ccproxy's
connection protocol (``upstream_protocol.py``) against aiohttp's own.

    python benchmarks/bench_upstream_client.py [--requests 20000] [--concurrency 16]

The mock upstream runs as its own process (on CPU 0 when there are two CPUs); this process
(on CPU 1) sends the benchmark's Messages request over a pooled client, as ccproxy does, and
reads each answer to the end: JSON answers, then streamed ones (20 deltas) read chunk by
chunk. It prints the CPU time this process spent per request (user + system, from
``time.process_time``) and the requests per second, for each client, in alternating rounds.
This is the figure behind ccproxy's choice of aiohttp (see ccproxy_core/forwarding/upstream.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

from benchlib.processes import start_mock
from benchlib.ttfb_client import HEADERS
from benchlib.wrk import request_body_file
from ccproxy_core.forwarding.upstream_protocol import use_upstream_protocol

Send = Callable[[], Awaitable[None]]


def aiohttp_sender(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> Send:
    async def send() -> None:
        async with session.post(url, data=body, headers=HEADERS) as response:
            if stream:
                async for _ in response.content.iter_any():
                    pass
            else:
                await response.read()

    return send


def httpx_sender(client: httpx.AsyncClient, url: str, body: bytes, stream: bool) -> Send:
    async def send() -> None:
        async with client.stream("POST", url, content=body, headers=HEADERS) as response:
            if stream:
                async for _ in response.aiter_raw():
                    pass
            else:
                await response.aread()

    return send


async def measure(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU microseconds per request, requests per second) for ``requests`` sends by ``concurrency`` workers."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1e6 / requests, requests / wall


async def compare(
    url: str, stream: bool, requests: int, concurrency: int, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    body = request_body_file(stream).read_bytes().rstrip()
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
    ours = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
    use_upstream_protocol(ours)  # ccproxy's connection protocol: what its own checks cost on every answer
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    results: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "ccproxy": [], "httpx": []}
    # A read timeout, as ccproxy sets one: aiohttp resets its timer on every read.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    async with (
        aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=timeout) as session,
        aiohttp.ClientSession(connector=ours, auto_decompress=False, timeout=timeout) as ours_session,
        httpx.AsyncClient(limits=limits, timeout=60) as client,
    ):
        senders = {
            "aiohttp": aiohttp_sender(session, url, body, stream),
            "ccproxy": aiohttp_sender(ours_session, url, body, stream),
            "httpx": httpx_sender(client, url, body, stream),
        }
        for send in senders.values():  # warm up: open the pools' connections
            await measure(send, concurrency * 20, concurrency)
        for _ in range(rounds):
            for name, send in senders.items():
                results[name].append(await measure(send, requests, concurrency))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    print(
        f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}; {args.requests} requests per round, "
        f"concurrency {args.concurrency}, {args.rounds} rounds, median shown; pinned: {pin}"
    )
    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-") as tmp:
        mock = start_mock(Path(tmp), cpus="0" if pin else None)
        try:
            for stream in (False, True):
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    results = runner.run(
                        compare(mock.url + "/v1/messages", stream, args.requests, args.concurrency, args.rounds)
                    )
                print("streamed answers" if stream else "JSON answers")
                for name, runs in results.items():
                    cpu = statistics.median(run[0] for run in runs)
                    rps = statistics.median(run[1] for run in runs)
                    print(f"  {name:8} {cpu:6.0f} us CPU per request   {rps:7.0f} req/s")
        finally:
            mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
