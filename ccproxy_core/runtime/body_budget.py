"""Bounds the request-body bytes held in memory by all requests together (SERVER__MAX_BUFFERED_BODY_BYTES)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccproxy_core.runtime.settings import ServerSettings

SMALL_BODY_BYTES = 64 * 1024
"""Bodies up to this size reserve nothing: uvicorn buffers that much per connection anyway."""
WAIT_TIMEOUTS = 2
"""A request waits for body room at most this many SERVER__BODY_TIMEOUT_SECONDS: time for a body that
stalled before it to be answered 408 and give its room back."""


def body_budget(server: ServerSettings) -> BodyBudget:
    """The budget the server settings set."""
    wait = WAIT_TIMEOUTS * server.body_timeout_seconds
    return BodyBudget(server.max_buffered_body_bytes, server.max_request_bytes, wait)


def body_room_message(server: ServerSettings) -> str:
    """What a request refused for want of body room is told, naming the setting."""
    wait = WAIT_TIMEOUTS * server.body_timeout_seconds
    return (
        f"no room for the request body came free within {wait:g} s: SERVER__MAX_BUFFERED_BODY_BYTES="
        f"{server.max_buffered_body_bytes} bytes of bodies are held by other requests; retry, or raise it"
    )


@dataclass(slots=True)
class Room:
    """One request's room in the budget: ``size`` bytes held; ``waited`` when it had to wait for them,
    ``refused`` when they did not come free in time, ``cut`` when the wait was cancelled (the server
    stopping): nothing is held then, and the request is answered rather than read."""

    size: int
    waited: bool = False
    refused: bool = False
    cut: bool = False


class Holding:
    """One request's hold on the budget, as an ``async with`` block: a class, not a generator, because
    nearly every body is small and reserves nothing, and an async generator's set-up would then be
    most of what the block costs."""

    __slots__ = ("budget", "room")

    def __init__(self, budget: BodyBudget, room: Room) -> None:
        self.budget, self.room = budget, room

    async def __aenter__(self) -> Room:
        room = self.room
        if room.size <= SMALL_BODY_BYTES:
            room.size = 0
        else:
            await self.budget.reserve(room)
        return room

    async def __aexit__(self, *exc_info: object) -> None:
        if self.room.size:  # else nothing is held
            await self.budget.keep(self.room, 0)


class BodyBudget:
    """Bounds the request-body bytes held in memory by all requests together.

    A request reserves its declared ``Content-Length`` (the largest body allowed for a chunked
    body, whose size is not known; nothing for a request without a body) before reading, and
    waits while the budget is spent (not first come, first served: a smaller body that fits goes
    ahead of a larger one waiting, rather than every request waiting behind a chunked body for
    the whole room to come free, which long streams can take minutes to give back); once its
    body is read it keeps room for that body alone, for the rest of its exchange, as the body
    stays in memory that long. Unread bodies stay in the kernel's socket buffers (uvicorn stops reading a connection
    whose body the app is not taking), so waiting costs no memory; a request that waits longer
    than ``max_wait_seconds`` is refused rather than kept waiting for ever behind bodies that
    arrive slowly.
    """

    def __init__(self, total_bytes: int, max_request_bytes: int, max_wait_seconds: float) -> None:
        self.total = max(total_bytes, max_request_bytes)
        self.max_request_bytes = max_request_bytes
        self.max_wait_seconds = max_wait_seconds
        self.available = self.total
        self._changed = asyncio.Condition()
        self.waits = 0
        """Requests that had to wait for budget."""
        self.waiting = 0
        """Requests waiting for budget now."""

    def hold(self, content_length: str | None, chunked: bool) -> Holding:
        """Reserve room for one body while the ``async with`` block runs (nothing for a body too large
        to be read)."""
        return Holding(self, Room(self._size(content_length, chunked)))

    async def reserve(self, room: Room) -> None:
        """Wait for ``room.size`` bytes to come free and take them; ``refused`` or ``cut`` (with nothing
        taken) when they do not come free in time or the wait is cancelled."""
        async with self._changed:
            if self.available < room.size:
                self.waits += 1
                self.waiting += 1
                room.waited = True
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self.available >= room.size), self.max_wait_seconds
                    )
                except TimeoutError:
                    room.refused, room.size = True, 0
                except asyncio.CancelledError:  # answered by the caller, which spends the cancellation
                    room.cut, room.size = True, 0
                finally:
                    self.waiting -= 1
            self.available -= room.size

    def contended(self) -> bool:
        """Whether a request waits for room: bodies being read must then arrive faster (``read_body``)."""
        return self.waiting > 0

    async def keep(self, room: Room, body_bytes: int) -> None:
        """Keep room for ``body_bytes`` only (the body read), giving the rest back."""
        kept = 0 if body_bytes <= SMALL_BODY_BYTES else min(body_bytes, room.size)
        if kept == room.size:
            return
        async with self._changed:
            self.available += room.size - kept
            room.size = kept
            self._changed.notify_all()

    def _size(self, content_length: str | None, chunked: bool) -> int:
        if content_length is None:  # no body (a GET), or a chunked one of any size up to the limit
            return self.max_request_bytes if chunked else 0
        if not content_length.isdigit() or len(content_length) > 18:
            return self.max_request_bytes
        declared = int(content_length)
        return 0 if declared > self.max_request_bytes else declared
