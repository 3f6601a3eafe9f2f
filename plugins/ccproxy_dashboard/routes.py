"""The dashboard's HTTP routes: GET /dashboard and GET /dashboard/static/<file>."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from ccproxy_core.security.auth import require_auth_token, session_cookie_name, session_value, token_matches
from ccproxy_dashboard import bundle, page

log = logging.getLogger("ccproxy.dashboard")

_COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def register(app: FastAPI) -> None:
    """Add the dashboard routes to ``app``."""
    router = APIRouter(tags=["dashboard"])
    router.add_api_route("/dashboard", dashboard_page, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/dashboard/static/{name}",
        static_asset,
        methods=["GET"],
        dependencies=[Depends(require_auth_token)],
        include_in_schema=False,
    )
    app.include_router(router)


async def dashboard_page(request: Request) -> Response:
    """The dashboard. ``?token=<SECURITY__AUTH_TOKEN>`` trades the token for a cookie and redirects."""
    token = request.query_params.get("token")
    if token is not None:
        return _exchange_token(request, token)
    try:
        require_auth_token(request)
    except HTTPException as exc:
        return _message(
            exc.status_code,
            "Sign in needed",
            "This ccproxy has <code>SECURITY__AUTH_TOKEN</code> set. "
            "Open <code>/dashboard?token=&lt;your token&gt;</code> once; the browser then keeps it in a cookie.",
            headers=exc.headers,
        )
    if missing := bundle.missing_entry_files():
        return _missing_bundle_page(missing)
    prefix = _prefix(request)
    body = page.dashboard_html(request.app.state.settings, prefix, bundle.bundle_version())
    headers = {**_COMMON_HEADERS, "Content-Security-Policy": page.DASHBOARD_CSP, "Cache-Control": "no-store"}
    return HTMLResponse(body, headers=headers)


async def static_asset(name: str) -> Response:
    """One file of the built bundle (JS, CSS, source map)."""
    path = bundle.asset_path(name)
    if path is None:
        return JSONResponse({"detail": f"no dashboard asset named {name!r}"}, status_code=404)
    # Asset URLs carry ?v=<bundle version>, so a rebuilt bundle gets a new URL and caching is safe.
    headers = {**_COMMON_HEADERS, "Cache-Control": "public, max-age=86400"}
    return FileResponse(path, media_type=bundle.media_type(path), headers=headers)


def _exchange_token(request: Request, offered: str) -> Response:
    """Turn ``?token=`` into an HttpOnly cookie so the token leaves the address bar and history."""
    target = f"{_prefix(request)}/dashboard"
    expected = request.app.state.settings.security.auth_token
    if expected is None:
        return RedirectResponse(target, status_code=303, headers=_COMMON_HEADERS)
    if not token_matches(offered, expected):
        return _message(
            401,
            "Wrong token",
            "The token in the link does not match <code>SECURITY__AUTH_TOKEN</code>. "
            "Open <code>/dashboard?token=&lt;your token&gt;</code> with the configured value.",
        )
    response = RedirectResponse(target, status_code=303, headers=_COMMON_HEADERS)
    response.set_cookie(
        session_cookie_name(request.scope),
        session_value(expected),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _missing_bundle_page(missing: list[str]) -> Response:
    log.error(
        "dashboard bundle not built (missing %s in %s): run `%s` (or `%s`)",
        ", ".join(missing),
        bundle.STATIC_DIR,
        bundle.BUILD_COMMAND,
        bundle.BUILD_COMMAND_LONG,
    )
    return _message(
        503,
        "The dashboard was not built",
        f"Its front-end files ({html.escape(', '.join(missing))}) are missing. From the ccproxy source tree run "
        f"<code>{html.escape(bundle.BUILD_COMMAND)}</code> (that is, "
        f"<code>{html.escape(bundle.BUILD_COMMAND_LONG)}</code>), then reload this page.",
    )


def _message(status_code: int, title: str, message_html: str, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {
        **_COMMON_HEADERS,
        "Content-Security-Policy": page.MESSAGE_CSP,
        "Cache-Control": "no-store",
        **(headers or {}),
    }
    return HTMLResponse(page.message_html(title, message_html), status_code=status_code, headers=all_headers)


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
