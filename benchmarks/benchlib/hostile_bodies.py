"""Seconds of worker-thread CPU the top-level scan of a large request body takes on hostile bodies."""

from __future__ import annotations

import time
from collections.abc import Callable

MIB = 1024 * 1024
MESSAGE = b'{"role":"user","content":"' + b"x" * 1000 + b'"},'

BODIES: dict[str, Callable[[], bytes]] = {
    "30 MiB of escaped quotes": lambda: b'{"model":"m","text":"' + b'\\"' * (15 * MIB) + b'"}',
    "30 MiB of backslashes": lambda: b'{"model":"m","text":"' + b"\\" * (30 * MIB) + b'"}',
    "2 MB of repeated model keys": lambda: b"{" + b'"model":1,' * 200_000 + b'"model":"real"}',
    "8 MB of repeated model keys": lambda: b"{" + b'"model":1,' * 800_000 + b'"model":"real"}',
    "30 MiB of empty strings": lambda: b'{"model":"m","input":[' + b'"",' * (10 * MIB) + b'""]}',
    "a real 30 MB conversation": lambda: b'{"messages":[' + MESSAGE * 30_000 + b'{}],"model":"m","stream":true}',
}
"""Bodies built to make the scan for ``model`` and ``stream`` work hard, and a real one to compare."""


def scan_seconds(repeats: int = 3) -> dict[str, float]:
    """The fastest of ``repeats`` scans of each body, in seconds (built one at a time: some are 30 MiB)."""
    from ccproxy_core.forwarding.large_bodies import scan_top_level

    figures = {}
    for name, build in BODIES.items():
        body, runs = build(), []
        for _ in range(repeats):
            started = time.perf_counter()
            scan_top_level(body)
            runs.append(time.perf_counter() - started)
        figures[name] = min(runs)
    print("large-body scan, s each: " + ", ".join(f"{name} {s:.3f}" for name, s in figures.items()))
    return figures
