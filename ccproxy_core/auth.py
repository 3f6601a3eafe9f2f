"""Optional bearer-token protection for ccproxy's own endpoints (/metrics, /logs, /dashboard).

Proxy routes never use this: they pass the client's credentials to the provider untouched.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

TOKEN_COOKIE = "ccproxy_token"


def require_auth_token(request: Request) -> None:
    """FastAPI dependency: when SECURITY__AUTH_TOKEN is set, demand it.

    Accepted as ``Authorization: Bearer <token>``, or as the ``ccproxy_token`` cookie
    that the dashboard sets after being opened once with ``?token=<token>``.
    Raises 401 with a JSON message otherwise.
    """
    expected = request.app.state.settings.security.auth_token
    if expected is None:
        return
    offered = _bearer(request.headers.get("authorization")) or request.cookies.get(TOKEN_COOKIE)
    if offered is None or not hmac.compare_digest(offered.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status_code=401,
            detail="this endpoint needs SECURITY__AUTH_TOKEN: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
