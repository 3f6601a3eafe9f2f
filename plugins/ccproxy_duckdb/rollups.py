"""GET /logs/analytics answered from the rollups, with raw rows only at the edges of the window.

:func:`answer_analytics` is the entry point: it answers from the rollups when the window is
longer than :data:`EXACT_SCAN_MAX_WINDOW` and has both ends, every filter set is a rollup
dimension, and at least one rollup bucket lies inside the window; by the exact scan of
:mod:`.analytics` otherwise. The window is cut into pieces: whole hours before the hour watermark come from the
hour rollups, whole minutes before the minute watermark from the minute rollups, and the rest
(the partial minutes at both ends, the last couple of minutes) from ``access_logs`` itself,
rolled up on the fly with the same SQL. Counts and sums are exact; percentiles come from the
latency bins (see :mod:`.rollup_sql`). All reads run in one transaction, so they see one state.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, ClassVar

import duckdb

from ccproxy_core.plugin_host.log_store import TOP_GROUPS, Bucket, Grouping, LogFilters
from ccproxy_core.plugin_host.store_answers import (
    BUCKET_MICROS,
    RECENT_ERRORS,
    datetime_to_micros,
    micros_to_datetime,
    sums_less,
)

from . import rollup_sql
from .analytics import analytics, recent_errors_after
from .groups import groups
from .queries import where_clause
from .rollup_keeper import read_watermarks
from .rollup_sql import LEVELS, MINUTE, Level
from .rollups_answer import Percentiles, answer_from_parts

EXACT_SCAN_MAX_WINDOW = timedelta(hours=2)
"""Longer windows are answered from the rollups (at 10M rows a day, 2 h is about 830,000 rows)."""
_ROLLUP_FILTERS = frozenset(
    {"start_time", "end_time", "model", "service_type", "endpoint", "status_codes", "status_classes", "streaming"}
)
"""LogFilters fields a rollup can apply; any other field set sends the query to the exact scan."""


def answer_analytics(cursor: duckdb.DuckDBPyConnection, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
    """GET /logs/analytics: from the rollups when they can answer, else by the exact scan."""
    return analytics_and_groups(cursor, filters, bucket, None)[0]


def analytics_and_groups(
    cursor: duckdb.DuckDBPyConnection, filters: LogFilters, bucket: Bucket, grouping: Grouping | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """:func:`answer_analytics` and the groups of ``grouping``, every statement read in one transaction:
    the parts of one answer add up to its totals while the writer adds rows (in autocommit, each
    statement saw the rows written by its own start)."""
    cursor.execute("BEGIN TRANSACTION")
    try:
        pieces = (
            plan(filters, bucket, read_watermarks(cursor))
            if _worth_rollups(filters) and rollups_can_filter(filters)
            else []
        )
        if any(level is not None for level, _, _ in pieces):
            result = rollup_analytics(cursor, filters, bucket, pieces)
        else:
            result = analytics(cursor, filters, bucket)
        return result, None if grouping is None else groups(cursor, filters, grouping)
    finally:
        cursor.execute("ROLLBACK")  # it only read


def _worth_rollups(filters: LogFilters) -> bool:
    """Windows up to :data:`EXACT_SCAN_MAX_WINDOW` are scanned exactly: quick enough, and exact percentiles."""
    if filters.start_time is None or filters.end_time is None:
        return False
    return filters.end_time - filters.start_time > EXACT_SCAN_MAX_WINDOW


def rollups_can_filter(filters: LogFilters) -> bool:
    """True when every filter set is one the rollups keep (new filter kinds need the exact scan)."""
    for field in dataclasses.fields(filters):
        if field.name in _ROLLUP_FILTERS:
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if getattr(filters, field.name) != default:
            return False
    return True


Piece = tuple[Level | None, int, int]
"""(level, start, end) in epoch microseconds; level ``None`` means raw rows."""


def plan(filters: LogFilters, bucket: Bucket, watermarks: dict[str, int]) -> list[Piece]:
    """Cut [start, end) into pieces: the coarsest whole buckets each level has rolled up, raw rows for the rest."""
    assert filters.start_time is not None and filters.end_time is not None
    raw = [(datetime_to_micros(filters.start_time), datetime_to_micros(filters.end_time))]
    taken: list[Piece] = []
    for level in LEVELS:
        if BUCKET_MICROS[bucket] % level.width_micros or level.name not in watermarks:
            continue
        remaining = []
        for start, end in raw:
            first, last = level.ceil(start), min(level.floor(end), watermarks[level.name])
            if first >= last:
                remaining.append((start, end))
                continue
            taken.append((level, first, last))
            remaining += [(a, b) for a, b in ((start, first), (last, end)) if a < b]
        raw = remaining
    return taken + [(None, start, end) for start, end in raw]


def rollup_analytics(
    cursor: duckdb.DuckDBPyConnection, filters: LogFilters, bucket: Bucket, pieces: list[Piece]
) -> dict[str, Any]:
    """The analytics answer assembled from the rollup and raw ``pieces`` of the window."""
    sums_params: list[Any] = []
    latency_params: list[Any] = []
    sums = _parts_sql(filters, pieces, sums_params, latency=False)
    latency = _parts_sql(filters, pieces, latency_params, latency=True)
    width = BUCKET_MICROS[bucket]
    fetch = _Fetcher(cursor, (sums, sums_params), (latency, latency_params), width)
    grouped_sums = fetch.sums()
    rest = rest_of_models(grouped_sums)
    bins = fetch.percentiles(list(grouped_sums["model"]))
    answer = answer_from_parts(grouped_sums, bins, filters, bucket, width, rest)
    answer["recent_errors"] = _recent_errors(cursor, grouped_sums["t_us"], filters)
    return answer


def _parts_sql(filters: LogFilters, pieces: list[Piece], params: list[Any], latency: bool) -> str:
    """A UNION ALL subquery over every piece (sums rows, or latency rows), the filters applied."""
    dimension_filters = dataclasses.replace(filters, start_time=None, end_time=None)
    select_raw = rollup_sql.latency_select if latency else rollup_sql.sums_select
    parts = []
    for level, start, end in pieces:
        if level is None:
            piece_filters = dataclasses.replace(
                filters, start_time=micros_to_datetime(start), end_time=micros_to_datetime(end)
            )
            parts.append(select_raw(MINUTE.width_micros, "access_logs", where_clause(piece_filters, params)))
            continue
        where = where_clause(dimension_filters, params)
        time_range = f"t_us >= {start} AND t_us < {end}"
        where = f"{where} AND {time_range}" if where else f"WHERE {time_range}"
        parts.append(f"SELECT * FROM {level.latency_table if latency else level.sums_table} {where}")
    return _union(parts)


def _union(parts: list[str]) -> str:
    return "(" + " UNION ALL BY NAME ".join(f"({part})" for part in parts) + ")"


class _Fetcher:
    """Reads the merged pieces in two statements (one for sums, one for latency bins), grouped every way shown."""

    # GROUPING() bit masks: a set bit means the column is not part of that grouping.
    _SUM_SETS: ClassVar[dict[int, str]] = {15: "all", 7: "model", 11: "service_type", 13: "slot", 14: "t_us"}
    _LATENCY_SETS: ClassVar[dict[int, str]] = {7: "all", 3: "model", 5: "service_type", 6: "slot"}
    _BY_MODEL = 7
    _MODEL_BINS = 3

    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, sums: tuple[str, list[Any]], latency: tuple[str, list[Any]], width: int
    ) -> None:
        self._cursor, self._width = cursor, width
        self._sums, self._sums_params = sums
        self._latency, self._latency_params = latency

    def sums(self) -> dict[str, dict[Any, tuple[Any, ...]]]:
        """Per grouping (all, model, service_type, slot, t_us): key -> (requests, errors, duration_count, ...).

        Clients name the model, so there may be as many as were ever sent: only the :data:`TOP_GROUPS` with
        most requests are read out, and an 11th when there are more (:func:`rest_of_models` sums the rest).
        """
        columns = ", ".join(f"coalesce(sum({name}), 0)" for name in rollup_sql.SUM_NAMES[1:])
        mask = "grouping(model, service_type, slot, t_us)"
        sql = (
            f"SELECT * FROM (SELECT {mask} AS mask, model, service_type, slot, t_us, "
            f"coalesce(sum(requests), 0), coalesce(sum(requests) FILTER (WHERE is_error), 0), {columns}, "
            f"row_number() OVER (PARTITION BY {mask} ORDER BY sum(requests) DESC, model NULLS LAST) AS place "
            f"FROM (SELECT *, t_us // {self._width} AS slot FROM {self._sums}) "
            "GROUP BY GROUPING SETS ((), (model), (service_type), (slot), (t_us))) "
            f"WHERE mask <> {self._BY_MODEL} OR place <= {TOP_GROUPS + 1} ORDER BY place"
        )
        grouped: dict[str, dict[Any, tuple[Any, ...]]] = {name: {} for name in self._SUM_SETS.values()}
        for mask, model, service_type, slot, t_us, *values, _ in self._cursor.execute(
            sql, self._sums_params
        ).fetchall():
            kind = self._SUM_SETS[mask]
            key = {"all": None, "model": model, "service_type": service_type, "slot": slot, "t_us": t_us}[kind]
            grouped[kind][key] = tuple(values)
        return grouped

    def percentiles(self, models: list[Any]) -> dict[tuple[str, Any, int], Percentiles]:
        """Per (grouping, key, metric): the merged latency bins (of ``models`` alone among the models)."""
        sql = (
            "SELECT * FROM (SELECT grouping(model, service_type, slot) AS mask, model, service_type, slot, metric, "
            f"bin, sum(n) FROM (SELECT *, t_us // {self._width} AS slot FROM {self._latency}) "
            "GROUP BY GROUPING SETS ((metric, bin), (model, metric, bin), (service_type, metric, bin), "
            f"(slot, metric, bin))) WHERE mask <> {self._MODEL_BINS} OR list_contains(?, model) "
            "OR (model IS NULL AND ?) ORDER BY bin"
        )
        named = [model for model in models if model is not None]
        merged: dict[tuple[str, Any, int], Percentiles] = {}
        for mask, model, service_type, slot, metric, bin_number, count in self._cursor.execute(
            sql, [*self._latency_params, named, None in models]
        ).fetchall():
            kind = self._LATENCY_SETS[mask]
            key = {"all": None, "model": model, "service_type": service_type, "slot": slot}[kind]
            merged.setdefault((kind, key, metric), Percentiles()).add(bin_number, int(count))
        return merged


def rest_of_models(grouped: dict[str, dict[Any, tuple[Any, ...]]]) -> tuple[Any, ...] | None:
    """Keeps the first :data:`TOP_GROUPS` of ``grouped["model"]`` and returns the sums of all other models
    (the window's sums less theirs; ``None`` when there are no others)."""
    models = grouped["model"]
    if len(models) <= TOP_GROUPS:
        return None
    grouped["model"] = dict(list(models.items())[:TOP_GROUPS])
    return sums_less(grouped["all"][None], list(grouped["model"].values()))


def _recent_errors(
    cursor: duckdb.DuckDBPyConnection, by_bucket: dict[Any, tuple[Any, ...]], filters: LogFilters
) -> list[dict[str, Any]]:
    """The newest errors, read from ``access_logs`` only as far back as the rollups say holds enough of them."""
    newest_first = sorted(((key, row[1]) for key, row in by_bucket.items() if row[1]), reverse=True)
    if not newest_first:
        return []
    seen, since = 0, newest_first[-1][0]
    for bucket_start, errors in newest_first:
        seen += errors
        if seen >= RECENT_ERRORS:
            since = bucket_start
            break
    return recent_errors_after(cursor, filters, micros_to_datetime(since))
