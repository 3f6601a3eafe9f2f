"""What reading hostile input costs: the top-level scan of a large request body (a worker thread's CPU), a
multipart form's ``Content-Type`` and a provider's error message (both read on the event loop), and
decoding a compression bomb up to the decoding limit."""

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


FORM_TYPES: dict[str, str] = {
    "3,000 boundary pieces": "multipart/form-data; " + "; ".join(f"boundary*{i}=ab" for i in range(3000)),
    "a 60 KB escaped boundary": "multipart/form-data; boundary*=utf-8''" + "%41" * 20_000,
    "5,000 parameters beside an escaped boundary": "multipart/form-data; boundary*=utf-8''x; "
    + "; ".join(f"p{i}=v" for i in range(5000)),
    "5,000 parameters beside a plain boundary": "multipart/form-data; boundary=x; "
    + "; ".join(f"p{i}=v" for i in range(5000)),
}
"""Content types as long as a request head may be (``SERVER__MAX_HEADER_BYTES``, 64 KiB by default)."""


def form_type_milliseconds(repeats: int = 20) -> dict[str, float]:
    """Milliseconds to find the boundary of each hostile form content type, the fastest of ``repeats``."""
    from ccproxy_core.forwarding.form_boundary import form_boundary

    figures = {}
    for name, content_type in FORM_TYPES.items():
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            form_boundary(content_type)
            runs.append(time.perf_counter() - started)
        figures[name] = min(runs) * 1000
    print("form content type, ms each: " + ", ".join(f"{name} {ms:.2f}" for name, ms in figures.items()))
    return figures


def error_text_milliseconds(repeats: int = 20) -> dict[str, float]:
    """Milliseconds to make a provider's hostile 4,000-character error message safe (it runs on the event loop)."""
    from ccproxy_core.safe_values import safe_error_text

    texts = {"letters": "a" * 4000, "name=": "a=" * 2000, "scheme": "http://" + "a" * 4000, "pairs": "k=v&" * 1000}
    figures = {}
    for name, text in texts.items():
        started = time.perf_counter()
        for _ in range(repeats):
            safe_error_text(text, 2000)
        figures[name] = (time.perf_counter() - started) / repeats * 1000
    print("hostile error message, ms each: " + ", ".join(f"{name} {ms:.2f}" for name, ms in figures.items()))
    return figures


def _gzip_of_zeros(size: int) -> bytes:
    import zlib

    packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(size >> 20)) + packer.flush()


def bomb_decode_milliseconds(limit: int = 64 << 20) -> dict[str, float]:
    """Milliseconds to decode compression bombs up to ``limit`` (``UPSTREAM__MAX_DECODED_BYTES``), in one chunk."""
    import brotli

    from ccproxy_core.forwarding.decoding import decoder_for

    gzip_bomb = _gzip_of_zeros(4 << 30)
    bombs = {
        f"gzip, {len(gzip_bomb) >> 20} MiB for 4 GiB": ("gzip", gzip_bomb),
        f"gzip then br, {len(brotli.compress(gzip_bomb))} bytes": ("gzip, br", brotli.compress(gzip_bomb)),
    }
    figures = {}
    for name, (encoding, body) in bombs.items():
        decoder = decoder_for(encoding, limit)
        assert decoder is not None
        started = time.perf_counter()
        decoder.decode(body)
        figures[name] = (time.perf_counter() - started) * 1000
    print("compression bomb to the limit, ms each: " + ", ".join(f"{name} {ms:.0f}" for name, ms in figures.items()))
    return figures
