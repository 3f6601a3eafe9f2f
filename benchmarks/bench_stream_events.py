"""How long reading a hostile Anthropic stream's events takes, per megabyte, on the event loop.

A provider (or whatever answers at the base URL) chooses how its events are named and cut: tens of
thousands of small events a megabyte, each of which the reader must place (a ``ping`` whose data
says ``message_stop``, a ``message_delta`` under another name, a stop buried in another event's
data). Each stream is fed in 1 MiB reads, as a compressed answer arrives once decoded; the figure
should stay near that of an ordinary stream of the same size, never grow with the square of it.

    python benchmarks/bench_stream_events.py [--megabytes 10]
"""

from __future__ import annotations

import argparse
import json
import time

from ccproxy_core.accounting.usage import StreamUsageParser

START = (
    b"event: message_start\ndata: "
    + json.dumps(
        {
            "type": "message_start",
            "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 25, "output_tokens": 1}},
        }
    ).encode()
    + b"\n\n"
)
END = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":15}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
)
EVENTS = {
    "ordinary text deltas": b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hello"}}\n\n',
    "pings saying message_stop": b'event: ping\ndata: {"type":"message_stop"}\n\n',
    "the same, CRLF": b'event: ping\r\ndata: {"type":"message_stop"}\r\n\r\n',
    "renamed message_delta": b'event: other\ndata: {"type":"message_delta","usage":{"output_tokens":15}}\n\n',
    "stops inside one event": b'event: content_block_delta\ndata: {"type":"content_block_delta","x":['
    + b'{"type":"message_stop"},' * 40_000
    + b"1]}\n\n",
}


def seconds_to_read(stream: bytes) -> float:
    parser = StreamUsageParser("anthropic")
    started = time.perf_counter()
    for start in range(0, len(stream), 1 << 20):
        parser.feed(stream[start : start + (1 << 20)])
    parser.result()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=10)
    size = int(parser.parse_args().megabytes * 1e6)
    for name, event in EVENTS.items():
        stream = START + event * max(1, size // len(event)) + END
        seconds = seconds_to_read(stream)
        print(
            f"{name:28s} {len(stream) / 1e6:6.1f} MB  {seconds * 1000:8.1f} ms  ({seconds * 1e9 / len(stream):6.1f} ms per MB)"
        )


if __name__ == "__main__":
    main()
