"""Limits uvicorn does not set itself: request head size and time, open connections, buffered bodies.

uvicorn stays the server and httptools its HTTP parser (the faster of its two; h11 has a
head-size limit but costs more per request, see docs/security.md). httptools has no limit
on the size of a request head and uvicorn no deadline for it, so one thin protocol subclass
adds both, plus a cap on open connections answered with a clear 503:

- ``SERVER__MAX_HEADER_BYTES``: a request head (request line and headers) larger than this
  gets 431 and the connection is closed; at most one read beyond the limit is ever held.
- ``SERVER__HEADER_TIMEOUT_SECONDS``: a connection that has not sent a whole request head
  this long after connecting (or after starting its next request) is closed. Idle
  keep-alive connections are closed by uvicorn after ``SERVER__KEEP_ALIVE_TIMEOUT_SECONDS``.
- ``SERVER__MAX_CONNECTIONS``: a connection beyond this many gets 503 and is closed; one
  that sends nothing is closed after :data:`OVER_CAPACITY_SECONDS`, so idle connections
  beyond the cap cannot hold file descriptors for long. :func:`open_file_limit` raises the
  process's own limit on them to fit the cap.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.runtime.unread_answers import UnreadAnswerWatch

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

BROKEN_BODY = "ccproxy.broken_body"
"""Scope key set to the 400's message when a request's body could not be parsed (its chunked framing):
the app, which sees only a disconnect, records the 400 the client was sent."""
OVER_CAPACITY_SECONDS = 1.0
"""How long a connection beyond SERVER__MAX_CONNECTIONS may wait to send its request (then answered 503)."""

log = logging.getLogger("ccproxy.server")
# One log per kind of refusal: a flood of one kind must not hide the first line of another.
_connections_log, _heads_log, _requests_log = RateLimitedLog(log), RateLimitedLog(log), RateLimitedLog(log)


FILES_OF_ITS_OWN = 256
"""Open files ccproxy needs beside its connections: log files, stores, the hub's channel."""


def open_file_limit(max_connections: int, upstream_connections: int) -> str | None:
    """Raise this process's soft limit on open files (``ulimit -n``, often 1024) to fit ``max_connections``
    clients and ``upstream_connections`` to the providers; a warning naming the settings when the hard limit is lower."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + upstream_connections + FILES_OF_ITS_OWN
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target >= needed:
        return None
    return (
        f"this process may open only {target} files (the hard limit of ulimit -n), but SERVER__MAX_CONNECTIONS="
        f"{max_connections} and UPSTREAM__MAX_CONNECTIONS need about {needed}: connections beyond it will fail. "
        "Lower SERVER__MAX_CONNECTIONS, or raise the limit (LimitNOFILE= in a systemd unit)"
    )


MAX_CHUNKS = 1_000_000
"""The most chunks of one chunked body: each costs the event loop a call or two however small (a third of a
second for a million), and the largest body allowed in 1-byte chunks would hold it for some 12 s."""


class _TooManyChunks(Exception):
    """Raised in the parser's body callback: it stops parsing there (uvicorn then answers 400)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits one server applies to each connection."""

    max_header_bytes: int
    header_timeout_seconds: float
    max_connections: int
    send_timeout_seconds: float = 0.0
    """How long an answer handed over whole may wait unread in the connection's buffer (0: for ever)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head size limit, a head deadline and a connection cap."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._head_bytes = 0
        self._reading_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._over_capacity = False
        self._head_refused = False
        self._refused: str | None = None
        """Why this request's head is refused: it is never handed to the app."""
        self._refusal_status = (400, "Bad Request")
        self._head_counted_in_part = False
        """This head began in a read counted as the previous request's: measure it whole when complete."""
        self._framing_bytes = 0
        """Bytes read since the body's last byte: chunk size lines, their extensions, trailer fields.
        httptools holds a trailer field whole before handing it on, so these are bounded as a head is."""
        self._unread = UnreadAnswerWatch(limits.send_timeout_seconds)
        self._chunks = 0
        """The chunks of the chunked body being read (0 for a body that is not chunked)."""
        self._chunked = False
        self._answering: RequestResponseCycle | None = None
        """The request being answered; those pipelined behind it wait in uvicorn's queue."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Counted after uvicorn added this connection: beyond the cap, answer the request and close.
        self._over_capacity = len(self.connections) > self._limits.max_connections
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self._unread.stop()
        super().connection_lost(exc)
        # uvicorn tells only the newest request: with requests pipelined behind it, the one being
        # answered would write to a closed connection (an error, not a client that left).
        answering = self._answering
        if answering is not None and answering is not self.cycle and not answering.response_complete:
            answering.disconnected = True
            answering.message_event.set()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        if self._over_capacity:
            _connections_log.log_in_loop(
                f"refused connections beyond SERVER__MAX_CONNECTIONS={self._limits.max_connections}",
                "refused a connection: %d are open (SERVER__MAX_CONNECTIONS=%d)",
                len(self.connections),
                self._limits.max_connections,
            )
            self._reply_and_close(
                503,
                "Service Unavailable",
                f"ccproxy has SERVER__MAX_CONNECTIONS={self._limits.max_connections} connections "
                "open; retry later, or raise that setting",
            )
            return
        if self._reading_head:
            self._head_bytes += len(data)
        else:
            self._framing_bytes += len(data)
        super().data_received(data)
        if self._refused is not None:
            self.flow.pause_reading()  # nothing after the refused head is read
            if self.cycle is None or self.cycle.response_complete:
                self._refuse_head()
            return  # else the refusal follows the answers in flight (on_response_complete), in order
        too_large = self._head_refused or (self._reading_head and self._head_bytes > self._limits.max_header_bytes)
        if too_large and not self.transport.is_closing():
            _heads_log.log_in_loop(
                f"refused request heads larger than SERVER__MAX_HEADER_BYTES={self._limits.max_header_bytes}",
                "refused a request head larger than SERVER__MAX_HEADER_BYTES=%d from %s",
                self._limits.max_header_bytes,
                self.client[0] if self.client else "?",
            )
            self._refuse_after_answers(
                (431, "Request Header Fields Too Large"),
                f"the request line and headers are larger than SERVER__MAX_HEADER_BYTES="
                f"{self._limits.max_header_bytes}",
            )
        elif self._framing_bytes > self._limits.max_header_bytes and not self.transport.is_closing():
            self._refuse_body(
                "the chunked body's framing between its data (a chunk's size line and extensions, or the "
                f"trailer fields) is larger than SERVER__MAX_HEADER_BYTES={self._limits.max_header_bytes}"
            )

    def _refuse_after_answers(self, status: tuple[int, str], message: str) -> None:
        """Refuse now, or, while an earlier request of this connection is being answered, once its
        answer is sent: a pipelined request ahead of a refused one is answered (and recorded) in full."""
        if self.cycle is None or self.cycle.response_complete:
            self._reply_and_close(*status, message)
            return
        self.flow.pause_reading()
        self._head_refused = False
        if self._refused is None:
            self._refused, self._refusal_status = message, status

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # After the previous head, reads were not counted: this one's first bytes went uncounted.
        self._head_counted_in_part = not self._reading_head
        self._reading_head = True  # bytes are counted from the end of the previous message on
        self._framing_bytes = 0
        if self._head_timer is None:
            self._start_head_timer()

    def _should_upgrade(self) -> bool:
        return self._refused is None and super()._should_upgrade()  # a refused head is not upgraded either

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._reading_head:  # after the head, a trailer field: never merged into the request's headers
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_head_timer()
        if self._refused is not None or self._head_refused:  # a head after a refused one: never answered
            return
        self._refused = self._head_refusal()
        if self._refused is not None:
            return
        # A whole head can arrive in one read, parsed before data_received can look: measure it
        # here when this read was large enough to hold one too large (it may hold body bytes too).
        if (
            self._head_bytes > self._limits.max_header_bytes or self._head_counted_in_part
        ) and self._parsed_head_bytes() > self._limits.max_header_bytes:
            self._head_refused = True  # never handed to the app; data_received answers 431
            return
        self._chunks = 0  # and _chunked, set by _head_refusal's look at the headers
        if self.parser.should_upgrade() and not self._should_upgrade():
            # httptools stops at the head of an upgrade; what follows would be read as a new request,
            # the body of this one (a request smuggled past a proxy in front) or its lost body (curl --http2).
            self._refused = _upgrade_refusal(self.parser.get_method(), self._get_upgrade() or b"")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._framing_bytes = 0
        if self._chunked:
            self._chunks += 1
            if self._chunks > MAX_CHUNKS:  # refused before the rest of this read is parsed: no request after it
                raise _TooManyChunks
        if not self._head_refused and self._refused is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._head_refused or self._refused is not None:
            return
        super().on_message_complete()
        self._head_bytes = 0

    def _head_refusal(self) -> str | None:
        """Why a whole head is refused: a transfer coding other than chunked (its bytes would be forwarded as
        the body), Host headers a check and the proxy could read differently, or an upgrade whose body would be
        read as WebSocket frames (or never, holding the connection). Notes whether the body is chunked, from
        the same look at the headers."""
        hosts, codings = 0, []
        for name, value in self.headers:
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                codings.append(value)
        self._chunked = bool(codings)  # a coding other than chunked is refused below
        if codings and b", ".join(codings).strip().lower() != b"chunked":
            return "ccproxy takes Transfer-Encoding: chunked only; send a compressed body with Content-Encoding"
        if hosts > 1:
            return "the request has more than one Host header (RFC 9112 3.2)"
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):  # HTTP/0.9 has no headers: no Host for the browser guard to check
            return f"ccproxy serves HTTP/1.1 and HTTP/1.0; this request line says HTTP/{version}"
        if hosts == 0 and version == "1.1":
            return "an HTTP/1.1 request needs a Host header (RFC 9112 3.2)"
        if self.parser.should_upgrade() and self._should_upgrade() and _has_body(self.headers):
            return "a WebSocket upgrade request carries no body (no Content-Length or Transfer-Encoding)"
        return None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._unread.answered(self)
        if self._refused is not None and (self._answering is None or self._answering.response_complete):
            self._refuse_head()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unread.stop()

    def _refuse_head(self) -> None:
        if not self.transport.is_closing():
            client = self.client[0] if self.client else "?"
            _requests_log.log_in_loop("refused requests", "refused a request from %s: %s", client, self._refused)
            self._reply_and_close(*self._refusal_status, self._refused or "")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes httptools cannot parse, as JSON like every other refusal."""
        if self._chunks > MAX_CHUNKS:
            self._refuse_body(f"the chunked body comes in more than {MAX_CHUNKS:,} chunks; send it in larger ones")
            return
        self._refuse_body(
            "the request is not valid HTTP/1.1: its request line, a header (a control character, a bad "
            f"or repeated Content-Length) or its chunked framing is malformed ({msg.rstrip('.')})"
        )

    def _refuse_body(self, message: str) -> None:
        """Answer 400 and close: the app records the request whose body broke off as that 400."""
        cycle = self.cycle
        if cycle is not None and cycle.more_body and cycle.response_started:
            # Answered before its body was read (a refusal): the rest is not read, and no second answer
            # follows the one sent, where the client would take it for its next request's.
            self.flow.pause_reading()
            cycle.keep_alive = False
            if cycle.response_complete:
                self.transport.close()
            return
        if cycle is not None and cycle is self._answering and cycle.more_body and not cycle.response_started:
            cycle.scope[BROKEN_BODY] = message  # type: ignore[literal-required]
            self._reply_and_close(400, "Bad Request", message)
            return
        # A later request of the pipeline broke: it never starts, and the ones before it are answered first.
        # The newest request is that one only while its body is being read: a head that broke after its
        # body is the next request's, which never had one of its own.
        if cycle is not None and cycle.more_body:
            self.pipeline = type(self.pipeline)(entry for entry in self.pipeline if entry[0] is not cycle)
        self._refuse_after_answers((400, "Bad Request"), message)

    def _parsed_head_bytes(self) -> int:
        """The request line and headers as sent (their separators included)."""
        return len(self.url) + 20 + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _start_head_timer(self) -> None:
        seconds = OVER_CAPACITY_SECONDS if self._over_capacity else self._limits.header_timeout_seconds
        self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # still answering the previous request; its successor's deadline starts later
        if self._head_bytes:
            self._reply_and_close(
                408,
                "Request Timeout",
                "the request head did not arrive within "
                f"SERVER__HEADER_TIMEOUT_SECONDS={self._limits.header_timeout_seconds:g}",
            )
        else:
            self.transport.close()  # a connection that never sent a byte gets no answer

    def _reply_and_close(self, status: int, reason: str, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0") for name, value in headers
    )


def _upgrade_refusal(method: bytes, protocol: bytes) -> str:
    if method == b"CONNECT":  # httptools reads it as an upgrade
        return "ccproxy is no forward proxy: CONNECT is refused. Point the client's base URL at ccproxy instead"
    name = protocol.decode("latin-1")[:40]
    return (
        f"ccproxy does not switch protocols (Upgrade: {name}); only WebSocket upgrades are taken. "
        "Send the request without Connection: Upgrade (curl: --http1.1, not --http2)"
    )
