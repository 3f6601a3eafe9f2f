"""Sending a prepared answer over the wire, with the pacing and faults its plan asks for."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ccproxy_core.mock_upstream.answers import JsonAnswer, StreamAnswer
from ccproxy_core.mock_upstream.faults import RequestPlan

SLOW_PIECE_BYTES = 16
"""Size of each piece when ``x-mock-slow-bytes-ms`` trickles a body out (a pause before each piece)."""


async def deliver(request: web.Request, answer: JsonAnswer | StreamAnswer, plan: RequestPlan) -> web.StreamResponse:
    """Send ``answer`` as ``plan`` says; the fast path is a single ``web.Response``."""
    if isinstance(answer, JsonAnswer) and plan.abort_after is None and not plan.slow_bytes_ms:
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    status = answer.status if isinstance(answer, JsonAnswer) else 200
    response = web.StreamResponse(status=status, headers=answer.headers)
    if isinstance(answer, StreamAnswer):
        return await _send_stream(request, response, answer, plan)
    return await _send_json_with_faults(request, response, answer, plan)


async def _send_json_with_faults(request: web.Request, response: web.StreamResponse, answer: JsonAnswer,
                                 plan: RequestPlan) -> web.StreamResponse:
    response.content_length = len(answer.body)
    await response.prepare(request)
    if plan.abort_after is not None:
        # A JSON body has no deltas: an abort sends the headers and half the body, then cuts.
        await _send(response, answer.body[: len(answer.body) // 2], plan)
        return _cut_connection(request, response)
    return await _finish(response, answer.body, plan)


async def _send_stream(request: web.Request, response: web.StreamResponse, answer: StreamAnswer,
                       plan: RequestPlan) -> web.StreamResponse:
    await response.prepare(request)
    if plan.plain and plan.stream_error_after is None:
        return await _finish(response, answer.head + b"".join(answer.deltas) + answer.tail, plan)
    await _send(response, answer.head, plan)
    for index, delta in enumerate(answer.deltas):
        if index == plan.abort_after:
            return _cut_connection(request, response)
        if index == plan.stream_error_after:
            return await _finish(response, answer.error_event, plan)
        if plan.delta_interval_ms:
            await asyncio.sleep(plan.delta_interval_ms / 1000)
        await _send(response, delta, plan)
    if plan.abort_after is not None:
        return _cut_connection(request, response)
    if plan.stream_error_after is not None:
        return await _finish(response, answer.error_event, plan)
    return await _finish(response, answer.tail, plan)


async def _finish(response: web.StreamResponse, last_bytes: bytes, plan: RequestPlan) -> web.StreamResponse:
    await _send(response, last_bytes, plan)
    await response.write_eof()
    return response


async def _send(response: web.StreamResponse, data: bytes, plan: RequestPlan) -> None:
    if not plan.slow_bytes_ms:
        await response.write(data)
        return
    pause = plan.slow_bytes_ms / 1000
    for start in range(0, len(data), SLOW_PIECE_BYTES):
        await asyncio.sleep(pause)
        await response.write(data[start : start + SLOW_PIECE_BYTES])


def _cut_connection(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    # close(), not abort(): bytes already written still reach the client, then it sees
    # the connection end before the body is complete.
    if request.transport is not None:
        request.transport.close()
    return response
