"""Asking uvicorn's ``receive()`` for a message it already has, without waiting for one.

``receive()`` answers at once when the message is there (a request body that came with its
head, as nearly all do; the disconnect of a client that left), and otherwise would wait. It is
stepped once and abandoned if it would wait, which costs far less than a timer or a watcher task.
"""

from __future__ import annotations

import asyncio
from types import CoroutineType

from starlette.types import Message, Receive

HANG_UP_READ_SECONDS = 0.01
"""Time for the server to read a connection's end after the body before it."""


def ready_message(receive: Receive) -> Message | None:
    """The next ASGI message if ``receive`` has it now; ``None`` if it would have to wait for it.

    Only uvicorn's own ``receive`` is known to be safe to step and drop; one wrapped by a middleware
    (Starlette's BaseHTTPMiddleware runs it in a cancel scope) is never stepped: ``None``.
    """
    owner = getattr(receive, "__self__", None)
    if owner is None or not type(owner).__module__.startswith("uvicorn."):
        return None
    probe = receive()
    if type(probe) is not CoroutineType:
        return None
    try:
        probe.send(None)
    except StopIteration as done:
        return done.value
    probe.close()  # it was waiting
    return None


async def left_while_waiting(receive: Receive) -> bool:
    """Whether the client of a request that waited for its turn hung up meanwhile, asked once its body
    has been read whole (``receive()`` then has nothing else to give): the body came out of buffers
    filled before the hang-up, whose end the server reads a moment after them. The first ask has
    uvicorn read the connection again (it stops once 64 KiB of body wait for the app)."""
    for _ in range(2):
        message = ready_message(receive)
        if message is not None:
            return message["type"] == "http.disconnect"
        await asyncio.sleep(HANG_UP_READ_SECONDS)
    return False


DRAIN_BYTES = 4 * 1024 * 1024
"""What is read and dropped of a refused request's body to see whether its client is still there."""
DRAIN_SECONDS = 0.5
"""How long that may take (a client trickling its body would otherwise hold its refusal for hours)."""


async def left_before_read(receive: Receive) -> bool:
    """Whether the client of a request refused before its body was read has hung up. uvicorn reads a
    connection only as its body is taken (64 KiB at a time), so what the client sent of its body is
    taken and dropped, up to :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`, to come to the hang-up behind it."""
    drained, waited = 0, False
    deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
    while drained <= DRAIN_BYTES and asyncio.get_running_loop().time() < deadline:
        message = ready_message(receive)
        if message is None:
            if waited:
                return False
            waited = True
            await asyncio.sleep(HANG_UP_READ_SECONDS)
            continue
        if message["type"] == "http.disconnect":
            return True
        drained, waited = drained + len(message.get("body", b"")), False
        await asyncio.sleep(0)
    return False
