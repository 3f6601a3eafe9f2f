"""Browser CORS for the provider routes: preflights answered by ccproxy, per ``SECURITY__ALLOWED_ORIGINS``.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is the
browser asking permission, not an API call: it is answered here, never forwarded, and
never recorded. No origin is allowed by default, so a web page cannot spend a user's
keys through a ccproxy on their machine unless the operator says so. A real request from
an allowed origin gets ``Access-Control-Allow-Origin`` on its answer.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import Scope, Send

ALLOWED_METHODS = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
PREFLIGHT_MAX_AGE = b"600"
EXPOSED_HEADERS = b"x-ccproxy-request-id, x-ccproxy-overhead-ms, request-id, x-request-id"
"""Response headers a page from an allowed origin may read (ccproxy's and the providers' request ids)."""


class CorsPolicy:
    """Answers preflights and marks answers to allowed origins."""

    def __init__(self, allowed_origins: list[str]) -> None:
        self.any_origin = "*" in allowed_origins
        self.origins = frozenset(allowed_origins)

    def allows(self, origin: str) -> bool:
        """True when pages from ``origin`` may call the provider routes."""
        return self.any_origin or origin.rstrip("/") in self.origins

    @staticmethod
    def is_preflight(scope: Scope) -> bool:
        """An ``OPTIONS`` request a browser sends before a cross-origin call."""
        if scope["method"] != "OPTIONS":
            return False
        names = {name for name, _ in scope["headers"]}
        return b"origin" in names and b"access-control-request-method" in names

    async def answer_preflight(self, scope: Scope, send: Send) -> None:
        """204 with the allowing headers, or 403 naming the setting to change."""
        headers = Headers(scope=scope)
        origin = headers.get("origin", "")
        if not self.allows(origin):
            body = json.dumps(
                {
                    "detail": f"origin {origin!r} may not call this API from a browser: "
                    "add it to SECURITY__ALLOWED_ORIGINS"
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        allowed_headers = headers.get("access-control-request-headers", "").encode("latin-1")
        response_headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        if allowed_headers:
            response_headers.append((b"access-control-allow-headers", allowed_headers))
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})
