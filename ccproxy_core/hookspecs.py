"""The hook contract between ccproxy and its plugins.

This file is the one a plugin author reads. Hooks are grouped in lifecycle order:
app build -> startup -> per request -> shutdown. A plugin implements any subset,
and each implementation may take any subset of a hook's arguments (pluggy passes
them by name).

Argument names mean the same thing everywhere:

- ``app``: the FastAPI application being served.
- ``settings``: the effective :class:`ccproxy_core.settings.Settings`.
- ``context``: the :class:`ccproxy_core.record.RequestContext` of one proxied request.
- ``record``: the final, immutable :class:`ccproxy_core.record.AccessRecord` of that request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.admission import Admission
    from ccproxy_core.log_store import LogStore
    from ccproxy_core.record import AccessRecord, RequestContext
    from ccproxy_core.settings import Settings

hookspec = pluggy.HookspecMarker("ccproxy")
hookimpl = pluggy.HookimplMarker("ccproxy")


# --- app build ---------------------------------------------------------------


@hookspec
def register_routes(app: FastAPI, settings: Settings) -> None:
    """Add routes to the app.

    Fires once, while the app is built, before the proxy's own routes are added,
    so a plugin's path wins over the proxy's catch-all. Must be a plain ``def``.

    May: ``app.add_api_route``, ``app.include_router``, ``app.add_route``.
    Must not: start tasks or open files (use ``on_startup``), or touch the proxy routes.

    If it raises, or adds a path and method that another plugin or the proxy already
    serves, the app is not built and start-up stops with one line naming the plugin.
    """


@hookspec(firstresult=True)
def get_log_store(app: FastAPI, settings: Settings) -> LogStore | None:
    """Return the active access-log store, or ``None`` if this plugin provides none.

    The first non-``None`` answer wins, so a third-party store registered with
    ``tryfirst=True`` replaces the built-in DuckDB one. Asked after ``on_startup``
    by whoever needs stored records (the logs API, the dashboard). Must be cheap
    and must not block: return an object that already exists.
    """


@hookspec(firstresult=True)
def get_metrics_registry(app: FastAPI) -> Any | None:
    """Return the ``prometheus_client.CollectorRegistry`` that holds ccproxy's metrics.

    The first non-``None`` answer wins. The built-in metrics plugin answers with the
    registry it owns (one per app, never the process-global default); the pushgateway
    plugin asks for it to push. Must be cheap and must not block.
    """


# --- startup -----------------------------------------------------------------


@hookspec
def on_startup(app: FastAPI, settings: Settings) -> None:
    """The server is starting; open resources and start background tasks here.

    Fires once, inside the app's lifespan, before the first request is served.
    May be ``async def``. Keep what you start on ``app.state`` (under a name of your
    own) and stop it in ``on_shutdown``.

    If it raises, start-up stops with one line naming the plugin and its error;
    raise :class:`ccproxy_core.errors.StartupError` with a message that tells the user
    what to fix.
    """


# --- per request (hot path) --------------------------------------------------


@hookspec
def on_request_start(context: RequestContext) -> None:
    """A proxied request was received and is about to be forwarded upstream.

    Fires once per proxied request (never for the proxy's own routes such as
    /health, /metrics, /logs or /dashboard). ``context`` carries request_id, method,
    path, endpoint (the route template), client_ip, user_agent, service_type, model,
    streaming, the start time, and the client's W3C ``traceparent``/``tracestate``
    headers (for tracing plugins).

    Runs on the request path: must be cheap and must not block (no disk, no network;
    hand such work to a queue drained by a background task). May be ``async def``.
    Must not mutate the request. If it raises, the error is logged with the plugin's
    name, counted, and the request goes on unchanged.
    """


@hookspec
def admit_request(context: RequestContext) -> Admission | None:
    """Decide whether a proxied request may be forwarded; fires right after ``on_request_start``.

    Return ``None`` to have no say, or an :class:`ccproxy_core.admission.Admission`:
    with ``refuse_status`` set the request is answered at once with that status and an
    error body in the provider's shape (and recorded like any other request, so
    ``on_request_end`` still fires); its ``headers`` are added to the response either way.
    The first refusal wins; headers of every answer are kept.

    Runs on the request path: must be cheap and must not block (decide from memory).
    May be ``async def``. If it raises, the error is logged with the plugin's name,
    counted, and the request is forwarded as if the plugin had said nothing.
    """


@hookspec
def on_request_end(context: RequestContext, record: AccessRecord) -> None:
    """A proxied request has finished; ``record`` is its final access record.

    Fires exactly once per request that fired ``on_request_start``, on every path:
    success, upstream error, timeout, refused connection, client disconnect
    mid-stream. For a stream it fires after the last byte was sent (or the stream
    was cut off).

    Same rules as ``on_request_start``: cheap, non-blocking, may be ``async def``;
    a raise is logged with the plugin's name, counted, and changes nothing for the client.
    """


# --- shutdown ----------------------------------------------------------------


@hookspec
def on_shutdown(app: FastAPI, settings: Settings) -> None:
    """The server is stopping; flush and close what ``on_startup`` opened.

    Fires once, inside the app's lifespan, after the last request has been answered
    and its ``on_request_end`` has fired. Plugins shut down in the reverse order of
    their start-up. May be ``async def``. If it raises, the error is logged with the
    plugin's name and the other plugins still shut down.
    """
