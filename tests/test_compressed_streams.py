"""A compressed stream's chunk may stand for megabytes: it is read a step at a time, other requests
served between the steps, and what it says (its usage) is read all the same."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket

import pytest

from ccproxy_core.accounting.usage import StreamUsageParser
from ccproxy_core.forwarding.decoding import decoder_for
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.responses import BodyParser, _read_decoded
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_record

from .metrics_records import make_context
from .raw_upstream import upstream_and_proxy_fixtures

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06"}
FIRST = b"data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"content": "hi"}}]}).encode() + b"\n\n"
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
LAST = b"data: " + json.dumps({**CHUNK, "choices": [], "usage": USAGE}).encode() + b"\n\ndata: [DONE]\n\n"
COMMENTS = (b": " + b"x" * 1022 + b"\n") * 8 * 1024  # 8 MiB of SSE comments, which SSE clients skip
BOMB = gzip.compress(FIRST + COMMENTS * 4 + LAST)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\nconnection: close\r\n\r\n"
# The provider keeps its connection open after its last event: the client hangs up first.
upstream, proxy = upstream_and_proxy_fixtures({"bomb": [HEAD + BOMB, 3.0]})


def test_a_compressed_chunk_that_stands_for_megabytes_is_read_with_other_requests_served_between_steps():
    exchange = Exchange(context=make_context(make_record()), provider=PROVIDERS["openai"])
    chunk = gzip.compress(FIRST + COMMENTS + LAST)
    assert len(chunk) < 64 * 1024  # one read from the provider's connection
    ticks = 0

    async def read() -> BodyParser | None:
        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        other_request = asyncio.create_task(tick())
        await asyncio.sleep(0)
        parser = StreamUsageParser("openai", None)
        try:
            return await _read_decoded(exchange, parser, decoder_for("gzip", 64 * 1024 * 1024), chunk, 1.0)
        finally:
            other_request.cancel()

    parser = asyncio.run(read())
    # Before: the whole 8 MiB was read in one go, nothing else running meanwhile.
    assert ticks >= len(COMMENTS) // (256 * 1024)
    assert parser is not None and exchange.first_token_at == 1.0
    usage = parser.result()
    assert (usage.input_tokens, usage.output_tokens, usage.response_model) == (1000, 100, "gpt-4o-2024-08-06")


def test_a_client_gone_between_steps_has_the_chunk_it_was_sent_read_whole():
    exchange = Exchange(context=make_context(make_record()), provider=PROVIDERS["openai"])
    parser = StreamUsageParser("openai", None)

    async def read_and_cancel() -> None:
        decoder = decoder_for("gzip", 64 * 1024 * 1024)
        task = asyncio.create_task(_read_decoded(exchange, parser, decoder, BOMB, 1.0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # a step or two in
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # still raised, once the chunk is read
            await task

    asyncio.run(read_and_cancel())
    usage = parser.result()
    assert (usage.input_tokens, usage.output_tokens) == (1000, 100)  # before: the steps stopped at the cancel
    assert parser.final_state().terminal_seen


def test_a_client_that_reads_the_whole_compressed_answer_and_hangs_up_at_once_has_a_whole_answer(proxy, recorder):
    request = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nx-raw: bomb\r\nauthorization: Bearer sk-test"
        client.sendall(f"{head}\r\ncontent-type: application/json\r\ncontent-length: {len(request)}\r\n\r\n".encode())
        client.sendall(request.encode())
        received = b""
        while dechunked(received.partition(b"\r\n\r\n")[2]) != BOMB:  # every byte of the body
            received += client.recv(65536)
        # Closed as soon as the last byte is in, as Codex CLI does after the last event.
    [record] = recorder.wait_for_ends(1)
    # Before: 499 client_disconnected, unpriced, as the hang-up came while ccproxy was still reading the chunk.
    assert (record.status_code, record.error_type) == (200, None)
    assert (record.tokens_input, record.tokens_output, record.priced) == (1000, 100, True)


def dechunked(body: bytes) -> bytes:
    """The data of the whole chunks at the start of a chunked body."""
    data = b""
    while b"\r\n" in body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if len(rest) < size + 2:
            break
        data, body = data + rest[:size], rest[size + 2 :]
    return data
