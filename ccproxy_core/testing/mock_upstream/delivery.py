"""Sending a prepared answer over the wire, with the pacing and faults its plan asks for."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ccproxy_core.testing.mock_upstream.answers import JsonAnswer, StreamAnswer
from ccproxy_core.testing.mock_upstream.compression import Compressor, compress_whole
from ccproxy_core.testing.mock_upstream.faults import RequestPlan

SLOW_PIECE_BYTES = 16
"""Size of each piece when ``x-mock-slow-bytes-ms`` trickles a body out (a pause before each piece)."""


async def deliver(request: web.Request, answer: JsonAnswer | StreamAnswer, plan: RequestPlan) -> web.StreamResponse:
    """Send ``answer`` as ``plan`` says; the fast path is a single ``web.Response``."""
    headers = dict(answer.headers)
    if plan.content_encoding:
        headers["Content-Encoding"] = plan.content_encoding
    if isinstance(answer, JsonAnswer):
        body = compress_whole(plan.content_encoding, answer.body) if plan.content_encoding else answer.body
        if plan.abort_after is None and not plan.slow_bytes_ms:
            return web.Response(status=answer.status, body=body, headers=headers)
        response = web.StreamResponse(status=answer.status, headers=headers)
        return await _send_json_with_faults(request, response, body, plan)
    response = web.StreamResponse(status=200, headers=headers)
    return await _send_stream(request, response, answer, plan)


class _Writer:
    """Writes pieces of a stream, compressed when the plan says, paced when it says."""

    def __init__(self, response: web.StreamResponse, plan: RequestPlan) -> None:
        self.response, self.plan = response, plan
        self.compressor = Compressor(plan.content_encoding) if plan.content_encoding else None

    async def send(self, data: bytes) -> None:
        if self.compressor is not None:
            data = self.compressor.piece(data)
        await _send(self.response, data, self.plan)

    async def finish(self, last_bytes: bytes) -> web.StreamResponse:
        await self.send(last_bytes)
        if self.compressor is not None:
            await _send(self.response, self.compressor.finish(), self.plan)
        await self.response.write_eof()
        return self.response


async def _send_json_with_faults(
    request: web.Request, response: web.StreamResponse, body: bytes, plan: RequestPlan
) -> web.StreamResponse:
    response.content_length = len(body)
    await response.prepare(request)
    if plan.abort_after is not None:
        # A JSON body has no deltas: an abort sends the headers and half the body, then cuts.
        await _send(response, body[: len(body) // 2], plan)
        return _cut_connection(request, response)
    await _send(response, body, plan)
    await response.write_eof()
    return response


async def _send_stream(
    request: web.Request, response: web.StreamResponse, answer: StreamAnswer, plan: RequestPlan
) -> web.StreamResponse:
    await response.prepare(request)
    writer = _Writer(response, plan)
    if plan.plain and plan.stream_error_after is None and plan.truncate_after is None and not plan.first_token_ms:
        return await writer.finish(answer.head + b"".join(answer.deltas) + answer.tail)
    await writer.send(answer.head)
    if plan.first_token_ms:
        await asyncio.sleep(plan.first_token_ms / 1000)
    for index, delta in enumerate(answer.deltas):
        if index == plan.abort_after:
            return _cut_connection(request, response)
        if index == plan.stream_error_after:
            return await writer.finish(answer.error_event)
        if index == plan.truncate_after:
            return await writer.finish(b"")
        if plan.delta_interval_ms:
            await asyncio.sleep(plan.delta_interval_ms / 1000)
        await writer.send(delta)
    if plan.abort_after is not None:
        return _cut_connection(request, response)
    if plan.stream_error_after is not None:
        return await writer.finish(answer.error_event)
    if plan.truncate_after is not None:
        return await writer.finish(b"")
    return await writer.finish(answer.tail)


async def _send(response: web.StreamResponse, data: bytes, plan: RequestPlan) -> None:
    if not data:
        return
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
