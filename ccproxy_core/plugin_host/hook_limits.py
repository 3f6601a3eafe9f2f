"""A time limit on ``async def`` request hooks, armed only for one that has to wait.

Most ``async def`` implementations finish without ever suspending: the guard steps their
coroutine once, right where the request awaits it, and that costs no task and no timer (as
``forwarding/receive_probe.py`` steps uvicorn's ``receive``). One that does suspend (it awaits
I/O, a lock, an event) is finished in a task of its own, raced against its limit in
:data:`HOOK_SECONDS`; past it, the task is cancelled and not waited for (a hook that ignores its
cancellation must not hold the request either), and the request goes on without it.
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
    """What ``awaitable`` returns (or raises), run in a task; :class:`Overran` when it has not finished
    within ``hook``'s limit. A cancellation of the caller cancels it too."""
    seconds = HOOK_SECONDS[hook]
    task = asyncio.ensure_future(contained(awaitable))
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:  # the request itself was cancelled (a shutdown, the client gone): so is the hook
        task.cancel()
        raise
    if not done:
        task.cancel()  # not awaited: see the module's docstring
        raise Overran(seconds)
    result, raised = task.result()
    if raised is not None:
        raise raised
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
