"""The hook contract between ccproxy and its plugins.

This file is the one a plugin author reads. Hooks are grouped in lifecycle order:
declare -> app build -> startup -> per request -> shutdown. A plugin implements any
subset, and each implementation may take any subset of a hook's arguments (pluggy
passes them by name). Arguments may be added to a hook in later versions, never
renamed or removed, so an implementation written against today's contract keeps working.

Argument names mean the same thing everywhere:

- ``ccproxy``: the :class:`ccproxy_core.plugin_host.host.Ccproxy` handle on the running app: its
  ``app``, ``settings``, a per-plugin state namespace (``ccproxy.state("name")``), the
  plugin's own settings (``ccproxy.settings_of(Model)``) and the shared services
  (``ccproxy.log_store()``, ``ccproxy.metrics_registry()``). Module-level hook
  functions reach their per-app state through it.
- ``app``: the FastAPI application being served (``ccproxy.app``).
- ``settings``: the effective :class:`ccproxy_core.runtime.settings.Settings` (``ccproxy.settings``).
- ``context``: the :class:`ccproxy_core.accounting.record.RequestContext` of one proxied request.
- ``record``: the final, immutable :class:`ccproxy_core.accounting.record.AccessRecord` of that request.

pluggy's options hold: ``tryfirst``/``trylast`` order the calls, ``specname=`` lets a
function of another name implement a hook, and ``wrapper=True`` (or the older
``hookwrapper=True``) wraps the other implementations of ``on_request_start``,
``on_request_end``, ``get_log_store`` and ``get_metrics_registry``. The hooks that run
once per plugin, in order (``register_plugin``, ``register_routes``, ``on_startup``,
``on_shutdown``), refuse a wrapper when the plugin loads. An ``async def`` implementation
is refused when the plugin loads unless its hook's docstring says it may be ``async def``
(ccproxy would call it without awaiting it, so its body would never run), as is an async
generator for any hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.accounting.record import AccessRecord, RequestContext
    from ccproxy_core.plugin_host.admission import Admission
    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.plugin_host.log_store import LogStore
    from ccproxy_core.plugin_host.plugin_spec import PluginSpec
    from ccproxy_core.runtime.settings import Settings

hookspec = pluggy.HookspecMarker("ccproxy")
hookimpl = pluggy.HookimplMarker("ccproxy")


# --- declare -----------------------------------------------------------------


@hookspec
def register_plugin() -> PluginSpec:
    """Describe this plugin to the host: its settings model, when it is on, what it needs.

    Fires once per plugin, right after its module is imported and before settings are
    checked, so it takes no arguments and must only return a
    :class:`ccproxy_core.plugin_host.plugin_spec.PluginSpec` (no I/O). A plugin without it is enabled
    whenever it is installed and has no settings of its own. If it raises, or the spec's
    ``enabled_when`` raises or answers anything but ``(enabled, reason)``, the plugin is
    reported as failed to load (fatal under ``PLUGINS__STRICT``). Must be a plain ``def``.
    """


# --- app build ---------------------------------------------------------------


@hookspec
def register_routes(app: FastAPI, settings: Settings, ccproxy: Ccproxy) -> None:
    """Add routes to the app.

    Fires once, while the app is built, before the proxy's own routes are added,
    so a plugin's path wins over the proxy's catch-all. Must be a plain ``def``.

    May: ``app.add_api_route``, ``app.include_router``, ``app.add_route``.
    Must not: start tasks or open files (use ``on_startup``), or touch the proxy routes.

    If it raises, or adds a path and method that another plugin or the proxy already
    serves, the app is not built and start-up stops with one line naming the plugin.
    """


@hookspec(firstresult=True)
def get_log_store(app: FastAPI, settings: Settings, ccproxy: Ccproxy) -> LogStore | None:
    """Return the active access-log store, or ``None`` if this plugin provides none.

    The first non-``None`` answer wins, so a third-party store registered with
    ``tryfirst=True`` replaces the built-in DuckDB one. Asked after ``on_startup``
    by whoever needs stored records (the logs API, the dashboard), usually through
    ``ccproxy.log_store()``. Must be a plain ``def``, cheap, and must not block: return an
    object that already exists. If it raises, the caller fails (a /logs request answers 503).
    """


@hookspec(firstresult=True)
def get_metrics_registry(app: FastAPI, ccproxy: Ccproxy) -> Any | None:
    """Return the ``prometheus_client.CollectorRegistry`` that holds ccproxy's metrics.

    The first non-``None`` answer wins. The built-in metrics plugin answers with the
    registry it owns (one per app, never the process-global default); the pushgateway
    plugin asks for it, through ``ccproxy.metrics_registry()``, to push. Must be a plain
    ``def``, cheap, and must not block. If it raises, the caller fails.
    """


# --- startup -----------------------------------------------------------------


@hookspec
def on_startup(app: FastAPI, settings: Settings, ccproxy: Ccproxy) -> None:
    """The server is starting; open resources and start background tasks here.

    Fires once, inside the app's lifespan, before the first request is served.
    Plugins start one after the other: ``tryfirst`` ones, then the others in the
    order they were registered (installed plugins by name), then ``trylast`` ones;
    a plugin whose ``PluginSpec.starts_after`` names another starts after it.
    May be ``async def`` (awaited before the next plugin starts). Keep what you start
    in ``ccproxy.state("<your plugin>")`` and stop it in ``on_shutdown``.

    If it raises, start-up stops with one line naming the plugin and its error, and
    the plugins already started are shut down (``on_shutdown``, in reverse order);
    raise :class:`ccproxy_core.errors.StartupError` with a message that tells the
    user what to fix.
    """


# --- per request (hot path) --------------------------------------------------


@hookspec
def on_request_start(context: RequestContext, ccproxy: Ccproxy) -> None:
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
def admit_request(context: RequestContext, ccproxy: Ccproxy) -> Admission | None:
    """Decide whether a proxied request may be forwarded; fires right after ``on_request_start``.

    Return ``None`` to have no say, or an :class:`ccproxy_core.plugin_host.admission.Admission`:
    with ``refuse_status`` set the request is answered at once with that status and an
    error body in the provider's shape (and recorded like any other request, so
    ``on_request_end`` still fires); its ``headers`` are added to the response either way.
    The first refusal wins; headers of every answer are kept.

    Runs on the request path: must be cheap and must not block (decide from memory).
    May be ``async def``. If it raises, the error is logged with the plugin's name,
    counted, and the request is forwarded as if the plugin had said nothing.
    """


@hookspec
def on_request_end(context: RequestContext, record: AccessRecord, ccproxy: Ccproxy) -> None:
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
def on_shutdown(app: FastAPI, settings: Settings, ccproxy: Ccproxy) -> None:
    """The server is stopping; flush and close what ``on_startup`` opened.

    Fires once, inside the app's lifespan, after the last request has been answered
    and its ``on_request_end`` has fired; also when another plugin failed to start
    after this one had started. Plugins shut down in the reverse order of their
    start-up. May be ``async def``. If it raises, the error is logged with the
    plugin's name and the other plugins still shut down.
    """
