"""A kept-alive connection to the provider idles in the pool between requests with no read timer
running, whatever the answer before it did: the next request on it reaches the provider."""

from __future__ import annotations

import asyncio

from ccproxy_core.forwarding.upstream_protocol import UpstreamProtocol

BODY = b"x" * 100_000
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def _answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(ANSWER)  # then the connection stays open, idle, as a kept-alive one does
    await writer.drain()
    await reader.read()


def test_a_connection_whose_answer_was_read_slowly_runs_no_read_timer_once_idle():
    async def scenario() -> BaseException | None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(_answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, protocol = await loop.create_connection(lambda: UpstreamProtocol(loop=loop), "127.0.0.1", port)
        # A tiny buffer: reading pauses at every arrival, the answer's last one too, and resumes
        # only as the body is consumed, after its end was parsed (a client slower than the provider).
        protocol.set_response_params(read_timeout=0.2, read_bufsize=1)
        _message, payload = await protocol.read()
        await asyncio.sleep(0.1)  # everything has arrived
        assert await payload.read() == BODY
        await asyncio.sleep(0.5)  # idle in the pool, longer than the read timeout
        failure = protocol.exception()
        protocol.close()
        server.close()
        return failure

    # Before: a timeout put on the idle connection, which the next request sent on it raised at
    # once (a 504 for a request the provider never saw).
    assert asyncio.run(scenario()) is None
