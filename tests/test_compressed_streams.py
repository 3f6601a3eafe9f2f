"""A compressed stream's chunk may stand for megabytes: it is read a step at a time, other requests
served between the steps, and what it says (its usage) is read all the same."""

from __future__ import annotations

import asyncio
import gzip
import json

from ccproxy_core.accounting.usage import StreamUsageParser
from ccproxy_core.forwarding.decoding import decoder_for
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.responses import BodyParser, _read_decoded
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_record

from .metrics_records import make_context

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06"}
FIRST = b"data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"content": "hi"}}]}).encode() + b"\n\n"
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
LAST = b"data: " + json.dumps({**CHUNK, "choices": [], "usage": USAGE}).encode() + b"\n\ndata: [DONE]\n\n"
COMMENTS = (b": " + b"x" * 1022 + b"\n") * 8 * 1024  # 8 MiB of SSE comments, which SSE clients skip


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
