"""GET /logs/analytics on ClickHouse: totals, percentiles, tokens, cost, breakdowns and a time series.

The same answer as the DuckDB store, computed with SQL both ClickHouse 18.16 and current releases
run (``countIf`` rather than ``FILTER``, no positional ORDER BY). Percentiles are ``quantilesExact``:
always an observed duration, the value at rank ``floor(q * n)`` of the sorted durations. Over a
Distributed table every shard computes its part and the server that was asked merges them.
Blocking: call it in a thread.
"""

from __future__ import annotations

from typing import Any

from clickhouse_driver import Client

from ccproxy_core.plugin_host.log_store import TOP_GROUPS, Bucket, LogFilters
from ccproxy_core.plugin_host.store_answers import (
    BUCKET_MICROS,
    RECENT_ERROR_COLUMNS,
    RECENT_ERRORS,
    SUMS_WIDTH,
    Sums,
    busiest_models,
    filled_series,
    recent_error_rows,
    series_point,
)

from .filters import Params, where_clause
from .schema import TABLE, quote

IS_ERROR = "(status_code >= 400 OR error_type IS NOT NULL)"
_SUMS = (
    f"count(), countIf({IS_ERROR}), sum(tokens_input), sum(tokens_output), sum(cache_read_tokens), "
    "sum(cache_write_tokens), sum(cost_usd), countIf(priced = 0)"
)
_DURATION_PERCENTILES = "quantilesExact(0.5, 0.95, 0.99)(duration_ms)"


def analytics(client: Client, database: str, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
    """Everything GET /logs/analytics shows but the window, for the rows matching ``filters``."""
    params = Params()
    where = where_clause(filters, params)
    sql = (
        f"SELECT {_SUMS}, avg(duration_ms), {_DURATION_PERCENTILES}, count(ttft_ms), "
        f"quantilesExact(0.5, 0.95)(ttft_ms) FROM {database}.{TABLE} {where}"
    )
    (row,) = client.execute(sql, params.values)
    total = Sums(row[:SUMS_WIDTH])
    average, durations, ttft_count, ttft = row[SUMS_WIDTH:]
    p50, p95, p99 = durations if total.requests else (None, None, None)
    ttft_p50, ttft_p95 = ttft if ttft_count else (None, None)
    table = f"{database}.{TABLE}"
    return {
        "totals": total.totals(),
        "duration_ms": {"avg": average if total.requests else None, "p50": p50, "p95": p95, "p99": p99},
        "ttft_ms": {"p50": ttft_p50, "p95": ttft_p95},
        "tokens": total.tokens(),
        "cost": total.cost(),
        "by_model": _top_models(client, table, where, params, row[:SUMS_WIDTH]),
        "by_service_type": _breakdown(client, table, "service_type", where, params),
        "timeseries": {"bucket": bucket, "points": _timeseries(client, table, filters, bucket, where, params)},
        "recent_errors": _recent_errors(client, table, where, params),
    }


def _breakdown(client: Client, table: str, column: str, where: str, params: Params) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {quote(column)}, {_SUMS}, quantileExact(0.95)(duration_ms) FROM {table} {where} "
        f"GROUP BY {quote(column)} ORDER BY count() DESC, {quote(column)}"
    )
    return [
        Sums(tuple(values[:SUMS_WIDTH])).breakdown_row(column, key, values[SUMS_WIDTH])
        for key, *values in client.execute(sql, params.values)
    ]


def _top_models(client: Client, table: str, where: str, params: Params, whole: tuple[Any, ...]) -> list[dict[str, Any]]:
    """``by_model``: the :data:`TOP_GROUPS` models with most requests, then one row summing the rest (the window's
    sums ``whole`` less theirs). Clients name the model, so there may be as many as were ever sent: only the
    rows shown are read out, and have a percentile."""
    sql = (
        f"SELECT model, {_SUMS} FROM {table} {where} GROUP BY model ORDER BY count() DESC, model LIMIT {TOP_GROUPS + 1}"
    )
    rows = client.execute(sql, params.values)
    p95 = _p95_of_models(client, table, [model for model, *_ in rows[:TOP_GROUPS]], where, params)
    return busiest_models(rows, whole, p95)


def _p95_of_models(
    client: Client, table: str, models: list[str | None], where: str, params: Params
) -> dict[str | None, float]:
    chosen = Params()
    chosen.values = dict(params.values)
    named = tuple(model for model in models if model is not None)
    either = ([f"model IN {chosen.add(named)}"] if named else []) + (["isNull(model)"] if None in models else [])
    if not either:
        return {}
    condition = f"{where} AND ({' OR '.join(either)})" if where else f"WHERE {' OR '.join(either)}"
    sql = f"SELECT model, quantileExact(0.95)(duration_ms) FROM {table} {condition} GROUP BY model"
    return dict(client.execute(sql, chosen.values))


def _timeseries(
    client: Client, table: str, filters: LogFilters, bucket: Bucket, where: str, params: Params
) -> list[dict[str, Any]]:
    width = BUCKET_MICROS[bucket]
    sql = (
        f"SELECT intDiv(timestamp_us, {width}) AS slot, {_SUMS}, {_DURATION_PERCENTILES} "
        f"FROM {table} {where} GROUP BY slot"
    )
    by_slot = {
        slot: series_point(slot * width, Sums(tuple(values[:SUMS_WIDTH])), values[SUMS_WIDTH])
        for slot, *values in client.execute(sql, params.values)
    }
    return filled_series(by_slot, filters.start_time, filters.end_time, width)


def _recent_errors(client: Client, table: str, where: str, params: Params) -> list[dict[str, Any]]:
    condition = f"{where} AND {IS_ERROR}" if where else f"WHERE {IS_ERROR}"
    columns = ", ".join("timestamp_us" if c == "timestamp" else quote(c) for c in RECENT_ERROR_COLUMNS)
    sql = f"SELECT {columns} FROM {table} {condition} ORDER BY timestamp_us DESC, request_id DESC LIMIT {RECENT_ERRORS}"
    return recent_error_rows(client.execute(sql, params.values))
