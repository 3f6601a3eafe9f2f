"""Keeps other web pages out: a pure ASGI middleware in front of every route.

ccproxy usually runs on the operator's own machine, where any web page the operator opens
can send requests to it. Like other local developer servers (Jupyter's is the model), it
defends itself with these checks, made before any route runs:

- **Host**: a request whose ``Host`` is not a loopback name, ``SERVER__HOST`` or one of
  ``SECURITY__ALLOWED_HOSTS`` is refused. This stops DNS rebinding, where a page's own
  domain is pointed at 127.0.0.1 to read ccproxy's answers. A server listening on every
  interface (0.0.0.0, ::) is meant to be reached by many names, so there the check applies
  only when ``SECURITY__ALLOWED_HOSTS`` is set.
- **Origin**: a request a browser sends on behalf of another site (``Origin`` of another
  origin, or ``Sec-Fetch-Site: cross-site``/``same-site``; another port on localhost is
  "same-site") is refused unless that origin is in ``SECURITY__ALLOWED_ORIGINS``. This stops
  a page from wiping the log (``POST /logs/reset``), reading it, or spending the operator's
  configured provider key through a "simple" cross-site POST. The one exception: opening one
  of ccproxy's own pages by following a link (a top-level GET navigation), whose answer only
  the operator sees. Loading one into a frame of the other page is refused: framed by the
  dozen, ``/logs/stream`` would take every subscriber slot from the operator's dashboard.
- **Speculative loads**: a prefetch or prerender (``Sec-Purpose``) is refused whatever it
  claims to come from: a page's speculation rules send it as if the address had been typed.
- **CORS**: allowed origins get CORS headers (and preflights are answered); nobody else does.

WebSocket upgrades get the Host and Origin checks too: browsers let any page open a WebSocket
to any address (no CORS applies), and send its ``Origin``, so this is where such a page is stopped.

Refusals are 403 with a JSON body naming the setting to change: provider-shaped on proxy
routes, so SDKs raise their usual permission error. Each is logged (rate-limited) and counted.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccproxy_core.forwarding.credentials import client_credential_values, configured_keys
from ccproxy_core.forwarding.request_parts import client_address
from ccproxy_core.key_masking import without_key_shapes, without_keys
from ccproxy_core.providers import ANTHROPIC, OPENAI, provider_for
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.safe_values import safe_text
from ccproxy_core.security.cors import EXPOSED_HEADERS

OWN_PREFIXES = ("/logs", "/dashboard", "/metrics", "/health", "/docs", "/openapi.json")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})
_CROSS_SITE = (b"cross-site", b"same-site")
_SPECULATIVE = re.compile(rb"prefetch|prerender", re.IGNORECASE)
_PREFLIGHT_MAX_AGE = b"600"
_HOST_CACHE_SIZE = 64
_PAGE_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}  # a socket's page origin

log = logging.getLogger("ccproxy.security")
_refusal_log = RateLimitedLog(log)


class BrowserGuard:
    """The Host, Origin and CORS checks, before every route (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings, refusals: Counter[str]) -> None:
        self.app = app
        security = settings.security
        self.any_host = "*" in security.allowed_hosts or (
            settings.server.host.strip().lower() in _WILDCARD_BINDS and not security.allowed_hosts
        )
        self.allowed_hosts = frozenset(
            name.strip("[]").lower() for name in [*security.allowed_hosts, settings.server.host] if name
        )
        self.any_origin = "*" in security.allowed_origins
        self.allowed_origins = frozenset(origin.encode("latin-1") for origin in security.allowed_origins)
        self._host_verdicts: dict[bytes, bool] = {}
        self._operator_keys = configured_keys(settings.upstream)
        self.refusals = refusals
        """Requests refused, by reason (``host``, ``origin``, ``prefetch``); shared with ``app.state.browser_refusals``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = origin = fetch_site = fetch_mode = fetch_dest = purpose = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                fetch_site = value
            elif name == b"sec-fetch-mode":
                fetch_mode = value
            elif name == b"sec-fetch-dest":
                fetch_dest = value
            elif name in (b"sec-purpose", b"purpose"):
                purpose = value
        if host is not None and not self.any_host and not self._host_allowed(host):
            shown = _masked(host.decode("utf-8", "replace"), scope, self._operator_keys)
            await self._refuse(
                scope,
                send,
                "host",
                f"Host '{shown}' is not allowed: ccproxy answers to loopback "
                "names and SERVER__HOST; add this name to SECURITY__ALLOWED_HOSTS to allow it",
            )
            return
        if purpose is not None and _SPECULATIVE.search(purpose):
            await self._refuse(
                scope,
                send,
                "prefetch",
                "a browser's speculative load (prefetch, prerender) is refused: any web page can ask for one, "
                "with the headers of an address typed by hand; open the page itself",
            )
            return
        allowed_origin = origin is not None and self._origin_allowed(origin, scope["path"])
        if not allowed_origin and self._foreign(scope, host, origin, fetch_site, fetch_mode, fetch_dest):
            shown = _masked((origin or b"another site").decode("utf-8", "replace"), scope, self._operator_keys)
            where = "ccproxy's own endpoints (SECURITY__ALLOWED_ORIGINS=* covers the provider routes only)"
            await self._refuse(
                scope,
                send,
                "origin",
                f"requests from the web page '{shown}' are refused: add its "
                f"origin to SECURITY__ALLOWED_ORIGINS to allow it{' on ' + where if self.any_origin else ''}",
            )
            return
        if allowed_origin and origin is not None and scope["type"] == "http":
            await self._with_cors(scope, receive, send, origin)
            return
        if scope["type"] == "http" and is_own_path(scope["path"]):
            await self.app(scope, receive, _never_framed(send))
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, header: bytes) -> bool:
        known = self._host_verdicts.get(header)
        if known is None:
            known = self._judge_host(header)
            if len(self._host_verdicts) < _HOST_CACHE_SIZE:  # bounded: clients choose Host freely
                self._host_verdicts[header] = known
        return known

    def _judge_host(self, header: bytes) -> bool:
        name = _host_name(header.decode("latin-1"))
        if name is None:
            return False
        if name in LOOPBACK_NAMES or name.endswith(".localhost") or name in self.allowed_hosts:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def _origin_allowed(self, origin: bytes, path: str) -> bool:
        """A named origin may call every route; ``*`` only the provider routes: any web page reading the
        records, or resetting them, is never what an operator who allows browsers to call providers meant."""
        return origin.lower() in self.allowed_origins or (self.any_origin and _is_provider_path(path))

    @staticmethod
    def _foreign(
        scope: Scope,
        host: bytes | None,
        origin: bytes | None,
        fetch_site: bytes | None,
        fetch_mode: bytes | None,
        fetch_dest: bytes | None,
    ) -> bool:
        """True when a browser sends this request for a page of another origin (and it is not a plain link)."""
        if origin is not None:
            scheme = _PAGE_SCHEMES.get(scope.get("scheme", "http"), "http")
            same = host is not None and origin.lower() == f"{scheme}://".encode() + host.lower()
            foreign = not same
        else:
            foreign = fetch_site in _CROSS_SITE
        if not foreign:
            return False
        top_level = fetch_dest in (None, b"document")  # not a frame, embed or object of the other page
        navigation = fetch_mode == b"navigate" and top_level and scope.get("method") in ("GET", "HEAD")
        return not (navigation and is_own_path(scope["path"]))

    async def _refuse(self, scope: Scope, send: Send, reason: str, message: str) -> None:
        self.refusals[reason] += 1
        _refusal_log.log(
            "refused %s %s from %s: %s",
            scope.get("method", "WEBSOCKET"),
            _logged_path(scope, self._operator_keys),
            client_address(scope) or "?",
            message,
        )
        if is_own_path(scope["path"]):
            body = json.dumps({"detail": message}).encode()
        else:
            body = provider_for(_service_type(scope)).error_body("permission_error", message, None)
        prefix = "http"
        if scope["type"] == "websocket":
            if "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1008})  # the server answers the upgrade 403
                return
            prefix = "websocket.http"
        await send(
            {
                "type": f"{prefix}.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": f"{prefix}.response.body", "body": body})

    async def _with_cors(self, scope: Scope, receive: Receive, send: Send, origin: bytes) -> None:
        cors = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
        ]
        headers = dict(scope["headers"])
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            preflight = [
                *cors,
                (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
                (b"access-control-allow-headers", headers.get(b"access-control-request-headers", b"*")),
                (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": preflight})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _host_name(host: str) -> str | None:
    """``example.com:8000`` -> ``example.com``; ``[::1]:8000`` -> ``::1``; ``None`` when what follows the
    name is not a port (``127.0.0.1:80@evil``), which no browser sends."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else None if rest else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:
        name, port = host, ""
    # "localhost." is "localhost" (a fully qualified name): Chromium sends it as the user typed it.
    return name.removesuffix(".") if port is not None and _PORT.fullmatch(port) else None


_PORT = re.compile(r"[0-9]*")


def _is_provider_path(path: str) -> bool:
    return path.startswith(("/v1/", "/api/v1/"))


_BROWSERS_OWN = frozenset({"/favicon.ico", "/robots.txt", "/apple-touch-icon.png", "/apple-touch-icon-precomposed.png"})


def is_browsers_own_request(path: str) -> bool:
    """A path a browser asks for by itself (an icon, ``/.well-known/...``), never an API client."""
    return path in _BROWSERS_OWN or path.startswith("/.well-known/")


def is_own_path(path: str) -> bool:
    """A path under one of ccproxy's own endpoints (``/logs``, ``/dashboard``, ``/metrics``, ...)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in OWN_PREFIXES)


def _service_type(scope: Scope) -> str:
    """Which provider's error shape a refused proxy request gets (as ``providers.service_type_for`` decides)."""
    if scope["path"].removeprefix("/api").startswith("/v1/chat/"):
        return OPENAI
    names = {name for name, _ in scope["headers"]}
    return ANTHROPIC if b"anthropic-version" in names or b"x-api-key" in names else OPENAI


def _never_framed(send: Send) -> Send:
    """``send`` with ``X-Frame-Options: DENY`` on the answer. Over plain HTTP to a LAN name a browser
    sends no ``Sec-Fetch-*`` headers and a frame's request no ``Origin``, so the checks above cannot
    see another page framing ccproxy's own; the browser then refuses to show the answer, and drops
    the connection (a framed ``/logs/stream`` would otherwise hold a subscriber slot)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"x-frame-options" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"x-frame-options", b"DENY")]}
        await send(message)

    return sending


def _logged_path(scope: Scope, operator_keys: tuple[str, ...]) -> str:
    """The path for a log line, with a key put in it masked (the client's, the operator's, or one shaped as
    providers' are)."""
    return _masked(scope["path"], scope, operator_keys)


def _masked(text: str, scope: Scope, operator_keys: tuple[str, ...]) -> str:
    """``text`` from the request (its path, its Host or Origin as the UTF-8 browsers send) for a log line
    and the refusal: escaped, cut, and with a key in it masked, as :func:`_logged_path` says."""
    shown = without_key_shapes(safe_text(text, 400))
    keys = client_credential_values(scope.get("headers", [])) + operator_keys
    return safe_text(without_keys(keys, shown) if keys else shown, 200)
