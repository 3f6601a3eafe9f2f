"""Cheap unique ids and clock strings for the mock's answers (no per-request randomness)."""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime, timedelta


class Sequence:
    """Numbers one provider's requests; ids are a random per-server prefix plus the number.

    The number also drives the ``requests remaining`` rate-limit header, so a fresh
    server's first request reports ``limit - 1``, the next ``limit - 2``, and so on.
    """

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._prefix = secrets.token_hex(5)

    def next(self) -> int:
        """The next request number, from 0."""
        return next(self._counter)

    def make_id(self, kind: str, number: int) -> str:
        """An id like ``msg_01a1b2c3d4e5000000000007``, unique for this server."""
        return f"{kind}{self._prefix}{number:012d}"


class ResetClock:
    """``now + seconds`` as an RFC 3339 string, recomputed at most once a second."""

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._second = -1
        self._stamp = ""

    def stamp(self) -> str:
        """The reset time of a rate-limit window that starts now."""
        second = int(time.time())
        if second != self._second:
            reset = datetime.fromtimestamp(second, UTC) + timedelta(seconds=self._seconds)
            self._stamp = reset.strftime("%Y-%m-%dT%H:%M:%SZ")
            self._second = second
        return self._stamp
