"""The /logs routes over stored records: status, query, analytics, entries, reset (and the stream).

The store is found at request time through the ``get_log_store`` hook, so any store plugin
can serve these routes. Without one, the routes that need stored data answer 503 naming the
settings that turn storage on. Every route requires SECURITY__AUTH_TOKEN when it is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from ccproxy_core.error_lines import error_line
from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.plugin_host.key_groups import configured_key_names, name_key_groups
from ccproxy_core.plugin_host.log_store import (
    SORTABLE_COLUMNS,
    TOP_GROUPS,
    Bucket,
    EncodedRowReads,
    EncodedRows,
    Grouping,
    LogFilters,
    LogStore,
    show_unknown_costs,
)
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.safe_values import safe_error_text
from ccproxy_core.security.auth import require_auth_token

from .attribution_routes import GROUP_BY_HELP, parse_grouping, session_route, sessions_route
from .heavy_reads import json_answer, read_slot, rows_answer
from .known_params import refuse_unknown_params
from .params import (
    FilterParams,
    choose_bucket,
    decode_cursor,
    encode_cursor,
    filter_params,
    parse_window,
    resolve_window,
)
from .settings import LogsApiSettings
from .stream_route import HUB_ATTRIBUTE, stream_logs
from .top_models import top_models

log = logging.getLogger("ccproxy.logs_api")
_store_failures = RateLimitedLog(log, level=logging.ERROR)  # a polling dashboard must not fill the log

T = TypeVar("T")
STATUS_STORE_SECONDS = 3.0
"""How long /logs/status waits for the store's own figures (size, rows) before answering without them."""

NO_STORE = (
    "no access-log store is active, so nothing is stored: set OBSERVABILITY__LOGS_COLLECTION_ENABLED=true "
    "and OBSERVABILITY__LOG_STORAGE_BACKEND=duckdb"
)
# Documented on every route, so the OpenAPI schema lists each status a client can get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "SECURITY__AUTH_TOKEN is set and the request did not carry it"},
    503: {"description": "No access-log store is active (storage is off), or it could not answer"},
}
RESET_REFUSED = "Refused: the server is reachable from other machines and no SECURITY__AUTH_TOKEN is set"
OrderColumn = Enum("OrderColumn", {name: name for name in SORTABLE_COLUMNS}, type=str)  # type: ignore[misc]


def build_router() -> APIRouter:
    """All /logs routes, each behind :func:`require_auth_token`."""
    router = APIRouter(
        prefix="/logs",
        tags=["logs"],
        dependencies=[Depends(require_auth_token), Depends(refuse_unknown_params)],
        responses=ERROR_RESPONSES,
    )
    router.add_api_route("/status", logs_status, methods=["GET"])
    # scope="function": the turn is given back once the answer is encoded, before it is sent. A
    # client that stops reading keeps its own connection waiting, not every other reader.
    read_turn = Depends(read_slot, scope="function")
    heavy: dict[str, Any] = {"methods": ["GET"], "dependencies": [read_turn], "response_class": JSONResponse}
    router.add_api_route("/query", logs_query, **heavy)
    router.add_api_route("/analytics", logs_analytics, **heavy)
    router.add_api_route("/entries", logs_entries, **heavy)
    router.add_api_route("/sessions", sessions_route(require_store, _ask), **heavy)
    one_session = session_route(require_store, _ask)
    not_found: dict[int | str, dict[str, Any]] = {404: {"description": "No stored request has this session id"}}
    # A session id is the client's free text: "a/b" needs the path form's ``:path``, and "." or
    # ".." cannot travel in a path at all (URLs drop such segments), hence the query form.
    router.add_api_route("/sessions/{session_id:path}", one_session, **heavy, responses=not_found)
    router.add_api_route("/session", one_session, **heavy, responses=not_found)
    router.add_api_route(
        "/stream",
        stream_logs,
        methods=["GET"],
        response_model=None,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
    )
    router.add_api_route("/reset", logs_reset, methods=["POST"], responses={403: {"description": RESET_REFUSED}})
    return router


def find_store(request: Request) -> LogStore | None:
    """The active store, asked through the ``get_log_store`` hook (``None`` when storage is off).

    A storage plugin whose hook raises makes it a 503 with its reason, as a store that fails to answer."""
    try:
        return host_of(request.app).log_store()
    except Exception as exc:  # noqa: BLE001 - a plugin's failure, reported, never a 500
        _store_failures.log("get_log_store failed", exc_info=True)
        raise HTTPException(status_code=503, detail=f"the log store could not be found: {store_reason(exc)}") from None


def require_store(request: Request) -> LogStore:
    """FastAPI dependency: the active store, or 503 naming the settings that enable one."""
    store = find_store(request)
    if store is None:
        raise HTTPException(status_code=503, detail=NO_STORE)
    return store


async def _ask(call: Awaitable[T]) -> T:
    try:
        return await call
    except Exception as exc:  # noqa: BLE001 - a failing store is a 503 with its reason, never a 500
        _store_failures.log("the log store failed to answer", exc_info=True)
        raise HTTPException(status_code=503, detail=f"the log store could not answer: {store_reason(exc)}") from None


def store_reason(exc: BaseException, max_length: int = 300) -> str:
    """A store error as one short line, with no secret."""
    return safe_error_text(error_line(exc, max_length), max_length)


def _iso(unix_seconds: float | None) -> str | None:
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat() if unix_seconds is not None else None


async def logs_status(request: Request) -> dict[str, Any]:
    """Which features are on, the store and its writer's health."""
    settings: Settings = request.app.state.settings
    observability = settings.observability
    hub = getattr(request.app.state, HUB_ATTRIBUTE, None)
    result: dict[str, Any] = {
        "enabled": {
            # Other plugins' flags: absent when that plugin is not installed or disabled by name.
            "metrics": getattr(observability, "metrics_endpoint_enabled", False),
            "logs_endpoints": section_values(settings, LogsApiSettings).logs_endpoints_enabled,
            "dashboard": getattr(observability, "dashboard_enabled", False),
            "logs_collection": getattr(observability, "logs_collection_enabled", False),
        },
        "backend": "none",
        "database_path": None,
        "database_size_bytes": None,
        "row_count": None,
        "queue_depth": None,
        "last_flush_at": None,
        "dropped_records": None,
        "write_errors": None,
        "rows_written": None,
        "stream_subscribers": hub.subscriber_count if hub is not None else 0,
        # Where /logs/stream stands: a client that joins from here (``last_event_id``) misses nothing after it.
        "stream_last_event_id": str(hub.last_id) if hub is not None else None,
        "store_error": None,
    }
    store = find_store(request)
    if store is None:
        return result
    stats = store.stats()
    result.update(
        backend=store.backend,
        **{key: stats.get(key) for key in ("queue_depth", "dropped_records", "write_errors", "rows_written")},
    )
    result["last_flush_at"] = _iso(stats.get("last_flush_at"))
    try:
        result.update(await asyncio.wait_for(store.describe(), STATUS_STORE_SECONDS))
    except TimeoutError:  # a store that hangs (a frozen server) must not hang the health check with it
        result["store_error"] = f"the log store could not answer within {STATUS_STORE_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - the store is away: its writer's health is what matters now
        log.warning("the log store could not describe itself: %s", exc)
        result["store_error"] = f"the log store could not answer: {store_reason(exc)}"
    return result


async def logs_query(
    store: LogStore = Depends(require_store),
    filters: FilterParams = Depends(filter_params),
    start_time: str | None = Query(None, description="ISO 8601 or Unix seconds; included"),
    end_time: str | None = Query(None, description="ISO 8601 or Unix seconds; excluded"),
    limit: int = Query(100, ge=1, le=10_000),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> Response:
    """Rows newest first, filtered, with a keyset cursor for the next page."""
    start, end = parse_window(start_time, end_time)
    row_filters, after = filters.to_filters(start, end), decode_cursor(cursor, filters)
    rows: list[dict[str, Any]] | EncodedRows
    if isinstance(store, EncodedRowReads):
        rows, next_position = await _ask(store.query_encoded(row_filters, limit, after))
    else:
        page = await _ask(store.query(row_filters, limit, after))
        rows, next_position = page.rows, page.next_position
    return await rows_answer(
        rows,
        {
            "count": len(rows),
            "limit": limit,
            "next_cursor": encode_cursor(next_position, filters) if next_position else None,
            "filters": filters.echo(start, end),
        },
    )


async def logs_analytics(
    request: Request,
    store: LogStore = Depends(require_store),
    filters: FilterParams = Depends(filter_params),
    hours: float = Query(
        24, gt=0, le=24 * 3660, allow_inf_nan=False, description="Window length when start_time is not given"
    ),
    start_time: str | None = Query(None, description="ISO 8601 or Unix seconds; included"),
    end_time: str | None = Query(None, description="ISO 8601 or Unix seconds; excluded; default now"),
    bucket: Literal["minute", "hour", "day"] | None = Query(None, description="Default: by window length"),
    group_by: str | None = Query(None, description=GROUP_BY_HELP),
    top: int = Query(TOP_GROUPS, ge=1, le=10_000, description="Groups shown; the rest are summed as 'other'"),
    breakdown: str | None = Query(None, description="A second dimension within each group (model, ...)"),
) -> Response:
    """Totals, latency percentiles, tokens, cost, breakdowns, a time series and recent errors."""
    start, end = resolve_window(hours, start_time, end_time)
    chosen = choose_bucket(bucket, start, end)
    grouping = parse_grouping(group_by, top, breakdown)
    row_filters = filters.to_filters(start, end)
    result, groups = await _analytics_and_groups(store, row_filters, chosen, grouping)  # type: ignore[arg-type]
    result["by_model"] = top_models(result.get("by_model") or [])
    for breakdown_rows in ("by_model", "by_service_type"):
        show_unknown_costs(result.get(breakdown_rows) or [])
    if grouping is not None and groups is not None:
        result["group_by"] = group_by
        names = configured_key_names(request.app.state.settings.attribution)
        result["groups"] = show_unknown_costs(name_key_groups(groups, grouping, names))
    return await json_answer({"window": {"start": start.isoformat(), "end": end.isoformat()}, **result})


async def _analytics_and_groups(
    store: LogStore, filters: LogFilters, bucket: Bucket, grouping: Grouping | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Both from one read where the store offers it (``analytics_with_groups``), so the groups add up to
    the totals while records are written; else one read after the other."""
    together = getattr(store, "analytics_with_groups", None)
    if grouping is not None and together is not None:
        return await _ask(together(filters, bucket, grouping))
    result = await _ask(store.analytics(filters, bucket))
    return result, None if grouping is None else await _ask(store.groups(filters, grouping))


async def logs_entries(
    store: LogStore = Depends(require_store),
    filters: FilterParams = Depends(filter_params),
    start_time: str | None = Query(None, description="ISO 8601 or Unix seconds; included"),
    end_time: str | None = Query(None, description="ISO 8601 or Unix seconds; excluded"),
    page: int = Query(1, ge=1, le=10_000_000),
    page_size: int = Query(50, ge=1, le=1000),
    order_by: OrderColumn = Query(OrderColumn.timestamp),  # type: ignore[attr-defined]
    order_desc: bool = Query(True),
) -> Response:
    """Raw rows by page, ordered by any column."""
    start, end = parse_window(start_time, end_time)
    asked = (page, page_size, order_by.value, order_desc, filters.to_filters(start, end))
    rows: list[dict[str, Any]] | EncodedRows
    if isinstance(store, EncodedRowReads):
        rows, total = await _ask(store.entries_encoded(*asked))
    else:
        rows, total = await _ask(store.entries(*asked))
    return await rows_answer(
        rows,
        {
            "page": page,
            "page_size": page_size,
            "total": total,
            "order_by": order_by.value,
            "order_desc": order_desc,
            "filters": filters.echo(start, end),
        },
    )


async def logs_reset(request: Request, store: LogStore = Depends(require_store)) -> Any:
    """Delete every stored row. Refused when other machines can reach the server and no token guards it."""
    settings: Settings = request.app.state.settings
    if settings.security.auth_token is None and not is_loopback(settings.server.host):
        return JSONResponse(
            {
                "detail": f"POST /logs/reset is refused: the server listens on {settings.server.host}, which other "
                "machines can reach, and no SECURITY__AUTH_TOKEN is set. Set a token, or listen on 127.0.0.1"
            },
            status_code=403,
        )
    return {"deleted": await _ask(store.reset())}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; any other address or name may be reachable from elsewhere."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
