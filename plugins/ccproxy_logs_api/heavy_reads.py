"""Heavy /logs reads kept away from proxied traffic: few at a time, encoded off the event loop in slices.

Eight clients asking for 10,000 rows each used to hold the event loop long enough to add
hundreds of milliseconds to proxied requests: FastAPI encodes a returned dict on the loop,
and a C-level ``json.dumps`` of a large page holds the GIL from start to end. Here reads
queue for one of :data:`READ_SLOTS`, and a page is encoded in a worker thread a slice of
rows at a time, so the loop gets the GIL back between slices.
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
ROWS_PER_SLICE = 200
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
    """``payload`` as a JSON response, encoded in a worker thread."""
    return Response(await asyncio.to_thread(encode, payload), media_type="application/json")


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON of ``payload``; a long ``results`` list is encoded a slice at a time."""
    rows = payload.get("results")
    if not isinstance(rows, list) or len(rows) <= ROWS_PER_SLICE:
        return _dumps(payload).encode()
    rest = _dumps({key: value for key, value in payload.items() if key != "results"})
    slices = (_dumps(rows[start:start + ROWS_PER_SLICE])[1:-1] for start in range(0, len(rows), ROWS_PER_SLICE))
    separator = "," if rest != "{}" else ""
    return ('{"results":[' + ",".join(slices) + "]" + separator + rest[1:]).encode()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
