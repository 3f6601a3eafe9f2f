"""LogFilters as a ClickHouse WHERE clause: one small function per kind of filter.

Every value is a named parameter (``%(p0)s``) that clickhouse-driver escapes; column names come
only from the code. A new filter of the log-store contract is one more function here, called
from :func:`where_clause`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter
from ccproxy_core.plugin_host.store_answers import datetime_to_micros, micros_to_datetime

from .schema import quote

# The range of ClickHouse's Date type (days since 1970 as UInt16; 18.16 reads dates up to 2105).
FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(2105, 12, 31)


class Params:
    """Collects bound values and hands out their placeholders."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        """Bind ``value``; return its placeholder."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"

    def add_all(self, values: tuple[Any, ...]) -> str:
        """Bind each value; return the placeholders as a comma list."""
        return ", ".join(self.add(value) for value in values)


def _time_clauses(start: datetime | None, end: datetime | None, params: Params) -> list[str]:
    # The event_date conditions let ClickHouse skip whole day partitions; timestamp_us is exact.
    clauses = []
    if start is not None:
        micros = datetime_to_micros(start)
        clauses += _day_clause(">=", micros_to_datetime(micros).date(), params)
        clauses.append(f"timestamp_us >= {params.add(micros)}")
    if end is not None:
        micros = datetime_to_micros(end)
        clauses += _day_clause("<=", micros_to_datetime(micros).date(), params)
        clauses.append(f"timestamp_us < {params.add(micros)}")
    return clauses


def _day_clause(operator: str, day: date, params: Params) -> list[str]:
    """``event_date <operator> day``, or nothing when ``day`` is outside what a ClickHouse ``Date`` holds.

    Such a day would be misread (a date after 2105 wraps around) or refused (a year before 1000), and
    every stored row lies inside that range anyway: the exact ``timestamp_us`` condition decides alone.
    """
    if not FIRST_DATE <= day <= LAST_DATE:
        return []
    return [f"event_date {operator} {params.add(day)}"]


def _name_clauses(column: str, name_filter: NameFilter, params: Params) -> list[str]:
    clauses = []
    if name_filter.include:
        clauses.append(f"{quote(column)} IN ({params.add_all(name_filter.include)})")
    if name_filter.exclude:
        # A row without a value (no model, say) is not one of the excluded names: keep it.
        clauses.append(f"({quote(column)} IS NULL OR {quote(column)} NOT IN ({params.add_all(name_filter.exclude)}))")
    return clauses


def _status_clauses(filters: LogFilters, params: Params) -> list[str]:
    alternatives = []
    if filters.status_codes:
        alternatives.append(f"status_code IN ({params.add_all(filters.status_codes)})")
    for hundreds in filters.status_classes:
        alternatives.append(
            f"(status_code >= {params.add(hundreds * 100)} AND status_code < {params.add(hundreds * 100 + 100)})"
        )
    return [f"({' OR '.join(alternatives)})"] if alternatives else []


def _streaming_clauses(filters: LogFilters, params: Params) -> list[str]:
    if filters.streaming is None:
        return []
    return [f"streaming = {params.add(1 if filters.streaming else 0)}"]


def _attribution_clauses(filters: LogFilters, params: Params) -> list[str]:
    clauses = []
    # api_key_id takes fingerprints only: readers turn a key's name into its fingerprints.
    for column in ("session_id", "project", "end_user", "api_key_id", "client_name"):
        clauses += _name_clauses(column, getattr(filters, column), params)
    for name, value in filters.tags:
        # tags is compact JSON of string values; visitParamExtractString reads one key (18.16 has it).
        clauses.append(f"visitParamExtractString(tags, {params.add(name)}) = {params.add(value)}")
    return clauses


def conditions(filters: LogFilters | None, params: Params) -> list[str]:
    """The conditions of ``filters``, to be joined with AND."""
    if filters is None:
        return []
    return [
        *_time_clauses(filters.start_time, filters.end_time, params),
        *_name_clauses("model", filters.model, params),
        *_name_clauses("service_type", filters.service_type, params),
        *_name_clauses("endpoint", filters.endpoint, params),
        *_status_clauses(filters, params),
        *_streaming_clauses(filters, params),
        *_attribution_clauses(filters, params),
    ]


def where_clause(filters: LogFilters | None, params: Params, *extra: str) -> str:
    """``WHERE ...`` (or ``""``) for ``filters`` and any ``extra`` conditions."""
    clauses = [*conditions(filters, params), *extra]
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""
