"""Sessions (GET /logs/sessions and /logs/sessions/{id}) for DuckDB. Blocking: call in a thread."""

from __future__ import annotations

import dataclasses
from typing import Any

from ccproxy_core.plugin_host.log_store import EncodedRows, LogFilters
from ccproxy_core.plugin_host.store_answers import micros_to_datetime

from . import json_rows
from .groups import SUMS, SUMS_WIDTH, Cursor, sums_to_dict
from .json_rows import encoded_page
from .queries import where_clause
from .rows import SELECT_LIST, row_to_dict
from .schema import one_row

# A session that used several projects, keys or clients names them all, sorted, comma separated;
# keys by fingerprint, which readers replace with the names configured now.
_DESCRIPTION = """min(epoch_us("timestamp")), max(epoch_us("timestamp")),
    list(DISTINCT "model") FILTER (WHERE "model" IS NOT NULL),
    string_agg(DISTINCT "project", ', ' ORDER BY "project"),
    string_agg(DISTINCT "end_user", ', ' ORDER BY "end_user"),
    string_agg(DISTINCT "api_key_id", ', ' ORDER BY "api_key_id"),
    string_agg(DISTINCT "client_name", ', ' ORDER BY "client_name")"""


def session_list(cursor: Cursor, filters: LogFilters, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Sessions with matching rows, most recently active first, and their number."""
    params: list[Any] = []
    where = where_clause(filters, params)
    where = f'{where} AND "session_id" IS NOT NULL' if where else 'WHERE "session_id" IS NOT NULL'
    sql = (
        f'SELECT "session_id", {SUMS}, {_DESCRIPTION} FROM access_logs {where} GROUP BY "session_id" '
        f'ORDER BY max(epoch_us("timestamp")) DESC, "session_id" LIMIT ? OFFSET ?'
    )
    rows = cursor.execute(sql, [*params, limit, offset]).fetchall()
    (total,) = one_row(cursor.execute(f'SELECT count(DISTINCT "session_id") FROM access_logs {where}', params))
    return [_session(row) for row in rows], int(total)


def _session(row: tuple[Any, ...]) -> dict[str, Any]:
    session_id, *rest = row
    sums, (first, last, models, project, end_user, api_key, client) = rest[:SUMS_WIDTH], rest[SUMS_WIDTH:]
    return {
        "session_id": session_id,
        "first_seen": micros_to_datetime(first).isoformat(),
        "last_seen": micros_to_datetime(last).isoformat(),
        **sums_to_dict(sums),
        "models": sorted(models or []),
        "project": project,
        "end_user": end_user,
        "api_key": api_key,
        "client_name": client,
    }


def session_requests(cursor: Cursor, session_id: str, limit: int) -> list[dict[str, Any]]:
    """One session's rows, oldest first."""
    sql = f'SELECT {SELECT_LIST} FROM access_logs WHERE "session_id" = ? ORDER BY "timestamp", request_id LIMIT ?'
    return [row_to_dict(row) for row in cursor.execute(sql, [session_id, limit]).fetchall()]


def session_requests_encoded(cursor: Cursor, session_id: str, limit: int) -> EncodedRows:
    """:func:`session_requests` with the rows encoded by DuckDB (see :mod:`.json_rows`), at most
    :data:`~.json_rows.PAGE_BYTES` of them (``truncated`` then says rows were left out)."""
    where, order = 'WHERE "session_id" = ?', '"timestamp", request_id'
    rows, _, more = encoded_page(cursor, where, [session_id], order, limit, max_bytes=json_rows.PAGE_BYTES)
    return dataclasses.replace(rows, truncated=more and len(rows) < limit)
