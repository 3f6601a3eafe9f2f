"""The hub's side of the client address a worker passes on with a forwarded request."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from ccproxy_core.runtime.workers.forward import NO_HOST, WORKER_CLIENT_HEADER


class WorkerClientAddress:
    """Pure ASGI middleware of the hub: the client, server and scheme a worker saw become the request's own.

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
                _apply_worker_view(scope, passed.decode("latin-1"))
        await self.app(scope, receive, send)


def _apply_worker_view(scope: Scope, passed: str) -> None:
    fields = [unquote(field) for field in passed.split(" ")]
    scheme, address, port, server_address, server_port, host = [*fields, "", "", "", "", "", ""][:6]
    if host == NO_HOST:  # the Host aiohttp added to reach the hub: the client's request had none
        scope["headers"] = [(name, value) for name, value in scope["headers"] if name != b"host"]
    scope["client"] = (address, int(port)) if address and port.isdigit() else None
    if server_port.isdigit() and int(server_port):
        scope["server"] = (server_address, int(server_port))
    if scheme in ("http", "https"):
        scope["scheme"] = scheme
