"""What the mock saw: the last requests it received, and how its answers ended."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-goog-api-key"})


def redact_secret(value: str) -> str:
    """What the recorder keeps instead of a secret header value: a short fingerprint of it.

    Tests compare ``redact_secret("sk-test")`` with the recorded value to check that a
    key was forwarded (or injected) without the mock ever keeping the key itself.
    """
    return "redacted:sha256:" + hashlib.sha256(value.encode("latin-1", "replace")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived: header names in their received case and order, body bytes exact."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as served on ``GET /_mock/requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(pair) for pair in self.headers],
            "body": self.body.decode("utf-8", "replace"),
            "body_base64": base64.b64encode(self.body).decode("ascii"),
            "received_at": self.received_at,
        }


class RequestRecorder:
    """A bounded, thread-safe log of received requests, oldest first."""

    def __init__(self, limit: int) -> None:
        self._requests: deque[ReceivedRequest] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._enabled = limit > 0

    def record(self, method: str, path: str, query: str, raw_headers: Any, body: bytes) -> None:
        """Keep one request; secret header values are replaced by :func:`redact_secret`."""
        if not self._enabled:
            return
        headers = tuple(_decoded_header(name, value) for name, value in raw_headers)
        received = ReceivedRequest(method, path, query, headers, body, time.time())
        with self._lock:
            self._requests.append(received)

    def snapshot(self) -> list[ReceivedRequest]:
        """The kept requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget every kept request."""
        with self._lock:
            self._requests.clear()


def _decoded_header(raw_name: bytes, raw_value: bytes) -> tuple[str, str]:
    name = raw_name.decode("latin-1")
    value = raw_value.decode("latin-1")
    if name.lower() in SECRET_HEADERS:
        return name, redact_secret(value)
    return name, value


@dataclass(slots=True)
class AnswerStats:
    """Counts of answers, updated on the server's loop (reads from other threads are safe ints)."""

    in_progress: int = 0
    completed: int = 0
    """Answers sent to the end, including error answers and injected aborts."""
    client_disconnects: int = 0
    """Answers cut short because the client closed the connection first."""

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form, as served on ``GET /_mock/stats``."""
        return {
            "answers_in_progress": self.in_progress,
            "answers_completed": self.completed,
            "client_disconnects": self.client_disconnects,
        }
