"""Grouped sums (GET /logs/analytics?group_by=) and sessions (GET /logs/sessions) for DuckDB.

A group's key is one SQL expression per dimension; values come only from bound parameters.
Top N groups are ranked by cost, then requests; an ``other`` group sums the rest, computed as
the window's totals minus the top groups (one more scan instead of shipping every group).
Blocking: call in a thread.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ccproxy_core.plugin_host.log_store import OTHER_GROUP, Grouping, LogFilters, money_sum
from ccproxy_core.plugin_host.store_answers import jsonable, micros_to_datetime

from .attribution_filters import tag_path
from .queries import where_clause
from .schema import one_row

Cursor = duckdb.DuckDBPyConnection
DAY_MICROS = 86_400_000_000
MAX_BREAKDOWN = 20

_KEYS = {
    "model": '"model"',
    "service_type": '"service_type"',
    "session": '"session_id"',
    "project": '"project"',
    "end_user": '"end_user"',
    "api_key": '"api_key_id"',  # the fingerprint: readers label it with the name configured now
    "client": '"client_name"',
    "day": f'epoch_us("timestamp") // {DAY_MICROS}',
}
SUMS = """count(*),
    count(*) FILTER (WHERE "status_code" >= 400 OR "error_type" IS NOT NULL),
    coalesce(sum("tokens_input"), 0), coalesce(sum("tokens_output"), 0),
    coalesce(sum("cache_read_tokens"), 0), coalesce(sum("cache_write_tokens"), 0),
    coalesce(sum("cost_usd"), 0),
    count(*) FILTER (WHERE NOT coalesce("priced", false))"""
SUMS_WIDTH = 8
_COST = 8  # the cost's position in a grouped SELECT (the key, then SUMS)


def sums_to_dict(values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """The :data:`SUMS` values of one group as the API shows them."""
    requests, errors, tokens_in, tokens_out, cache_read, cache_write, cost, unpriced = values
    tokens = {
        "input": int(tokens_in),
        "output": int(tokens_out),
        "cache_read": int(cache_read),
        "cache_write": int(cache_write),
    }
    return {
        "requests": int(requests),
        "errors": int(errors),
        "tokens": {**tokens, "total": sum(tokens.values())},
        "cost_usd": float(jsonable(cost)),
        "unpriced_requests": int(unpriced),
    }


def key_expression(dimension: str, tag: str | None, params: list[Any]) -> str:
    """The SQL expression of a grouping key; a tag's path goes into ``params``."""
    if dimension == "tag":
        params.append(tag_path(tag or ""))
        return 'json_extract_string("tags", ?)'
    return _KEYS[dimension]


def groups(cursor: Cursor, filters: LogFilters, grouping: Grouping) -> list[dict[str, Any]]:
    """The top groups of the rows matching ``filters``, and ``other`` for the rest."""
    key_params: list[Any] = []
    key = key_expression(grouping.dimension, grouping.tag, key_params)
    where_params: list[Any] = []
    where = where_clause(filters, where_params)
    order = "1 DESC" if grouping.dimension == "day" else f"{_COST} DESC, 2 DESC, 1 NULLS LAST"
    sql = f"SELECT {key} AS group_key, {SUMS} FROM access_logs {where} GROUP BY group_key ORDER BY {order} LIMIT ?"
    rows = cursor.execute(sql, [*key_params, *where_params, grouping.top]).fetchall()
    result = [{"key": _key_text(grouping.dimension, key_value), **sums_to_dict(values)} for key_value, *values in rows]
    if grouping.dimension == "day":
        result.reverse()
    if grouping.breakdown:
        _add_breakdown(cursor, filters, grouping, key, key_params, result)
    other = _other(cursor, where, where_params, result)
    if other is not None:
        result.append(other)
    return result


def _key_text(dimension: str, value: Any) -> Any:
    if dimension == "day" and value is not None:
        return micros_to_datetime(int(value) * DAY_MICROS).date().isoformat()
    return value


def _other(cursor: Cursor, where: str, params: list[Any], top: list[dict[str, Any]]) -> dict[str, Any] | None:
    total = sums_to_dict(one_row(cursor.execute(f"SELECT {SUMS} FROM access_logs {where}", params)))
    if total["requests"] == sum(group["requests"] for group in top):
        return None
    rest: dict[str, Any] = {
        "key": OTHER_GROUP,
        "rest": True,
        "requests": total["requests"],
        "errors": total["errors"],
        "tokens": dict(total["tokens"]),
        "cost_usd": total["cost_usd"],
        "unpriced_requests": total["unpriced_requests"],
    }
    for group in top:
        rest["requests"] -= group["requests"]
        rest["errors"] -= group["errors"]
        rest["unpriced_requests"] -= group["unpriced_requests"]
        for part, count in group["tokens"].items():
            rest["tokens"][part] -= count
    rest["cost_usd"] = money_sum([total["cost_usd"], *(-(group["cost_usd"] or 0.0) for group in top)])
    return rest


def _add_breakdown(
    cursor: Cursor,
    filters: LogFilters,
    grouping: Grouping,
    key: str,
    key_params: list[Any],
    result: list[dict[str, Any]],
) -> None:
    """Each shown group's own groups by the second dimension (a group whose name is ``other`` too;
    the ``other`` group summing the rest is added after, without them)."""
    sub_params: list[Any] = []
    sub_key = key_expression(grouping.breakdown or "model", None, sub_params)
    where_params: list[Any] = []
    where = where_clause(filters, where_params)
    sql = (
        f"SELECT {key} AS group_key, {sub_key} AS sub_key, {SUMS} FROM access_logs {where} "
        f"GROUP BY group_key, sub_key ORDER BY {_COST + 1} DESC, 3 DESC, 2 NULLS LAST"
    )
    by_group: dict[Any, list[dict[str, Any]]] = {}
    for group_key, sub_value, *values in cursor.execute(sql, [*key_params, *sub_params, *where_params]).fetchall():
        parts = by_group.setdefault(_key_text(grouping.dimension, group_key), [])
        if len(parts) < MAX_BREAKDOWN:
            parts.append({"key": _key_text(grouping.breakdown or "model", sub_value), **sums_to_dict(values)})
    for group in result:
        group["breakdown"] = by_group.get(group["key"], [])
