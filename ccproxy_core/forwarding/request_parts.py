"""What the proxy reads from the client's request scope: paths, a few headers, the base URL it was reached at."""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import Scope

from ccproxy_core.forwarding.response_headers import header_text
from ccproxy_core.forwarding.route_table import API_PREFIX, OUTSIDE_API_PREFIX
from ccproxy_core.key_masking import without_key_shapes
from ccproxy_core.safe_values import safe_text

_PLAIN_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{1,45}")
"""What an IPv4 or IPv6 address is written with; anything else is checked character by character."""
MAX_CLIENT_ADDRESS_CHARS = 64


def proxy_base_url(request: Request) -> str:
    """The base URL the client used to reach ccproxy (with ``/api`` when it came that way)."""
    scope = request.scope
    host = request.headers.get("host") or "{}:{}".format(*scope["server"])
    return f"{scope.get('scheme', 'http')}://{host}" + ("/api" if scope["path"].startswith("/api/") else "")


def client_address(scope: Scope) -> str | None:
    """The client's address for the record: as the connection or a trusted proxy's X-Forwarded-For gave it.

    A trusted proxy may pass on text that is no address (``unknown``, or what a client put in the
    header when it reached ccproxy from a trusted address itself): it is kept as safe text, short,
    with any key masked.
    """
    client = scope.get("client")
    host = client[0] if client else None
    if not isinstance(host, str) or not host:
        return None
    if _PLAIN_ADDRESS.fullmatch(host):
        return host
    return safe_text(without_key_shapes(host), MAX_CLIENT_ADDRESS_CHARS)


def client_headers(raw_headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, str | None, str | None]:
    """The client's ``x-request-id``, ``user-agent``, ``traceparent`` and ``tracestate``, decoded as the UTF-8 clients send."""
    request_id = user_agent = traceparent = tracestate = None
    for name, value in raw_headers:
        if name == b"x-request-id":
            request_id = header_text(value)
        elif name == b"user-agent":
            user_agent = header_text(value, 1000)
        elif name == b"traceparent":
            traceparent = header_text(value, 100)
        elif name == b"tracestate":
            tracestate = header_text(value, 1000)
    return request_id, user_agent, traceparent, tracestate


def off_path_setting(off_paths: tuple[tuple[str, str], ...], path: str) -> str | None:
    for prefix, setting in off_paths:
        if path == prefix or path.startswith(prefix + "/"):
            return setting
    return None


def url_path(scope: Scope) -> str:
    """``request.url.path`` without building the whole URL (Starlette escapes these three)."""
    return scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


def unproxied_message(method: str, scope: Scope) -> str:
    """The 404's message for a path ccproxy does not forward, naming the path as sent (decoded,
    ``/v1%2fmessages`` would read as the route it is not)."""
    return (
        f"ccproxy does not proxy {method} {safe_text(raw_path(scope), 200)}: provider APIs are under /v1/ "
        "(no . or .. segments, no percent-encoded slash before the API path)"
    )


def upstream_path(scope: Scope) -> str | None:
    """The raw path as the client sent it, less an ``/api`` prefix: what follows the provider's base URL.

    ``None`` unless it is under ``/v1/`` as sent, not only once decoded: ``/api%2Fv1%2F@evil/messages``
    is routed as ``/api/v1/...``, but after the base URL it would make ``evil`` the host, with the key.
    """
    path = raw_path(scope)
    if path in OUTSIDE_API_PREFIX:
        return path
    if path.startswith("/api/"):
        path = path[4:]
    return path if path.startswith(API_PREFIX) else None


def upstream_url(base_url: str, scope: Scope) -> str:
    """Where a request checked to be under ``/v1/`` goes: the base URL, then the raw path and query as sent
    (the recorded ones are escaped and capped)."""
    url = base_url + (upstream_path(scope) or "/")
    return url + "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else url


def has_dot_segment(path: str) -> bool:
    """Whether ``path`` (raw, as the client sent it) has a ``.`` or ``..`` segment, percent-encoded or not.

    Forwarded as it is, ``/v1/../admin`` would reach the provider, with the operator's key,
    outside the ``/v1/`` the proxy serves (and outside a base URL's own path prefix).
    """
    if "." not in path and "%2" not in path:
        return False
    return any(segment in (".", "..") for segment in unquote(path).replace("\\", "/").split("/"))
