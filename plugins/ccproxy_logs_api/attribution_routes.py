"""GET /logs/sessions, GET /logs/sessions/{session_id} (also /logs/session?session_id=), and the
``group_by`` part of /logs/analytics."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import Response

from ccproxy_core.accounting.attribution import clean_tag_name
from ccproxy_core.plugin_host.key_groups import configured_key_names, name_session_keys
from ccproxy_core.plugin_host.log_store import (
    GROUP_DIMENSIONS,
    EncodedRowReads,
    EncodedRows,
    Grouping,
    LogStore,
    show_unknown_costs,
)

from .heavy_reads import json_answer, rows_answer
from .params import FilterParams, filter_params, param_error, parse_window

BREAKDOWN_DIMENSIONS = tuple(d for d in GROUP_DIMENSIONS if d != "day")
GROUP_BY_HELP = f"One of {', '.join(GROUP_DIMENSIONS)}, or tag:<name>"


def parse_grouping(group_by: str | None, top: int, breakdown: str | None) -> Grouping | None:
    """The grouping asked for by ``group_by``/``top``/``breakdown``; 422 naming the bad one."""
    if breakdown is not None and breakdown not in BREAKDOWN_DIMENSIONS:
        raise param_error("breakdown", f"must be one of {', '.join(BREAKDOWN_DIMENSIONS)}", breakdown)
    if not group_by:
        if breakdown is not None:
            raise param_error("breakdown", "needs group_by", breakdown)
        return None
    if group_by.startswith("tag:"):
        name = clean_tag_name(group_by[4:])
        if name is None:
            raise param_error(
                "group_by", "tag:<name> needs a tag name of 1 to 32 characters of a-z, 0-9, _ . -", group_by
            )
        return Grouping("tag", name, top, breakdown)
    if group_by not in GROUP_DIMENSIONS:
        raise param_error("group_by", GROUP_BY_HELP, group_by)
    return Grouping(group_by, None, top, breakdown)


def sessions_route(require_store: Any, ask: Any) -> Any:
    """GET /logs/sessions, bound to the router's store dependency and error wrapper."""

    async def logs_sessions(
        request: Request,
        store: LogStore = Depends(require_store),
        filters: FilterParams = Depends(filter_params),
        start_time: str | None = Query(None, description="ISO 8601 or Unix seconds; included"),
        end_time: str | None = Query(None, description="ISO 8601 or Unix seconds; excluded"),
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=10_000_000),
    ) -> Response:
        """Sessions, most recently active first: times, requests, tokens by type, cost, models, errors."""
        start, end = parse_window(start_time, end_time)
        sessions, total = await ask(store.sessions(filters.to_filters(start, end), limit, offset))
        names = configured_key_names(request.app.state.settings.attribution)
        answer = {
            "sessions": show_unknown_costs(name_session_keys(sessions, names)),
            "total": total,
            "limit": limit,
            "offset": offset,
            "filters": filters.echo(start, end),
        }
        return await json_answer(answer, key="sessions")

    return logs_sessions


def session_route(require_store: Any, ask: Any) -> Any:
    """GET /logs/sessions/{session_id} and /logs/session?session_id=, bound like :func:`sessions_route`."""

    async def logs_session(
        session_id: str,
        store: LogStore = Depends(require_store),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> Response:
        """One session's requests, oldest first; 404 when no request carries the id."""
        if len(session_id) > 200:
            raise param_error("session_id", "is longer than 200 characters", session_id[:200], location="path")
        rows: list[dict[str, Any]] | EncodedRows
        if isinstance(store, EncodedRowReads):
            rows = await ask(store.session_requests_encoded(session_id, limit))
        else:
            rows = await ask(store.session_requests(session_id, limit))
        if not rows:
            raise HTTPException(status_code=404, detail=f"no stored request has session_id {session_id!r}")
        truncated = isinstance(rows, EncodedRows) and rows.truncated
        rest = {"session_id": session_id, "count": len(rows), "limit": limit, "truncated": truncated}
        return await rows_answer(rows, rest, key="requests")

    return logs_session
