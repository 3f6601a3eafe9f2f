"""Deadlines on sending requests to a provider, kept by one task for all of them.

A timer per request (``asyncio.timeout``) cost some 3 µs a request, about 1% of the proxy's CPU
at load, for a limit that almost never fires. Instead each send notes its deadline here, and one
task looks once a second for sends past theirs and cancels them; the send turns that cancellation
into ``TimeoutError``. A deadline fires up to a second late.
"""

from __future__ import annotations

import asyncio

SWEEP_SECONDS = 1.0


class SendDeadlinePassed(TimeoutError):
    """Sending a request and reading its answer's head took longer than the connect and read timeouts together
    (and the body's time at ``upstream.SLOWEST_UPLOAD_BYTES_PER_SECOND``)."""


class SendDeadlines:
    """The deadlines of the sends under way on one pool, and the task that enforces them."""

    def __init__(self) -> None:
        self._due: dict[asyncio.Task[object], float] = {}
        self._cancels_before: dict[asyncio.Task[object], int] = {}  # a task's cancel requests when its send began
        self._overdue: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self, seconds: float) -> asyncio.Task[object]:
        """The calling task must be done within ``seconds``; call :meth:`end` with what this returns."""
        task = asyncio.current_task()
        assert task is not None, "a send runs in a task"
        loop = task.get_loop()
        self._due[task] = loop.time() + seconds
        self._cancels_before[task] = task.cancelling()
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        return task

    def timed_out(self, task: asyncio.Task[object]) -> bool:
        """Whether ``task`` was cancelled here for its deadline and by nothing else (a client's hang-up, a
        shutdown): then that cancellation is taken back, and the send is a timeout."""
        if task not in self._overdue:
            return False
        return task.uncancel() <= self._cancels_before.get(task, 0)

    def end(self, task: asyncio.Task[object]) -> None:
        self._due.pop(task, None)
        self._cancels_before.pop(task, None)
        self._overdue.discard(task)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            for task, due in list(self._due.items()):
                if due <= now and task not in self._overdue:
                    self._overdue.add(task)
                    task.cancel()
