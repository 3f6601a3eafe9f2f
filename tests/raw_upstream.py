"""A provider that writes exact bytes on the socket: answers no HTTP library would send.

Each request is answered with ``answers[<x-raw header>]`` (bytes, or a list of bytes and pauses
in seconds, sent in turn, or :data:`RESET`), then the connection is closed, so a broken answer
never leaks into the next request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_HEAD_END = b"\r\n\r\n"
RESET = "reset"
"""An answer part: close the connection with a TCP reset instead of a FIN."""


def json_answer(status: bytes, body: bytes, extra_headers: bytes = b"") -> bytes:
    """An HTTP/1.1 answer with a JSON body, its status line and extra header lines given raw."""
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(body)
    return head + extra_headers + b"connection: close\r\n\r\n" + body


def sse(*events: tuple[str, dict]) -> bytes:
    """Server-sent events, each with its ``event:`` name and JSON data."""
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def stream_answer(body: bytes) -> bytes:
    """An event-stream answer whose body ends when the connection closes."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    return head + body


class RawUpstream:
    """Serves ``answers`` on a free loopback port, one thread per connection."""

    def __init__(self, answers: dict[str, bytes | list[bytes | float | str]]) -> None:
        self.answers = answers
        self.received: list[bytes] = []
        """The head of every request, as it arrived."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(ConnectionError):  # ccproxy may close it first (a timeout)
            received = b""
            while _HEAD_END not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                received += chunk
            head, _, body = received.partition(_HEAD_END)
            self.received.append(head)
            lines = [line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line]
            headers = {name.strip().lower(): value.strip() for name, value in lines}
            length = int(headers.get(b"content-length", b"0"))
            while len(body) < length:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                body += chunk
            answer = self.answers[headers.get(b"x-raw", b"").decode()]
            for part in [answer] if isinstance(answer, bytes) else answer:
                if isinstance(part, bytes):
                    connection.sendall(part)
                elif part == RESET:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                else:
                    time.sleep(part)

    def stop(self) -> None:
        self._listener.close()


@contextmanager
def raw_upstream(answers: dict[str, bytes | list[bytes | float | str]]) -> Iterator[RawUpstream]:
    server = RawUpstream(answers)
    try:
        yield server
    finally:
        server.stop()


def upstream_and_proxy_fixtures(answers: dict[str, bytes | list[bytes | float | str]]) -> tuple[Any, Any]:
    """Fixtures for a test module: ``upstream``, a raw upstream serving ``answers`` (one per module), and
    ``proxy``, ccproxy in front of it with the hook recorder. Bind them: ``upstream, proxy = ...``."""

    @pytest.fixture(scope="module")
    def upstream() -> Iterator[RawUpstream]:
        with raw_upstream(answers) as server:
            yield server

    @pytest.fixture
    def proxy(proxy_factory, recorder, upstream):
        return proxy_factory(upstream_url=upstream.url, plugins=[recorder])

    return upstream, proxy
