"""Log lines that an attacker cannot turn into a flood: at most one per interval, with a count of the rest."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Mapping


class RateLimitedLog:
    """Writes one line per ``interval_seconds`` at most; the next line says how many were held back.

    For events a client can cause at will (a dropped record, a refused request): each is
    still counted by its caller, but the log stays readable. Safe to call from any thread.
    """

    def __init__(self, logger: logging.Logger, interval_seconds: float = 10.0, level: int = logging.WARNING) -> None:
        self.logger, self.interval, self.level = logger, interval_seconds, level
        self._next_at = 0.0
        self._held_back = 0
        self._lock = threading.Lock()
        self._telling: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle, str] | None = None

    def log(
        self, message: str, *args: object, exc_info: bool = False, extra: Mapping[str, object] | None = None
    ) -> None:
        """Log ``message % args`` now, or count it as held back if a line went out less than an interval ago."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_at:
                self._held_back += 1
                return
            held_back, self._held_back = self._held_back, 0
            self._next_at = now + self.interval
        if held_back:
            message += f" ({held_back} more like this since the last such line were not logged)"
        self.logger.log(self.level, message, *args, exc_info=exc_info, extra=extra)

    def log_held_back(self, message: str, *args: object, now_or_never: bool = False) -> None:
        """Log ``message % args`` when lines were held back and the interval has passed (at once with
        ``now_or_never``, for the last call): a burst that stopped is still told in full, without waiting for
        an event that may never come. Call it now and then."""
        now = time.monotonic()
        with self._lock:
            if not self._held_back or (now < self._next_at and not now_or_never):
                return
            held_back, self._held_back = self._held_back, 0
            self._next_at = now + self.interval
        self.logger.log(self.level, message + f" ({held_back} of them not logged one by one)", *args)

    def log_in_loop(self, summary: str, message: str, *args: object) -> None:
        """:meth:`log` from an event loop's callbacks; lines held back are then told by ``summary`` when
        the interval ends, should no later line tell them first (a burst that stopped), or when the
        server stops before that (:func:`tell_held_back_bursts`)."""
        self.log(message, *args)
        loop = asyncio.get_running_loop()
        if self._held_back and (self._telling is None or self._telling[0] is not loop):  # not one of a loop gone
            wait = max(0.0, self._next_at - time.monotonic())
            self._telling = (loop, loop.call_later(wait, self._tell, summary), summary)
            _bursts_to_tell.add(self)

    def tell_now(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell now the burst a timer of ``loop`` was to sum up, and drop that timer."""
        telling = self._telling
        if telling is not None and telling[0] is loop:
            telling[1].cancel()
            self._tell(telling[2])

    def _tell(self, summary: str) -> None:
        self._telling = None
        _bursts_to_tell.discard(self)
        self.log_held_back(summary, now_or_never=True)  # the timer may fire a little early


_bursts_to_tell: weakref.WeakSet[RateLimitedLog] = weakref.WeakSet()


def tell_held_back_bursts() -> None:
    """Sum up now every burst whose summary is still due on the running loop: called as the server stops,
    whose loop would otherwise end before those timers run, and the last seconds' refusals would go untold."""
    loop = asyncio.get_running_loop()
    for lines in list(_bursts_to_tell):
        lines.tell_now(loop)
