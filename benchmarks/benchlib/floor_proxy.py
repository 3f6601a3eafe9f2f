"""The smallest forwarding proxy on ccproxy's own stack: the floor its added latency is judged against.

A bare ASGI application under uvicorn (uvloop, httptools) that forwards each request to
``UPSTREAM`` with one kept aiohttp session and relays the answer's status, headers and body
as they come. It reads nothing, records nothing and checks nothing: whatever ccproxy adds
above it is ccproxy's own work, whatever it adds above a direct request is the stack's.

    UPSTREAM=http://127.0.0.1:9100 PORT=9200 python benchmarks/benchlib/floor_proxy.py
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import uvicorn

_NOT_FORWARDED = {"host", "content-length", "connection", "transfer-encoding"}
_NOT_RELAYED = {"connection", "transfer-encoding", "keep-alive"}  # uvicorn frames the answer itself


class FloorProxy:
    """Forwards every HTTP request to one upstream base URL."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession(auto_decompress=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert self.session is not None
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        headers = {name: value for name, value in headers.items() if name not in _NOT_FORWARDED}
        url = self.upstream + scope["raw_path"].decode("latin-1")
        async with self.session.request(scope["method"], url, data=body, headers=headers) as answer:
            relayed = [
                (name.lower(), value)
                for name, value in answer.raw_headers
                if name.lower().decode("latin-1") not in _NOT_RELAYED
            ]
            await send({"type": "http.response.start", "status": answer.status, "headers": relayed})
            async for chunk in answer.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    application = FloorProxy(os.environ["UPSTREAM"])
    port = int(os.environ["PORT"])
    uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")
