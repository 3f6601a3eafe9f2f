"""A time limit on ``async def`` request hooks, armed only for one that has to wait.

Most ``async def`` implementations finish without ever suspending: the guard steps their
coroutine once, right where the request awaits it, and that costs no timer (as
``forwarding/receive_probe.py`` steps uvicorn's ``receive``). One that does suspend (it awaits
I/O, a lock, an event) goes on in the request's own task under a timeout of :data:`HOOK_SECONDS`;
past it, the hook is cancelled, and the request goes on without it. Its own task, because a hook
may rely on it being the one it started in (``asyncio.timeout`` inside a hook cancels the task it
was entered in). A hook that swallows its cancellation and goes on waiting still holds its request,
but what it answers then is not used.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

HOOK_SECONDS: dict[str, float] = {"on_request_start": 1.0, "admit_request": 1.0, "on_request_end": 5.0}
"""How long an ``async def`` request hook may take, by hook. ``on_request_start`` and ``admit_request``
hold the request back meanwhile, so theirs is short; ``on_request_end`` runs after the client has its
answer, but holds the request's memory and keeps a shutdown waiting."""

OVERRAN = "its %s did not finish within %g s; it was cancelled and the request went on without it"


class Overran(Exception):
    """A request hook did not finish within its limit (it was cancelled)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def finish_within(awaitable: Awaitable[Any], hook: str) -> Any:
    """What ``awaitable`` returns (or raises), awaited in the current task; :class:`Overran` when it has not
    finished within ``hook``'s limit. A cancellation from elsewhere (a shutdown) passes through."""
    seconds = HOOK_SECONDS[hook]
    timeout = asyncio.timeout(seconds)
    try:
        async with timeout:
            result = await awaitable
    except TimeoutError:
        if timeout.expired():
            raise Overran(seconds) from None
        raise  # the hook's own TimeoutError: its failure, as any raise
    if timeout.expired():  # it caught its cancellation and answered late: the request went on without it
        raise Overran(seconds)
    return result


async def contained(awaitable: Awaitable[Any]) -> tuple[Any, BaseException | None]:
    """What ``awaitable`` returns, or the ``SystemExit`` or ``KeyboardInterrupt`` it raised, for the caller to
    raise: a task must not raise those, asyncio would re-raise them out of the event loop, ending the server."""
    try:
        return await awaitable, None
    except (SystemExit, KeyboardInterrupt) as exc:
        return None, exc


async def resumed(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """``coroutine``, stepped once already, going on where it ``yielded`` (the future it waits for)."""
    return await _resume(coroutine, yielded)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """The task running this waits for what ``coroutine`` yielded, and passes on what is sent and thrown, as
    ``await`` would."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as thrown:  # noqa: BLE001 - a cancellation, passed on to the hook
            try:
                yielded = coroutine.throw(thrown)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as done:
                return done.value
