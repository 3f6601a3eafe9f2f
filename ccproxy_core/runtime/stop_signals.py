"""SIGTERM and SIGINT before and after uvicorn handles them.

While it serves, uvicorn takes both over: the first stops the server gracefully, a second SIGINT
forces the exit. When it has stopped, it raises each one it caught again, expecting their default
action to end the process; ccproxy still has log lines and records to write then. So:

- **Before** uvicorn takes them over (while the event loop starts), a stop signal is held, and the
  server stops as soon as it has started: plugins start and stop cleanly and nothing is lost.
  Ignored instead, a SIGTERM sent by a service manager just after the start was lost, and ccproxy
  served on until it was killed.
- **After** it, they are ignored, not caught: Python puts caught signals back to their default while
  it exits, and a late signal of a burst would then kill a process that had stopped cleanly.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_held: list[int] = []


def hold_stop_signals() -> None:
    """From now until the server takes them over, keep SIGTERM and SIGINT for it (main thread only)."""
    _held.clear()
    for sig in STOP_SIGNALS:
        signal.signal(sig, _hold)


def held_stop_signal() -> int | None:
    """The first stop signal that came while they were held, if any."""
    return _held[0] if _held else None


def ignore_held_stop_signals() -> None:
    """Once the server has stopped: ignore SIGTERM and SIGINT from now on, if they were held for it."""
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is _hold:
            signal.signal(sig, signal.SIG_IGN)


def _hold(sig: int, frame: FrameType | None) -> None:
    _held.append(sig)
