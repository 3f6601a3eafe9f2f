"""GET /logs/analytics for DuckDB: totals, percentiles, tokens, cost, breakdowns and a time series.

One statement per part (measured faster than a single GROUPING SETS statement: each part is a
parallel scan that DuckDB prunes by the timestamp zone maps). Percentiles are nearest-rank
(``quantile_disc``): always a latency that was observed. A row is an error when its
``status_code >= 400`` or it has an ``error_type``. Blocking: call it in a thread.
"""

from __future__ import annotations

from typing import Any

import duckdb

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

from .queries import where_clause
from .schema import one_row

IS_ERROR = '("status_code" >= 400 OR "error_type" IS NOT NULL)'
# Counts and sums every part needs; percentiles are added per part, only where shown, because
# they cost most. quantile_disc (an observed value) measured about twice as fast as quantile_cont.
_SUMS = f"""
    count(*),
    count(*) FILTER (WHERE {IS_ERROR}),
    coalesce(sum("tokens_input"), 0),
    coalesce(sum("tokens_output"), 0),
    coalesce(sum("cache_read_tokens"), 0),
    coalesce(sum("cache_write_tokens"), 0),
    coalesce(sum("cost_usd"), 0),
    count(*) FILTER (WHERE NOT coalesce("priced", false))
"""
_DURATION_PERCENTILES = 'quantile_disc("duration_ms", [0.5, 0.95, 0.99])'


def analytics(cursor: duckdb.DuckDBPyConnection, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
    """Everything GET /logs/analytics shows but the window, for the rows matching ``filters``."""
    params: list[Any] = []
    where = where_clause(filters, params)
    sql = (
        f'SELECT {_SUMS}, avg("duration_ms"), {_DURATION_PERCENTILES}, quantile_disc("ttft_ms", [0.5, 0.95]) '
        f"FROM access_logs {where}"
    )
    row = one_row(cursor.execute(sql, params))
    total = Sums(row[:SUMS_WIDTH])
    average, durations, ttft = row[SUMS_WIDTH:]
    p50, p95, p99 = durations or (None, None, None)
    ttft_p50, ttft_p95 = ttft or (None, None)
    return {
        "totals": total.totals(),
        "duration_ms": {"avg": average, "p50": p50, "p95": p95, "p99": p99},
        "ttft_ms": {"p50": ttft_p50, "p95": ttft_p95},
        "tokens": total.tokens(),
        "cost": total.cost(),
        "by_model": _top_models(cursor, where, params, tuple(row[:SUMS_WIDTH])),
        "by_service_type": _breakdown(cursor, "service_type", where, params),
        "timeseries": {"bucket": bucket, "points": _timeseries(cursor, filters, bucket, where, params)},
        "recent_errors": _recent_errors(cursor, where, params),
    }


def _breakdown(cursor: duckdb.DuckDBPyConnection, column: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
    sql = (
        f'SELECT "{column}", {_SUMS}, quantile_disc("duration_ms", 0.95) FROM access_logs {where} '
        f'GROUP BY "{column}" ORDER BY 2 DESC, 1'
    )
    return [
        Sums(tuple(values[:SUMS_WIDTH])).breakdown_row(column, key, values[SUMS_WIDTH])
        for key, *values in cursor.execute(sql, params).fetchall()
    ]


def _top_models(
    cursor: duckdb.DuckDBPyConnection, where: str, params: list[Any], whole: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """``by_model``: the :data:`TOP_GROUPS` models with most requests, then one row summing the rest (the window's
    sums ``whole`` less theirs). Clients name the model, so there may be as many as were ever sent: read out
    whole, with a percentile each, 100,000 names took a read 2 s. Only the rows shown are read out, and have one.
    """
    sql = (
        f'SELECT "model", {_SUMS} FROM access_logs {where} GROUP BY "model" '
        f"ORDER BY 2 DESC, 1 NULLS LAST LIMIT {TOP_GROUPS + 1}"
    )
    rows = cursor.execute(sql, params).fetchall()
    p95 = _p95_of_models(cursor, [model for model, *_ in rows[:TOP_GROUPS]], where, params)
    return busiest_models(rows, whole, p95)


def _p95_of_models(
    cursor: duckdb.DuckDBPyConnection, models: list[str | None], where: str, params: list[Any]
) -> dict[str | None, float]:
    if not models:
        return {}
    named = [model for model in models if model is not None]
    chosen = '(list_contains(?, "model") OR ("model" IS NULL AND ?))'
    condition = f"{where} AND {chosen}" if where else f"WHERE {chosen}"
    sql = f'SELECT "model", quantile_disc("duration_ms", 0.95) FROM access_logs {condition} GROUP BY "model"'
    return dict(cursor.execute(sql, [*params, named, None in models]).fetchall())


def _timeseries(
    cursor: duckdb.DuckDBPyConnection, filters: LogFilters, bucket: Bucket, where: str, params: list[Any]
) -> list[dict[str, Any]]:
    width = BUCKET_MICROS[bucket]
    sql = (
        f'SELECT epoch_us("timestamp") // {width} AS slot, {_SUMS}, {_DURATION_PERCENTILES} '
        f"FROM access_logs {where} GROUP BY slot"
    )
    by_slot = {
        slot: series_point(slot * width, Sums(tuple(values[:SUMS_WIDTH])), values[SUMS_WIDTH])
        for slot, *values in cursor.execute(sql, params).fetchall()
    }
    return filled_series(by_slot, filters.start_time, filters.end_time, width)


def recent_errors_after(cursor: duckdb.DuckDBPyConnection, filters: LogFilters, since: Any) -> list[dict[str, Any]]:
    """The newest errors matching ``filters`` at or after ``since`` (the rollups know enough are there)."""
    params: list[Any] = []
    where = where_clause(filters, params)
    where = f'{where} AND "timestamp" >= ?' if where else 'WHERE "timestamp" >= ?'
    return _recent_errors(cursor, where, [*params, since])


def _recent_errors(cursor: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[dict[str, Any]]:
    condition = f"{where} AND {IS_ERROR}" if where else f"WHERE {IS_ERROR}"
    columns = ", ".join('epoch_us("timestamp")' if c == "timestamp" else f'"{c}"' for c in RECENT_ERROR_COLUMNS)
    sql = (
        f"SELECT {columns} FROM access_logs {condition} "
        f'ORDER BY "timestamp" DESC, request_id DESC LIMIT {RECENT_ERRORS}'
    )
    return recent_error_rows(cursor.execute(sql, params).fetchall())
