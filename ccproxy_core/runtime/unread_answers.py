"""Answers handed over whole and left unread: dropped with their connection once the client reads none of them.

An answer sent whole waits in the connection's transport and the kernel's send queue until the client reads
it. A client that keeps its connection and never reads would hold that memory for as long as it likes; one
whose client has taken none of it for SERVER__SEND_TIMEOUT_SECONDS is dropped with the connection (a stream's
writes are watched as they wait instead: ``send_watch``). Progress counts the kernel's queue too: on loopback
it holds megabytes, and the transport's buffer shrinks only once most of it has drained, so a slow reader
would look idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import struct
import termios
from typing import TYPE_CHECKING

from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_OUTQ = getattr(termios, "TIOCOUTQ", None)
"""The ioctl that tells how many bytes a socket's send queue holds (Linux; elsewhere only the transport's count)."""
_log = RateLimitedLog(logging.getLogger("ccproxy.server"))


class UnreadAnswerWatch:
    """One connection's watch over the answer it has handed over whole."""

    __slots__ = ("_timeout", "_timer", "_unsent")

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = 0

    def answered(self, protocol: HttpToolsProtocol) -> None:
        """An answer is complete: watch it while writing to the client waits (0 seconds: never)."""
        if protocol.flow.write_paused and self._timer is None and self._timeout:
            self._unsent = unsent_bytes(protocol.transport)
            self._timer = protocol.loop.call_later(self._timeout, self._look, protocol)

    def stop(self) -> None:
        """The client took what was waiting (writing resumed), or the connection is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _look(self, protocol: HttpToolsProtocol) -> None:
        self._timer = None
        unsent = unsent_bytes(protocol.transport)  # a transport closing (Connection: close) holds it too
        if not unsent:
            return
        if unsent < self._unsent:  # the client took some meanwhile: it is reading, slowly
            self._unsent = unsent
            self._timer = protocol.loop.call_later(self._timeout, self._look, protocol)
            return
        _log.log(
            "closed the connection of %s, which left its answer unread for SERVER__SEND_TIMEOUT_SECONDS=%g",
            protocol.client[0] if protocol.client else "?",
            self._timeout,
        )
        protocol.transport.abort()


def unsent_bytes(transport: asyncio.Transport) -> int:
    """The bytes written to ``transport`` that its client has not taken: its buffer and the kernel's queue."""
    queued = 0
    sock = transport.get_extra_info("socket")
    if sock is not None and _OUTQ is not None:
        with contextlib.suppress(OSError, ValueError):
            queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    return transport.get_write_buffer_size() + queued
