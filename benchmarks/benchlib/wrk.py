"""Run wrk (the HTTP load generator) with our Lua script and read the figures it prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib.processes import pinned

WRK_DIR = Path(__file__).resolve().parent.parent / "wrk"
SCRIPT = WRK_DIR / "anthropic_messages.lua"


def request_body_file(stream: bool) -> Path:
    """The Messages request body both load generators send (the same bytes)."""
    return WRK_DIR / ("request_stream.json" if stream else "request.json")


MARKER = "WRK_JSON "


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured: throughput, latency percentiles (ms), errors, and TTFB when measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    server_cpu_us_per_request: float | None = None
    """CPU time the server under test spent per request (all its threads), from /proc."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_missing() -> bool:
    """True, after saying how to install it, when wrk is not on the PATH."""
    if shutil.which("wrk") is not None:
        return False
    print("wrk is not installed: apt-get install wrk", file=sys.stderr)
    return True


def run_wrk(
    url: str,
    connections: int,
    seconds: float,
    stream: bool,
    delta_interval_ms: int | None = None,
    cpus: str | None = None,
) -> LoadResult:
    """``connections`` keep-alive connections sending Messages requests to ``url`` for ``seconds``."""
    # One thread: the load generator has one CPU, and two wrk threads sharing it starve each
    # other's connections (p99 of a second at 256 connections).
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(SCRIPT), url]
    script_args = [str(request_body_file(stream))] + ([str(delta_interval_ms)] if delta_interval_ms else [])
    done = subprocess.run(pinned([*command, "--", *script_args], cpus), capture_output=True, text=True, check=True)
    line = next((row for row in done.stdout.splitlines() if row.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(line[len(MARKER) :])
    errors = sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=errors,
    )
