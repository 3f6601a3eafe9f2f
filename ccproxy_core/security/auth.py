"""Optional bearer-token protection for ccproxy's own endpoints (/metrics, /logs, /dashboard).

Proxy routes never use this: they pass the client's credentials to the provider untouched.

The dashboard, opened once with ``?token=<token>``, gets a session cookie. The cookie never
holds the token itself but an HMAC of it (so a leaked cookie does not reveal the token, and
changing the token ends every session). Browsers send a host's cookies to every port of that
host (RFC 6265 section 8.5), so any other server on 127.0.0.1 receives it too, whatever its
name; the port in its name only keeps the sessions of two ccproxy instances on one host apart.
It is HttpOnly, SameSite=Strict and never forwarded to a provider (:func:`strip_session_cookies`).
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr
from starlette.types import Scope

SESSION_COOKIE_PREFIX = "ccproxy_session"
_SESSION_CONTEXT = b"ccproxy dashboard session v1"


def session_cookie_name(scope: Scope) -> str:
    """``ccproxy_session_<port>``: the port this server accepted the connection on."""
    server = scope.get("server")
    return f"{SESSION_COOKIE_PREFIX}_{server[1]}" if server and server[1] else SESSION_COOKIE_PREFIX


def session_value(token: SecretStr) -> str:
    """The cookie value for ``token``: an HMAC-SHA256 of a fixed context, keyed by the token."""
    return hmac.new(token.get_secret_value().encode(), _SESSION_CONTEXT, hashlib.sha256).hexdigest()


def require_auth_token(request: Request) -> None:
    """FastAPI dependency: when SECURITY__AUTH_TOKEN is set, demand it.

    Accepted as ``Authorization: Bearer <token>``, or as the session cookie that the
    dashboard sets after being opened once with ``?token=<token>``. An empty value never
    matches. Raises 401 with a JSON message otherwise.
    """
    expected = request.app.state.settings.security.auth_token
    if expected is None:
        return
    if not (_bearer_matches(request, expected) or _cookie_matches(request, expected)):
        raise HTTPException(
            status_code=401,
            detail="this endpoint needs SECURITY__AUTH_TOKEN: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def token_matches(offered: str | None, expected: SecretStr) -> bool:
    """Constant-time comparison; ``None`` and empty offers never match."""
    if not offered:
        return False
    return hmac.compare_digest(offered.encode("utf-8", "replace"), expected.get_secret_value().encode())


def _bearer_matches(request: Request, expected: SecretStr) -> bool:
    header = request.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        return token_matches(header[7:].strip(), expected)
    return False


def _cookie_matches(request: Request, expected: SecretStr) -> bool:
    offered = request.cookies.get(session_cookie_name(request.scope))
    if not offered:
        return False
    return hmac.compare_digest(offered.encode("utf-8", "replace"), session_value(expected).encode())


def strip_session_cookies(header: str) -> str | None:
    """A ``Cookie`` header without ccproxy's session cookies; ``None`` when nothing is left.

    Called for every proxied request that carries cookies: the provider must never see them.
    """
    if SESSION_COOKIE_PREFIX not in header:
        return header
    kept = [
        part.strip()
        for part in header.split(";")
        if part.strip() and not part.strip().startswith(SESSION_COOKIE_PREFIX)
    ]
    return "; ".join(kept) or None
