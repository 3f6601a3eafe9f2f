"""Heavy /logs reads kept away from proxied traffic: few at a time, encoded off the event loop in slices.

Eight clients asking for 10,000 rows each used to hold the event loop long enough to add
hundreds of milliseconds to proxied requests: FastAPI encodes a returned dict on the loop in
one go. Here reads queue for one of :data:`READ_SLOTS` (the store fetches in a worker thread,
handing the GIL over between batches), and a page is encoded a slice of rows at a time, the
loop serving proxied requests between slices.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response

READ_SLOTS = 2
"""Store reads (query, entries, analytics) served at once; more wait their turn."""
ROWS_PER_SLICE = 100
"""Rows encoded between two turns of the event loop (well under a millisecond)."""
_GATE_ATTRIBUTE = "ccproxy_logs_read_gate"


async def read_slot(request: Request) -> AsyncIterator[None]:
    """FastAPI dependency: hold one of the app's read slots while the route runs."""
    gate = getattr(request.app.state, _GATE_ATTRIBUTE, None)
    if gate is None:
        gate = asyncio.Semaphore(READ_SLOTS)
        setattr(request.app.state, _GATE_ATTRIBUTE, gate)
    async with gate:
        yield


async def json_answer(payload: dict[str, Any]) -> Response:
    """``payload`` as a JSON response; a long ``results`` list is encoded a slice at a time.

    On the event loop, not in a thread: between slices the loop serves whatever is ready
    (proxied requests first in line), whereas a thread would compete with it for the GIL
    and win a share of every switch interval.
    """
    rows = payload.get("results")
    if not isinstance(rows, list) or len(rows) <= ROWS_PER_SLICE:
        return Response(_dumps(payload).encode(), media_type="application/json")
    rest = _dumps({key: value for key, value in payload.items() if key != "results"})
    slices = []
    for start in range(0, len(rows), ROWS_PER_SLICE):
        slices.append(_dumps(rows[start : start + ROWS_PER_SLICE])[1:-1])
        await asyncio.sleep(0)
    separator = "," if rest != "{}" else ""
    body = '{"results":[' + ",".join(slices) + "]" + separator + rest[1:]
    return Response(body.encode(), media_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
