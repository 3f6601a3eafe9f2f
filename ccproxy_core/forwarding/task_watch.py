"""Requests watched by one periodic sweep, each cut (its task cancelled) when the sweep finds cause.

What the hang-up watch and the send watch share: a request costs an entry in a dict while it is
watched, not a timer or a task of its own; the sweep runs only while something is watched; and a
cut is recorded as the watch says, the cancellation that made it taken back, so the request ends
normally with its record.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, Protocol, TypeVar


class Entry(Protocol):
    cut: bool
    """Set by the sweep when it cancelled the entry's task."""


E = TypeVar("E", bound=Entry)

IDLE_SWEEPS = 2
"""Sweeps with nothing watched after which the sweeping task ends (the next entry starts it again)."""


class TaskWatch(Generic[E]):
    """The watched requests of one proxy, and the sweep that cuts those :meth:`must_cut` picks."""

    def __init__(self) -> None:
        self._watched: dict[asyncio.Task[Any], E] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def interval(self) -> float:
        """Seconds between sweeps."""
        raise NotImplementedError

    def must_cut(self, entry: E) -> bool:
        """Whether the sweep should cut this request now."""
        raise NotImplementedError

    def note_cut(self, entry: E) -> None:
        """Record in the entry's exchange why it was cut."""
        raise NotImplementedError

    def scope(self, entry: E) -> WatchScope[E]:
        """A context watching the current task while it runs; ``as`` gives ``entry``."""
        return WatchScope(self, entry)

    def _enter(self, task: asyncio.Task[Any], entry: E) -> None:
        self._watched[task] = entry
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        idle = 0
        try:
            while idle < IDLE_SWEEPS:
                await asyncio.sleep(self.interval())
                idle = 0 if self._watched else idle + 1
                for task, entry in list(self._watched.items()):
                    if not entry.cut and self.must_cut(entry):
                        entry.cut = True
                        task.cancel()
        finally:
            self._sweeper = None


class WatchScope(Generic[E]):
    def __init__(self, watch: TaskWatch[E], entry: E) -> None:
        self._watch, self._entry = watch, entry
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> E:
        self._task = asyncio.current_task()
        if self._task is not None:
            self._watch._enter(self._task, self._entry)
        return self._entry

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> bool:
        if self._task is None:
            return False
        self._watch._watched.pop(self._task, None)
        if not (self._entry.cut and isinstance(error, asyncio.CancelledError)):
            return False
        self._task.uncancel()
        self._watch.note_cut(self._entry)
        return True
