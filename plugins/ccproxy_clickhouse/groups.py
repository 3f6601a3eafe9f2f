"""Grouped sums (GET /logs/analytics?group_by=) and sessions (GET /logs/sessions) on ClickHouse.

The same answers as the DuckDB store's, in SQL that 18.16 runs: every group is summed by the
server; ranking (cost, then requests), the top N and the ``other`` group are done here.
"""

from __future__ import annotations

from typing import Any

from clickhouse_driver import Client

from ccproxy_core.plugin_host.log_store import OTHER_GROUP, Grouping, LogFilters, money_sum
from ccproxy_core.plugin_host.store_answers import jsonable, micros_to_datetime

from .analytics import IS_ERROR
from .filters import Params, where_clause
from .rows import SELECT_LIST, row_to_dict

DAY_MICROS = 86_400_000_000
MAX_BREAKDOWN = 20
_KEYS = {
    "model": "model",
    "service_type": "service_type",
    "session": "session_id",
    "project": "project",
    "end_user": "end_user",
    "api_key": "api_key_id",  # the fingerprint: readers label it with the name configured now
    "client": "client_name",
    "day": f"intDiv(timestamp_us, {DAY_MICROS})",
}
_SUMS = (
    f"count(), countIf({IS_ERROR}), sum(tokens_input), sum(tokens_output), sum(cache_read_tokens), "
    "sum(cache_write_tokens), sum(cost_usd), countIf(priced = 0)"
)
_SUMS_WIDTH = 8


def _sums(values: Any) -> dict[str, Any]:
    requests, errors, tokens_in, tokens_out, cache_read, cache_write, cost, unpriced = values
    tokens = {
        "input": int(tokens_in or 0),
        "output": int(tokens_out or 0),
        "cache_read": int(cache_read or 0),
        "cache_write": int(cache_write or 0),
    }
    return {
        "requests": int(requests),
        "errors": int(errors),
        "tokens": {**tokens, "total": sum(tokens.values())},
        "cost_usd": float(jsonable(cost)) if cost is not None else 0.0,
        "unpriced_requests": int(unpriced),
    }


def _key(dimension: str, tag: str | None, params: Params) -> str:
    if dimension == "tag":
        return f"nullIf(visitParamExtractString(tags, {params.add(tag or '')}), '')"
    return _KEYS[dimension]


def _key_text(dimension: str, value: Any) -> Any:
    if dimension == "day" and value is not None:
        return micros_to_datetime(int(value) * DAY_MICROS).date().isoformat()
    return value


def _summed(client: Client, database: str, filters: LogFilters, keys: list[str], params: Params) -> list[tuple]:
    where = where_clause(filters, params)
    selected = ", ".join(f"{key} AS k{i}" for i, key in enumerate(keys))
    grouped = ", ".join(f"k{i}" for i in range(len(keys)))
    return client.execute(
        f"SELECT {selected}, {_SUMS} FROM {database}.access_logs {where} GROUP BY {grouped}", params.values
    )


def groups(client: Client, database: str, filters: LogFilters, grouping: Grouping) -> list[dict[str, Any]]:
    """The top groups of the rows matching ``filters``, and ``other`` for the rest."""
    params = Params()
    key = _key(grouping.dimension, grouping.tag, params)
    every = [
        {"key": _key_text(grouping.dimension, value), **_sums(rest)}
        for value, *rest in _summed(client, database, filters, [key], params)
    ]
    if grouping.dimension == "day":
        every.sort(key=lambda group: group["key"] or "")
        shown, hidden = every[-grouping.top :], every[: -grouping.top]
    else:
        every.sort(key=_rank)
        shown, hidden = every[: grouping.top], every[grouping.top :]
    if grouping.breakdown:
        _add_breakdown(client, database, filters, grouping, shown)
    if hidden:
        shown.append(_other(hidden))
    return shown


def _rank(group: dict[str, Any]) -> tuple[float, int, bool, str]:
    """Cost, then requests, most first; then the key, no key last: the DuckDB store's order too."""
    return (-group["cost_usd"], -group["requests"], group["key"] is None, str(group["key"] or ""))


def _other(hidden: list[dict[str, Any]]) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "key": OTHER_GROUP,
        "rest": True,
        "requests": 0,
        "errors": 0,
        "cost_usd": 0.0,
        "unpriced_requests": 0,
        "tokens": dict.fromkeys(("input", "output", "cache_read", "cache_write", "total"), 0),
    }
    for group in hidden:
        rest["requests"] += group["requests"]
        rest["errors"] += group["errors"]
        rest["unpriced_requests"] += group["unpriced_requests"]
        for part, count in group["tokens"].items():
            rest["tokens"][part] += count
    rest["cost_usd"] = money_sum(group["cost_usd"] for group in hidden)
    return rest


def _add_breakdown(
    client: Client, database: str, filters: LogFilters, grouping: Grouping, shown: list[dict[str, Any]]
) -> None:
    params = Params()
    keys = [_key(grouping.dimension, grouping.tag, params), _key(grouping.breakdown or "model", None, params)]
    by_group: dict[Any, list[dict[str, Any]]] = {}
    for value, sub_value, *rest in _summed(client, database, filters, keys, params):
        by_group.setdefault(_key_text(grouping.dimension, value), []).append(
            {"key": _key_text(grouping.breakdown or "model", sub_value), **_sums(rest)}
        )
    for group in shown:
        parts = sorted(by_group.get(group["key"], []), key=_rank)
        group["breakdown"] = parts[:MAX_BREAKDOWN]


def session_list(
    client: Client, database: str, filters: LogFilters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Sessions with matching rows, most recently active first, and their number."""
    params = Params()
    where = where_clause(filters, params, "session_id IS NOT NULL")
    sql = (
        f"SELECT session_id, {_SUMS}, min(timestamp_us), max(timestamp_us), groupUniqArray(model), "
        f"{_all_of('project')}, {_all_of('end_user')}, {_all_of('api_key_id')}, "
        f"{_all_of('client_name')} FROM {database}.access_logs {where} GROUP BY session_id"
    )
    rows = sorted(client.execute(sql, params.values), key=lambda row: (-row[_SUMS_WIDTH + 2], row[0]))
    return [_session(row) for row in rows[offset : offset + limit]], len(rows)


def _all_of(column: str) -> str:
    """A session that used several projects, keys or clients names them all, sorted, comma separated
    (keys by fingerprint, which readers replace with the names configured now)."""
    return f"nullIf(arrayStringConcat(arraySort(groupUniqArray({column})), ', '), '')"


def _session(row: tuple[Any, ...]) -> dict[str, Any]:
    session_id, *rest = row
    sums, (first, last, models, project, end_user, api_key, client) = rest[:_SUMS_WIDTH], rest[_SUMS_WIDTH:]
    return {
        "session_id": session_id,
        "first_seen": micros_to_datetime(first).isoformat(),
        "last_seen": micros_to_datetime(last).isoformat(),
        **_sums(sums),
        "models": sorted(model for model in models if model),
        "project": project,
        "end_user": end_user,
        "api_key": api_key,
        "client_name": client,
    }


def session_requests(client: Client, database: str, session_id: str, limit: int) -> list[dict[str, Any]]:
    """One session's rows, oldest first."""
    params = Params()
    sql = (
        f"SELECT {SELECT_LIST} FROM {database}.access_logs WHERE session_id = {params.add(session_id)} "
        f"ORDER BY timestamp_us, request_id LIMIT {int(limit)}"
    )
    return [row_to_dict(row) for row in client.execute(sql, params.values)]
