"""One push over HTTP that ends by its deadline, however slowly the gateway answers.

urllib's timeout bounds each read of the socket, not the request: a gateway that sends its
answer a byte at a time kept a push, and the thread it ran in, waiting for ever; every later
push then failed as "still waiting", and the process could not exit. Here a timer shuts the
push's connection down when its time is up, which ends the read under way with an error.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import threading
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any

Handler = Callable[[str, str, float | None, list[tuple[str, str]], bytes], Callable[[], None]]
"""The ``handler`` argument of ``prometheus_client.push_to_gateway``."""
DEFAULT_TIMEOUT_SECONDS = 30.0
"""The deadline of a push given no timeout (prometheus_client's own default timeout)."""


class Deadline:
    """Shuts down every socket it watches once ``seconds`` have passed (or at once, if they have)."""

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._passed = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._pass)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()

    @property
    def passed(self) -> bool:
        """Whether the time is up (and the sockets watched were shut down)."""
        with self._lock:
            return self._passed

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the time is up."""
        with self._lock:
            self._sockets.append(sock)
            passed = self._passed
        if passed:
            _shut_down(sock)

    def _pass(self) -> None:
        with self._lock:
            self._passed = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


def _watched(connection_class: type[http.client.HTTPConnection], deadline: Deadline) -> Any:
    """``connection_class``, its socket handed to ``deadline`` as soon as it is connected."""

    class Watched(connection_class):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPSConnection, self._deadline), req, context=self._context)  # type: ignore[attr-defined]


def deadline_handler(username: str | None = None, password: str | None = None) -> Handler:
    """A push handler whose request ends within its ``timeout`` in all; basic auth when ``username`` is given.

    Everything else is urllib's, as in prometheus_client's own handlers (proxies from the
    environment, HTTPS); an answer of 400 or more is an error.
    """

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes) -> Any:
        def push() -> None:
            request = urllib.request.Request(url, data=data, method=method)
            for name, value in headers:
                request.add_header(name, value)
            if username is not None:
                token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
                request.add_header("Authorization", f"Basic {token}")
            seconds = timeout if timeout is not None else DEFAULT_TIMEOUT_SECONDS
            with Deadline(seconds) as deadline:
                opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
                try:
                    with opener.open(request, timeout=timeout) as response:
                        status, reason = response.status, response.reason
                except (OSError, http.client.HTTPException):
                    if deadline.passed:
                        raise TimeoutError(f"timed out: no whole answer within {seconds:g}s") from None
                    raise
            if deadline.passed:  # cut off: what was read of the answer may look whole (headers end at EOF)
                raise TimeoutError(f"timed out: no whole answer within {seconds:g}s")
            if status >= 400:
                raise OSError(f"error talking to pushgateway: {status} {reason}")

        return push

    return handler
