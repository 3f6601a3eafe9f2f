"""Warnings of the libraries ccproxy runs (OpenTelemetry's exporters, database drivers) kept readable.

Some log every retry of something that is down: an OpenTelemetry collector that cannot be reached
gave some 1,300 lines an hour. Each kind of line (the logger and its message's template) is written
once a minute at most; the next one says how many were held back. ccproxy's own lines, which it
limits itself where a client or a failing sink could repeat them, and uvicorn's, pass as they are.
"""

from __future__ import annotations

import logging
import threading
import time

OWN_LOGGERS = ("ccproxy", "uvicorn")
INTERVAL_SECONDS = 60.0
_MOST_KINDS = 256
"""Kinds of line remembered; past that the memory starts again (a bound, as texts are not ccproxy's)."""


class LibraryWarningsLimited(logging.Filter):
    """One line per kind of library warning or error per :data:`INTERVAL_SECONDS`."""

    def __init__(self) -> None:
        super().__init__()
        self._kinds: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(OWN_LOGGERS):
            return True
        kind, now = (record.name, str(record.msg)), time.monotonic()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now < seen[0]:
                seen[1] += 1
                return False
            if len(self._kinds) >= _MOST_KINDS:
                self._kinds.clear()
            self._kinds[kind] = [now + INTERVAL_SECONDS, 0]
        held_back = int(seen[1]) if seen is not None else 0
        if held_back:
            record.msg = f"{record.getMessage()} ({held_back} more like this in the last minute were not logged)"
            record.args = None
        return True
