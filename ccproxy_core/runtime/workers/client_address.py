"""The hub's side of the client address a worker passes on with a forwarded request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ccproxy_core.runtime.workers.forward import WORKER_CLIENT_HEADER


class WorkerClientAddress:
    """Pure ASGI middleware of the hub: the client and scheme a worker saw become the request's own.

    The hub listens only on a unix socket in a directory only ccproxy's user can open, so
    every request it gets comes from a worker, which drops any copy a client sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers, passed = [], None
            for name, value in scope["headers"]:
                if name == WORKER_CLIENT_HEADER:
                    passed = value
                else:
                    headers.append((name, value))
            scope = {**scope, "headers": headers}
            if passed is not None:
                scheme, address, port = [*passed.decode("latin-1").split(" "), "", "", ""][:3]
                scope["client"] = (address, int(port)) if address and port.isdigit() else None
                if scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
