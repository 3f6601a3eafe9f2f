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

from ccproxy_core.plugin_host.log_store import Bucket, LogFilters

from .filters import Params, where_clause
from .rows import datetime_to_micros, jsonable, micros_to_datetime
from .schema import TABLE, quote

BUCKET_MICROS: dict[str, int] = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}
RECENT_ERRORS = 20
IS_ERROR = "(status_code >= 400 OR error_type IS NOT NULL)"
_SUMS = (
    f"count(), countIf({IS_ERROR}), sum(tokens_input), sum(tokens_output), sum(cache_read_tokens), "
    "sum(cache_write_tokens), sum(cost_usd), countIf(priced = 0)"
)
_SUMS_WIDTH = 8
_DURATION_PERCENTILES = "quantilesExact(0.5, 0.95, 0.99)(duration_ms)"
_RECENT_ERROR_COLUMNS = (
    "request_id",
    "timestamp",
    "model",
    "service_type",
    "status_code",
    "error_type",
    "error_message",
    "endpoint",
)


class _Sums:
    """The :data:`_SUMS` values of one group, read into the response's parts."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        (self.requests, self.errors, *tokens, cost, self.unpriced) = values
        self.tokens_input, self.tokens_output, self.cache_read, self.cache_write = (int(t or 0) for t in tokens)
        self.cost_usd = jsonable(cost) if cost is not None else 0.0

    def totals(self) -> dict[str, Any]:
        rate = self.errors / self.requests if self.requests else 0.0
        return {
            "requests": self.requests,
            "successes": self.requests - self.errors,
            "errors": self.errors,
            "error_rate": rate,
        }

    def tokens(self) -> dict[str, int]:
        parts = {
            "input": self.tokens_input,
            "output": self.tokens_output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }
        return {**parts, "total": sum(parts.values())}

    def cost(self) -> dict[str, Any]:
        per_request = self.cost_usd / self.requests if self.requests else 0.0
        return {"total_usd": self.cost_usd, "per_request_usd": per_request, "unpriced_requests": self.unpriced}


def analytics(client: Client, database: str, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
    """Everything GET /logs/analytics shows but the window, for the rows matching ``filters``."""
    params = Params()
    where = where_clause(filters, params)
    sql = (
        f"SELECT {_SUMS}, avg(duration_ms), {_DURATION_PERCENTILES}, count(ttft_ms), "
        f"quantilesExact(0.5, 0.95)(ttft_ms) FROM {database}.{TABLE} {where}"
    )
    (row,) = client.execute(sql, params.values)
    total = _Sums(row[:_SUMS_WIDTH])
    average, durations, ttft_count, ttft = row[_SUMS_WIDTH:]
    p50, p95, p99 = durations if total.requests else (None, None, None)
    ttft_p50, ttft_p95 = ttft if ttft_count else (None, None)
    table = f"{database}.{TABLE}"
    return {
        "totals": total.totals(),
        "duration_ms": {"avg": average if total.requests else None, "p50": p50, "p95": p95, "p99": p99},
        "ttft_ms": {"p50": ttft_p50, "p95": ttft_p95},
        "tokens": total.tokens(),
        "cost": total.cost(),
        "by_model": _breakdown(client, table, "model", where, params),
        "by_service_type": _breakdown(client, table, "service_type", where, params),
        "timeseries": {"bucket": bucket, "points": _timeseries(client, table, filters, bucket, where, params)},
        "recent_errors": _recent_errors(client, table, where, params),
    }


def _breakdown(client: Client, table: str, column: str, where: str, params: Params) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {quote(column)}, {_SUMS}, quantileExact(0.95)(duration_ms) FROM {table} {where} "
        f"GROUP BY {quote(column)} ORDER BY count() DESC, {quote(column)}"
    )
    result = []
    for key, *values in client.execute(sql, params.values):
        part = _Sums(tuple(values[:_SUMS_WIDTH]))
        tokens = part.tokens()
        result.append(
            {
                column: key,
                "requests": part.requests,
                "errors": part.errors,
                "tokens_total": tokens["total"],
                "tokens": tokens,
                "cost_usd": part.cost_usd,
                "unpriced_requests": part.unpriced,
                "p95_ms": values[_SUMS_WIDTH],
            }
        )
    return result


def _timeseries(
    client: Client, table: str, filters: LogFilters, bucket: Bucket, where: str, params: Params
) -> list[dict[str, Any]]:
    width = BUCKET_MICROS[bucket]
    sql = (
        f"SELECT intDiv(timestamp_us, {width}) AS slot, {_SUMS}, {_DURATION_PERCENTILES} "
        f"FROM {table} {where} GROUP BY slot"
    )
    by_slot = {
        slot: _point(slot * width, _Sums(tuple(values[:_SUMS_WIDTH])), values[_SUMS_WIDTH])
        for slot, *values in client.execute(sql, params.values)
    }
    if filters.start_time is None or filters.end_time is None:
        return [by_slot[slot] for slot in sorted(by_slot)]
    first = datetime_to_micros(filters.start_time) // width
    last = (datetime_to_micros(filters.end_time) - 1) // width
    return [by_slot.get(slot) or _point(slot * width, None, None) for slot in range(first, last + 1)]


def _point(start_micros: int, sums: _Sums | None, durations: list[float] | None) -> dict[str, Any]:
    tokens = sums.tokens() if sums else {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
    p50, p95, p99 = durations or (None, None, None)
    return {
        "t": micros_to_datetime(start_micros).isoformat(),
        "requests": sums.requests if sums else 0,
        "errors": sums.errors if sums else 0,
        "tokens_input": tokens["input"],
        "tokens_output": tokens["output"],
        "cache_read_tokens": tokens["cache_read"],
        "cache_write_tokens": tokens["cache_write"],
        "cost_usd": sums.cost_usd if sums else 0.0,
        "unpriced_requests": int(sums.unpriced) if sums else 0,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def _recent_errors(client: Client, table: str, where: str, params: Params) -> list[dict[str, Any]]:
    condition = f"{where} AND {IS_ERROR}" if where else f"WHERE {IS_ERROR}"
    columns = ", ".join("timestamp_us" if c == "timestamp" else quote(c) for c in _RECENT_ERROR_COLUMNS)
    sql = f"SELECT {columns} FROM {table} {condition} ORDER BY timestamp_us DESC, request_id DESC LIMIT {RECENT_ERRORS}"
    rows = []
    for raw in client.execute(sql, params.values):
        row = dict(zip(_RECENT_ERROR_COLUMNS, raw, strict=True))
        row["timestamp"] = micros_to_datetime(row["timestamp"]).isoformat()
        rows.append(row)
    return rows
