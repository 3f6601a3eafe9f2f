"""Answers for a path that ccproxy or a plugin serves, asked with a method its routes do not take.

Starlette would answer these itself, but the forwarding catch-all takes every method on every
path, so it hands them here: ``HEAD`` is served as ``GET`` (the server sends no body), anything
else gets 405 with ``Allow``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from ccproxy_core.safe_values import safe_text

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def answer_other_method(scope: Scope) -> Response | None:
    """HEAD served by the path's GET route, or a 405 naming the methods it takes; None when no route serves the path."""
    # Routes may be nested (an included router): each is asked, as Starlette's router asks it.
    candidates = [route for route in scope["app"].router.routes if route.matches(scope)[0] is Match.PARTIAL]
    if not candidates:
        return None
    taking = {method: _taking(candidates, {**scope, "method": method}) for method in _METHODS}
    if scope["method"] == "HEAD" and (get := taking["GET"]) is not None:
        return _ServedAsGet(*get)
    allowed = {method for method, route in taking.items() if route is not None} | {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    names = ", ".join(sorted(allowed))
    if scope["method"] == "OPTIONS":  # asking what the path takes (a browser's preflight is answered before)
        return Response(status_code=204, headers={"Allow": names})
    detail = f"{safe_text(scope['path'], 200)} takes {names}, not {safe_text(scope['method'], 20)}"
    return JSONResponse({"detail": detail}, 405, headers={"Allow": names})


def _taking(routes: list[BaseRoute], scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
    """The first of ``routes`` that takes the request of ``scope``, with the scope it runs with."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return route, {**scope, **child_scope}
    return None


class _AnswerEnded(Exception):
    """Raised into a GET route's handler once a HEAD request has its headers: nothing more is sent."""


class _ServedAsGet(Response):
    """The answer of a GET route to a HEAD request: its status and headers, then the end of the answer.

    The route is stopped after its headers, so an endless one (``/logs/stream``) ends too and the
    connection can serve the client's next request.
    """

    def __init__(self, route: BaseRoute, scope: dict[str, Any]) -> None:
        super().__init__()
        self._route, self._scope = route, scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            raise _AnswerEnded

        try:
            await self._route.handle(self._scope, receive, headers_only)
        except _AnswerEnded:
            pass
        except BaseExceptionGroup as group:  # raised from a streaming answer's task group
            rest = group.subgroup(lambda error: not isinstance(error, _AnswerEnded))
            if rest is not None:
                raise rest from None
