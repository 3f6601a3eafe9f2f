"""Shaping merged rollup rows into the GET /logs/analytics answer, the same shape the exact scan gives."""

from __future__ import annotations

import math
from typing import Any

from ccproxy_core.plugin_host.log_store import Bucket, LogFilters
from ccproxy_core.plugin_host.store_answers import Sums, filled_series, rest_of_models_row, series_point

from .rollup_sql import DURATION, TTFT, bin_value

SERIES_QUANTILES = (0.5, 0.95, 0.99)


class Percentiles:
    """Merged counts per latency bin; a nearest-rank percentile reads the bin holding that rank."""

    def __init__(self) -> None:
        self.bins: list[tuple[int, int]] = []

    def add(self, bin_number: int, count: int) -> None:
        """Add the count of one bin (bins must come in ascending order)."""
        self.bins.append((bin_number, count))

    def values(self, quantiles: tuple[float, ...]) -> list[float]:
        """The bin value at each quantile's rank, ``ceil(q * n)`` as DuckDB's ``quantile_disc`` takes it."""
        total = sum(count for _, count in self.bins)
        ranks = [max(1, math.ceil(q * total)) for q in quantiles]
        found: list[float] = []
        seen = 0
        position = 0
        for bin_number, count in self.bins:
            seen += count
            while position < len(ranks) and ranks[position] <= seen:
                found.append(bin_value(bin_number))
                position += 1
        return found


Grouped = dict[str, dict[Any, tuple[Any, ...]]]
"""Sums per grouping ("all", "model", "service_type", "slot") and key: (requests, errors, duration_count, ...)."""
Latency = dict[tuple[str, Any, int], Percentiles]
"""Merged bins per (grouping, key, metric)."""


def _sums_of(row: tuple[Any, ...]) -> tuple[Sums, float | None]:
    """The exact scan's Sums, and the average duration, from one row of ``PartsReader.sums``."""
    requests, errors, duration_count, duration_sum, *tokens_cost_unpriced = row
    average = duration_sum / duration_count if duration_count else None
    return Sums((requests, errors, *tokens_cost_unpriced)), average


def _quantiles(merged: Latency, key: tuple[str, Any, int], quantiles: tuple[float, ...]) -> list[float] | None:
    bins = merged.get(key)
    return bins.values(quantiles) if bins is not None else None


def _or_nones(values: list[float] | None, count: int) -> list[float | None]:
    return list(values) if values else [None] * count


def answer_from_parts(
    sums: Grouped,
    latency: Latency,
    filters: LogFilters,
    bucket: Bucket,
    width: int,
    rest_of_models: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    """Every part of the analytics answer but ``recent_errors``; ``rest_of_models`` sums the models not in
    ``sums["model"]``, shown as one row after them."""
    empty = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    total, average = _sums_of(sums["all"].get(None, empty))
    durations = _or_nones(_quantiles(latency, ("all", None, DURATION), SERIES_QUANTILES), len(SERIES_QUANTILES))
    ttft = _or_nones(_quantiles(latency, ("all", None, TTFT), (0.5, 0.95)), 2)
    return {
        "totals": total.totals(),
        "duration_ms": {"avg": average, "p50": durations[0], "p95": durations[1], "p99": durations[2]},
        "ttft_ms": {"p50": ttft[0], "p95": ttft[1]},
        "tokens": total.tokens(),
        "cost": total.cost(),
        "by_model": _breakdown(sums, latency, "model") + _rest_row(rest_of_models),
        "by_service_type": _breakdown(sums, latency, "service_type"),
        "timeseries": {"bucket": bucket, "points": _timeseries(sums, latency, filters, width)},
    }


def _breakdown(sums: Grouped, latency: Latency, column: str) -> list[dict[str, Any]]:
    # The exact scan's order: most requests first, then by name, no name last.
    ordered = sorted(sums[column].items(), key=lambda item: (-item[1][0], item[0] is None, item[0] or ""))
    result = []
    for key, values in ordered:
        part, _ = _sums_of(values)
        found = _quantiles(latency, (column, key, DURATION), (0.95,))
        result.append(part.breakdown_row(column, key, found[0] if found else None))
    return result


def _rest_row(rest: tuple[Any, ...] | None) -> list[dict[str, Any]]:
    return [] if rest is None else [rest_of_models_row(_sums_of(rest)[0])]


def _timeseries(sums: Grouped, latency: Latency, filters: LogFilters, width: int) -> list[dict[str, Any]]:
    by_slot = {}
    for key, values in sums["slot"].items():
        part, _ = _sums_of(values)
        by_slot[key] = series_point(key * width, part, _quantiles(latency, ("slot", key, DURATION), SERIES_QUANTILES))
    assert filters.start_time is not None and filters.end_time is not None, "rollups answer whole windows only"
    return filled_series(by_slot, filters.start_time, filters.end_time, width)
