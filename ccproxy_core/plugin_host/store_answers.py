"""What every log store answers alike: times as exact microseconds, and the parts of ``GET /logs/analytics``.

A store runs its own SQL (or reads its rollups) and hands each group's sums here as
:data:`SUMS_WIDTH` values in this order: requests, errors, input, output, cache read and cache
write tokens, cost, unpriced requests. The answer's shape is the query API's contract, so it
is built in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ccproxy_core.plugin_host.log_store import OTHER_GROUP, TOP_GROUPS

BUCKET_MICROS: dict[str, int] = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}
RECENT_ERRORS = 20
RECENT_ERROR_COLUMNS = (
    "request_id",
    "timestamp",
    "model",
    "service_type",
    "status_code",
    "error_type",
    "error_message",
    "endpoint",
)
SUMS_WIDTH = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def micros_to_datetime(micros: int) -> datetime:
    """Exact conversion of stored microseconds since the epoch back to an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def jsonable(value: Any) -> Any:
    """One aggregate value as JSON: Decimal as float, everything else unchanged."""
    return float(value) if isinstance(value, Decimal) else value


class Sums:
    """The sums of one group (all rows, a model, a time slot), read into the answer's parts.

    Sums over no rows may come as ``None`` (SQL's ``sum`` of nothing): they read as zero.
    """

    def __init__(self, values: tuple[Any, ...]) -> None:
        requests, errors, *tokens, cost, unpriced = values
        self.requests, self.errors, self.unpriced = int(requests), int(errors), int(unpriced or 0)
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
        """The total of the known costs; ``None`` when no request has one, not a 0 that would read as known."""
        if self.requests and self.unpriced >= self.requests:
            return {"total_usd": None, "per_request_usd": None, "unpriced_requests": self.unpriced}
        per_request = self.cost_usd / self.requests if self.requests else None  # of no request: no figure
        return {"total_usd": self.cost_usd, "per_request_usd": per_request, "unpriced_requests": self.unpriced}

    def breakdown_row(self, column: str, key: Any, p95_ms: float | None) -> dict[str, Any]:
        """This group as one row of ``by_model`` or ``by_service_type``."""
        tokens = self.tokens()
        return {
            column: key,
            "requests": self.requests,
            "errors": self.errors,
            "tokens_total": tokens["total"],
            "tokens": tokens,
            "cost_usd": self.cost_usd,
            "unpriced_requests": self.unpriced,
            "p95_ms": p95_ms,
        }


def sums_less(whole: tuple[Any, ...], parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The sums ``whole`` less those of ``parts``, value by value (``None`` read as zero): the sums of the rows
    the parts leave out, such as the models after the busiest, without reading each of those out."""
    return tuple((total or 0) - sum(part[index] or 0 for part in parts) for index, total in enumerate(whole))


def rest_of_models_row(sums: Sums) -> dict[str, Any]:
    """The ``by_model`` row that sums the models after the busiest ones."""
    return {"model": OTHER_GROUP, "rest": True, **sums.breakdown_row("model", OTHER_GROUP, None)}


def busiest_models(rows: list[tuple[Any, ...]], whole: tuple[Any, ...], p95: dict[Any, Any]) -> list[dict[str, Any]]:
    """``by_model`` from a store's rows ``(model, *sums)``, most requests first, of which only the first
    :data:`TOP_GROUPS` are shown: a row more stands for the rest, summed as the window's sums ``whole`` less
    those shown. ``p95`` holds the shown models' 95th percentiles."""
    shown = rows[:TOP_GROUPS]
    result = [Sums(tuple(values)).breakdown_row("model", key, p95.get(key)) for key, *values in shown]
    if len(rows) > TOP_GROUPS:
        result.append(rest_of_models_row(Sums(sums_less(whole, [tuple(values) for _, *values in shown]))))
    return result


def series_point(start_micros: int, sums: Sums | None, durations: list[Any] | None) -> dict[str, Any]:
    """One time slot of the series; ``None`` sums for a slot without rows."""
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
        "unpriced_requests": sums.unpriced if sums else 0,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def filled_series(
    by_slot: dict[int, dict[str, Any]], start: datetime | None, end: datetime | None, width: int
) -> list[dict[str, Any]]:
    """The points in time order; with both ends of the window known, every slot of it, empty ones too."""
    if start is None or end is None:
        return [by_slot[slot] for slot in sorted(by_slot)]
    first = datetime_to_micros(start) // width
    last = (datetime_to_micros(end) - 1) // width
    return [by_slot.get(slot) or series_point(slot * width, None, None) for slot in range(first, last + 1)]


def recent_error_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows selected as :data:`RECENT_ERROR_COLUMNS` (the timestamp as microseconds) as the answer's dicts."""
    found = []
    for values in rows:
        row = dict(zip(RECENT_ERROR_COLUMNS, values, strict=True))
        row["timestamp"] = micros_to_datetime(row["timestamp"]).isoformat()
        found.append(row)
    return found
