"""Python load for the scale and memory runs: many held streams, or a steady mixed load."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field

import aiohttp

from benchlib.ttfb_client import HEADERS, percentile
from benchlib.wrk import request_body_file

ANTHROPIC_END = b"event: message_stop"
OPENAI_END = b"data: [DONE]"


@dataclass
class StreamOutcome:
    """One held stream: when it got its first byte and its end, and whether it ended properly."""

    ok: bool
    ttfb: float
    duration: float
    error: str | None = None


async def hold_stream(session: aiohttp.ClientSession, url: str, delta_interval_ms: int) -> StreamOutcome:
    """One streamed Messages request, read to the end; ``ok`` when it ended with ``message_stop``."""
    body = request_body_file(stream=True).read_bytes().rstrip()
    headers = {**HEADERS, "x-mock-delta-interval-ms": str(delta_interval_ms)}
    started = time.perf_counter()
    ttfb = None
    try:
        async with session.post(url, data=body, headers=headers) as response:
            received = bytearray()
            async for chunk in response.content.iter_any():
                if ttfb is None:
                    ttfb = time.perf_counter() - started
                received += chunk
            ok = response.status == 200 and ANTHROPIC_END in received
            error = None if ok else f"status {response.status}, ended properly: {ANTHROPIC_END in received}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    duration = time.perf_counter() - started
    return StreamOutcome(ok=ok, ttfb=ttfb if ttfb is not None else duration, duration=duration, error=error)


def summarise_streams(outcomes: list[StreamOutcome]) -> dict:
    ttfbs = sorted(outcome.ttfb for outcome in outcomes)
    durations = sorted(outcome.duration for outcome in outcomes)
    errors = [outcome.error for outcome in outcomes if not outcome.ok]
    return {
        "streams": len(outcomes),
        "completed": len(outcomes) - len(errors),
        "errors": len(errors),
        "first_errors": errors[:5],
        "ttfb_ms": {
            "p50": percentile(ttfbs, 50),
            "p99": percentile(ttfbs, 99),
            "max": ttfbs[-1] * 1000 if ttfbs else None,
        },
        "duration_s": {
            "min": durations[0] if durations else None,
            "p50": (percentile(durations, 50) or 0) / 1000,
            "max": durations[-1] if durations else None,
        },
    }


# The steady mixed load of the memory run: both providers, JSON and streams, a few models, some errors.
def _anthropic(model: str, stream: bool, extra: dict | None = None) -> tuple[str, bytes, dict]:
    body = json.loads(request_body_file(stream).read_bytes())
    body["model"] = model
    return "/v1/messages", json.dumps(body).encode(), {**HEADERS, **(extra or {})}


def _openai(model: str, stream: bool) -> tuple[str, bytes, dict]:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "Summarise this diff. " * 20}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {
        "content-type": "application/json",
        "authorization": "Bearer sk-bench-not-a-real-key",
        "user-agent": "ccproxy-bench/1.0",
    }
    return "/v1/chat/completions", json.dumps(body).encode(), headers


MIXED_REQUESTS = [
    _anthropic("claude-haiku-4-5", stream=False),
    _anthropic("claude-sonnet-4-5", stream=True, extra={"x-mock-delta-interval-ms": "5"}),
    _openai("gpt-4o-mini", stream=False),
    _openai("gpt-4o", stream=True),
    _anthropic("claude-opus-4-1", stream=True),
    _anthropic("claude-haiku-4-5", stream=False, extra={"x-mock-status": "429"}),
    _anthropic("claude-sonnet-4-5", stream=False),
    _openai("gpt-4o-mini", stream=True),
]


@dataclass
class SteadyLoad:
    """Sends the mixed requests at about ``rate`` per second from ``workers`` workers until stopped.

    Each worker waits for its answer before sending again, so the rate is kept only while an
    answer takes less than ``workers / rate`` seconds (320 ms at 200 req/s): enough for streams
    on a machine that other work slows down.
    """

    base_url: str
    rate: float
    workers: int = 64
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            requests = itertools.cycle(MIXED_REQUESTS)
            await asyncio.gather(*(self._worker(session, requests) for _ in range(self.workers)))

    async def _worker(self, session: aiohttp.ClientSession, requests: itertools.cycle) -> None:
        interval = self.workers / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            path, body, headers = next(requests)
            try:
                async with session.post(self.base_url + path, data=body, headers=headers) as response:
                    await response.read()
                    self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
            except (TimeoutError, aiohttp.ClientError):
                self.failures += 1
            self.sent += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
            else:
                next_at = time.monotonic()  # behind: do not burst to catch up
