"""Threads for a plugin's background work, scheduled below the event loop that serves proxied requests.

On a busy machine the kernel then runs the loop first and a store's heavy query in the time
left over. Linux schedules each thread with its own niceness; elsewhere these helpers change
nothing but still run the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

BACKGROUND_NICENESS = 10
"""Added to a background thread's niceness: the kernel then gives it about a tenth of a busy core's time."""


def lower_thread_priority() -> None:
    """Make the calling thread, and the threads it starts from now on, yield to the event loop."""
    if sys.platform != "linux":
        return
    thread_id = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread_id)
        os.setpriority(os.PRIO_PROCESS, thread_id, min(19, niceness + BACKGROUND_NICENESS))
    except OSError:  # a sandbox that forbids it: the work still runs, at normal priority
        pass


def background_executor(max_workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads run below the event loop's priority."""
    return ThreadPoolExecutor(max_workers, thread_name_prefix=name, initializer=lower_thread_priority)


async def run_in_background_thread(
    name: str, function: Callable[..., T], *args: Any, finish_before_exit: bool = False
) -> T:
    """``function(*args)`` in a new background thread, awaited.

    A new thread rather than a pool's, so that threads ``function`` starts (a database's own
    workers, say) inherit the lower priority and no shared thread keeps it. With
    ``finish_before_exit``, the process waits for ``function`` to end before it exits, even when the
    task awaiting it was cancelled: a thread stopped at exit inside DuckDB's C++ code aborts the process.
    """
    future: Future[T] = Future()

    def run() -> None:
        lower_thread_priority()
        try:
            result = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, which raises it
            with contextlib.suppress(InvalidStateError):  # cancelled: nobody waits for it any more
                future.set_exception(exc)
        else:
            with contextlib.suppress(InvalidStateError):
                future.set_result(result)

    threading.Thread(target=run, name=name, daemon=not finish_before_exit).start()
    return await asyncio.wrap_future(future)
