"""A provider that answers with hostile values: the fake provider for the attack tests.

The mock provider refuses to send what a compromised or buggy provider could (non-finite
costs, lone surrogates, control characters); this one sends exactly that, in the
Anthropic wire format, so the proxy's defences meet real bytes on a real socket.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import WSMsgType, web

# Everything a hostile answer may carry, chosen per request by the x-hostile header.
ANSWERS = {
    "snan-cost": (
        {
            "x-upstream-cost-usd": "sNaN",
            "anthropic-ratelimit-requests-remaining": "NaN",
            "anthropic-ratelimit-tokens-remaining": "Infinity",
        },
        b'"claude-haiku-4-5"',
    ),
    "negative-numbers": (
        {
            "x-upstream-cost-usd": "-5",
            "anthropic-ratelimit-requests-remaining": "-1e308",
            "anthropic-ratelimit-input-tokens-remaining": "-5",
            "anthropic-ratelimit-requests-limit": "50",
        },
        b'"claude-haiku-4-5"',
    ),
    "surrogate-model": ({}, b'"claude-\\ud800-evil"'),
    "control-model": ({}, b'"claude-\\u001b[31mred\\n\\r\\u0000"'),
}


def _message(model: bytes, usage: bytes = b'{"input_tokens": 10, "output_tokens": 5}') -> bytes:
    return (
        b'{"id": "msg_1", "type": "message", "role": "assistant", "model": '
        + model
        + b', "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "usage": '
        + usage
        + b"}"
    )


STREAM = b"".join(
    b"event: %s\ndata: %s\n\n" % (name, json.dumps(data).encode())
    for name, data in (
        (
            b"message_start",
            {
                "type": "message_start",
                "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 10, "output_tokens": 1}},
            },
        ),
        (
            b"content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        ),
        (
            b"message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
        ),
        (b"message_stop", {"type": "message_stop"}),
    )
)
"""A whole Messages stream: 10 input and 5 output tokens."""


async def _messages(request: web.Request) -> web.StreamResponse:
    await request.read()
    kind = request.headers.get("x-hostile", "")
    if kind == "huge-tokens":
        body = _message(b'"claude-haiku-4-5"', b'{"input_tokens": 1e400, "output_tokens": 99999999999999999999999999}')
        return web.Response(body=body, content_type="application/json")
    if kind == "error-with-secrets":
        body = (
            b'{"type": "error", "error": {"type": "invalid_request_error", "message": '
            b'"bad call to https://api.example/v1?key=sk-LEAK-9&x=1 \\u001b[2J\\nforged line"}}'
        )
        return web.Response(status=400, body=body, content_type="application/json")
    if kind == "absurd-usage":  # a count no answer has: 2^40 + 1 (1,024 of 2^53 wrapped ClickHouse's sum)
        body = _message(b'"claude-haiku-4-5"', b'{"input_tokens": 1099511627777, "output_tokens": 5}')
        return web.Response(body=body, content_type="application/json")
    if kind == "huge-json":  # a JSON answer larger than ccproxy holds to read it
        return web.Response(
            body=_message(b'"claude-haiku-4-5"')[:-1] + b', "pad": "' + b"x" * 3_000_000 + b'"}',
            content_type="application/json",
        )
    if kind == "deep-json":  # deeper than Python's parser goes
        return web.Response(body=b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", content_type="application/json")
    if kind == "error-echoing-the-key":  # the key in the error's type and message, as a careless gateway might
        key = request.headers.get("x-api-key", "")
        error = {"type": key, "message": f"key {key} is not valid for this workspace"}
        return web.json_response({"type": "error", "error": error}, status=401)
    if kind == "answer-echoing-the-key":  # a careless gateway: the key in the model, request id and service tier
        key = request.headers.get("x-api-key", "")
        usage = {"input_tokens": 10, "output_tokens": 5, "service_tier": f"tier-{key}"}
        body = _message(json.dumps(f"model-{key}").encode(), json.dumps(usage).encode())
        return web.Response(body=body, content_type="application/json", headers={"request-id": f"req-{key}"})
    if kind.startswith("header-of-"):  # one long header, as a gateway's trace or a long rate-limit list
        headers = {"x-long": "a" * int(kind.removeprefix("header-of-")), "request-id": "req_long"}
        return web.Response(body=_message(b'"claude-haiku-4-5"'), content_type="application/json", headers=headers)
    if kind == "six-codings":  # more codings in a row than ccproxy undoes
        body = b": " + b"".join(b"%d " % i for i in range(20_000)) + b"\n\n" + STREAM
        for _ in range(6):
            body = gzip.compress(body)
        headers = {"content-type": "text/event-stream", "content-encoding": ", ".join(["gzip"] * 6)}
        return web.Response(body=body, headers=headers)
    if kind == "json-as-stream":  # a whole Message labelled an event stream, to a request that asked for none
        return web.Response(body=_message(b'"claude-haiku-4-5"'), headers={"content-type": "text/event-stream"})
    if kind.startswith("stream-as-"):  # a stream labelled as something else, as a careless fake provider might
        return web.Response(body=STREAM, headers={"content-type": kind.removeprefix("stream-as-")})
    if kind.startswith("chunked-stream-as-"):  # the same, sent as it is made
        answer = web.StreamResponse(headers={"content-type": kind.removeprefix("chunked-stream-as-")})
        answer.enable_chunked_encoding()
        await answer.prepare(request)
        await answer.write(STREAM)
        await answer.write_eof()
        return answer
    headers, model = ANSWERS.get(kind, ({}, b'"claude-haiku-4-5"'))
    return web.Response(body=_message(model), content_type="application/json", headers=headers)


_SERVER: web.AppKey[HostileUpstream] = web.AppKey("server")


async def _responses_socket(request: web.Request) -> web.WebSocketResponse:
    """``GET /v1/responses`` (or ``/v1/realtime``) upgraded: each client message is kept as received and answered with the
    next list of ``socket_answers``, sent as they are (however large)."""
    server = request.app[_SERVER]
    socket = web.WebSocketResponse(max_msg_size=0)
    await socket.prepare(request)
    while (message := await socket.receive()).type in (WSMsgType.TEXT, WSMsgType.BINARY):
        server.socket_received.append(message.data)
        for text in server.socket_answers.pop(0) if server.socket_answers else []:
            await socket.send_str(text)
        if server.socket_close is not None:  # then close, mid-answer or not
            code, reason = server.socket_close
            if server.socket_close_drops:  # the close frame, then the connection at once, no reply awaited
                await socket._writer.close(code, reason.encode())
                request.transport.close()
            else:
                await socket.close(code=code, message=reason.encode())
            return socket
    if message.type == WSMsgType.CLOSE:
        server.client_closes.append((message.data, message.extra))
    return socket


class HostileUpstream:
    """The hostile provider on a free loopback port, in a thread."""

    def __init__(self) -> None:
        self.url = ""
        self.socket_answers: list[list[str]] = []
        self.socket_received: list[str] = []
        self.socket_close: tuple[int, str] | None = None
        """Code and reason to close each socket with, once its first message is answered."""
        self.socket_close_drops = False
        """Whether the connection is closed right after the close frame, as some servers do."""
        self.client_closes: list[tuple[int, str]] = []
        """The code and reason of each close a client sent."""
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app[_SERVER] = self
        app.router.add_post("/v1/messages", _messages)
        app.router.add_get("/v1/responses", _responses_socket)
        app.router.add_get("/v1/realtime", _responses_socket)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> HostileUpstream:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def hostile_upstream() -> Iterator[HostileUpstream]:
    server = HostileUpstream().start()
    try:
        yield server
    finally:
        server.stop()
