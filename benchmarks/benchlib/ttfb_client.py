"""A small closed-loop HTTP load client that also measures time to first byte (wrk cannot).

``concurrency`` workers each send the benchmark's Messages request over a kept-alive
connection, wait for the first body bytes (time to first byte), read to the end (total
latency), and start the next one. Requests started during the warm-up are not counted.

    python benchmarks/benchlib/ttfb_client.py URL --concurrency 64 --seconds 5 [--stream]
                                              [--delta-interval-ms 25 --stagger 0.5 --warmup 1]

prints one JSON object: requests, seconds, errors, p50/p99 of total latency and of TTFB (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib.wrk import request_body_file

HEADERS = {
    "content-type": "application/json",
    "x-api-key": "sk-ant-bench-not-a-real-key",
    "anthropic-version": "2023-06-01",
    "user-agent": "ccproxy-bench/1.0",
}


class Samples:
    """(started, first byte, finished) per counted request, and errors."""

    def __init__(self, count_from: float, stop_at: float) -> None:
        self.count_from, self.stop_at = count_from, stop_at
        self.timings: list[tuple[float, float, float]] = []
        self.errors = 0

    def add(self, started: float, first_byte: float, finished: float, ok: bool) -> None:
        if started < self.count_from:
            return
        if ok:
            self.timings.append((started, first_byte, finished))
        else:
            self.errors += 1

    def summary(self, seconds: float) -> dict:
        done_in_window = sum(1 for _, _, finished in self.timings if finished <= self.stop_at)
        totals = sorted(finished - started for started, _, finished in self.timings)
        firsts = sorted(first - started for started, first, _ in self.timings)
        return {
            "requests": done_in_window,
            "seconds": seconds,
            "errors": self.errors,
            "p50_ms": percentile(totals, 50),
            "p99_ms": percentile(totals, 99),
            "ttfb_p50_ms": percentile(firsts, 50),
            "ttfb_p99_ms": percentile(firsts, 99),
        }


def percentile(sorted_seconds: list[float], pct: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_seconds:
        return None
    rank = max(1, round(pct / 100 * len(sorted_seconds)))
    return sorted_seconds[min(rank, len(sorted_seconds)) - 1] * 1000


async def worker(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict, samples: Samples, delay: float
) -> None:
    await asyncio.sleep(delay)
    clock = time.perf_counter
    while clock() < samples.stop_at:
        started = clock()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.content.readany()
                first_byte = clock()
                while await response.content.readany():
                    pass
                ok = response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            first_byte, ok = clock(), False
        samples.add(started, first_byte, clock(), ok)


async def run(
    url: str,
    concurrency: int,
    seconds: float,
    warmup: float,
    stream: bool,
    delta_interval_ms: int | None,
    stagger: float = 0.0,
) -> dict:
    """Load ``url`` with ``concurrency`` workers for ``warmup`` + ``seconds``; figures for the last ``seconds``.

    Worker ``i`` starts ``i * stagger / concurrency`` seconds late: answers that all last the
    same time (paced streams) would otherwise keep arriving in bursts of ``concurrency``.
    """
    body = request_body_file(stream).read_bytes().rstrip()
    headers = dict(HEADERS)
    if delta_interval_ms:
        headers["x-mock-delta-interval-ms"] = str(delta_interval_ms)
    start = time.perf_counter()
    samples = Samples(count_from=start + warmup, stop_at=start + warmup + seconds)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        await asyncio.gather(
            *(worker(session, url, body, headers, samples, i * stagger / concurrency) for i in range(concurrency))
        )
    return samples.summary(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--delta-interval-ms", type=int, default=None)
    parser.add_argument("--stagger", type=float, default=0.0, help="spread the workers' starts over this many seconds")
    args = parser.parse_args()
    if args.stagger > args.warmup:
        parser.error("--stagger must not exceed --warmup, or the staggered start would be measured")
    try:
        import uvloop
    except ImportError:
        uvloop = None
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None)
    with runner:
        result = runner.run(
            run(
                args.url, args.concurrency, args.seconds, args.warmup, args.stream, args.delta_interval_ms, args.stagger
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
