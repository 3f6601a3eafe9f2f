"""Log lines that may repeat many times a second (drops, failed inserts) at most once per interval."""

from __future__ import annotations

import logging
import threading
import time

DEFAULT_INTERVAL_SECONDS = 10.0


class RateLimitedLog:
    """Emits the first occurrence at once, then at most one line per ``interval`` saying how many were held back."""

    def __init__(self, logger: logging.Logger, level: int, interval: float | None = None) -> None:
        self._logger = logger
        self._level = level
        self._interval = DEFAULT_INTERVAL_SECONDS if interval is None else interval
        self._last = float("-inf")
        self._held_back = 0
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: object) -> None:
        """Log ``message % args`` unless a line went out less than ``interval`` seconds ago."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._held_back += 1
                return
            held_back, self._held_back, self._last = self._held_back, 0, now
        suffix = f" ({held_back} similar message(s) held back in the last {self._interval:g} s)" if held_back else ""
        self._logger.log(self._level, message + suffix, *args)
