"""Reads of ``access_logs``: filtered pages, ordered entries, counts and reset.

Every value is a bound parameter; column names come only from :data:`schema.COLUMNS`.
Each function takes a cursor of its own (see :mod:`.database`) and blocks: call it in a thread.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from ccproxy_core.plugin_host.log_store import (
    SORTABLE_COLUMNS,
    EncodedRows,
    LogFilters,
    NameFilter,
    PagePosition,
    QueryPage,
)
from ccproxy_core.plugin_host.store_answers import micros_to_datetime

from .attribution_filters import attribution_clauses
from .json_rows import PAGE_BYTES, encoded_page
from .rollup_keeper import delete_everything, delete_rows_before, in_transaction
from .rows import SELECT_LIST, row_to_dict
from .schema import one_row

Cursor = duckdb.DuckDBPyConnection


def _placeholders(values: tuple[Any, ...]) -> str:
    return ", ".join("?" for _ in values)


def _name_clauses(column: str, name_filter: NameFilter, params: list[Any]) -> list[str]:
    clauses = []
    if name_filter.include:
        clauses.append(f'"{column}" IN ({_placeholders(name_filter.include)})')
        params.extend(name_filter.include)
    if name_filter.exclude:
        # A row without a value (no model, say) is not one of the excluded names: keep it.
        clauses.append(f'("{column}" IS NULL OR "{column}" NOT IN ({_placeholders(name_filter.exclude)}))')
        params.extend(name_filter.exclude)
    return clauses


def _status_clause(filters: LogFilters, params: list[Any]) -> list[str]:
    alternatives = []
    if filters.status_codes:
        alternatives.append(f'"status_code" IN ({_placeholders(filters.status_codes)})')
        params.extend(filters.status_codes)
    for hundreds in filters.status_classes:
        # A range, not status_code // 100: measured 8x faster (DuckDB pushes ranges into the scan).
        alternatives.append('("status_code" >= ? AND "status_code" < ?)')
        params.extend((hundreds * 100, hundreds * 100 + 100))
    return [f"({' OR '.join(alternatives)})"] if alternatives else []


def where_clause(filters: LogFilters | None, params: list[Any]) -> str:
    """``WHERE ...`` (or ``""``) for ``filters``; appends the bound values to ``params``."""
    if filters is None:
        return ""
    clauses: list[str] = []
    if filters.start_time is not None:
        clauses.append('"timestamp" >= ?')
        params.append(filters.start_time)
    if filters.end_time is not None:
        clauses.append('"timestamp" < ?')
        params.append(filters.end_time)
    clauses += _name_clauses("model", filters.model, params)
    clauses += _name_clauses("service_type", filters.service_type, params)
    clauses += _name_clauses("endpoint", filters.endpoint, params)
    clauses += _status_clause(filters, params)
    if filters.streaming is not None:
        clauses.append('"streaming" = ?')
        params.append(filters.streaming)
    clauses += attribution_clauses(filters, params)
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


NEWEST_FIRST = '"timestamp" DESC, request_id DESC'


def _query_where(filters: LogFilters, after: PagePosition | None, params: list[Any]) -> str:
    where = where_clause(filters, params)
    if after is None:
        return where
    keyset = '("timestamp" < ? OR ("timestamp" = ? AND request_id < ?))'
    params += [after.timestamp, after.timestamp, after.request_id]
    return f"{where} AND {keyset}" if where else f"WHERE {keyset}"


def _entries_order(order_by: str, order_desc: bool) -> str:
    if order_by not in SORTABLE_COLUMNS:
        raise ValueError(f"order_by must be one of {', '.join(SORTABLE_COLUMNS)}")
    direction = "DESC" if order_desc else "ASC"
    return f'"{order_by}" {direction} NULLS LAST, request_id {direction}'


def query_page(cursor: Cursor, filters: LogFilters, limit: int, after: PagePosition | None) -> QueryPage:
    """Up to ``limit`` rows newest first, strictly after ``after``; keyset pagination on (timestamp, request_id)."""
    params: list[Any] = []
    where = _query_where(filters, after, params)
    sql = f"SELECT {SELECT_LIST} FROM access_logs {where} ORDER BY {NEWEST_FIRST} LIMIT ?"
    raw = fetch_in_batches(cursor.execute(sql, [*params, limit + 1]))
    next_position = None
    if len(raw) > limit:
        raw = raw[:limit]
        last = raw[-1]
        next_position = PagePosition(micros_to_datetime(last[1]), last[0])
    return QueryPage(rows_to_dicts(raw), next_position)


def query_page_encoded(
    cursor: Cursor, filters: LogFilters, limit: int, after: PagePosition | None
) -> tuple[EncodedRows, PagePosition | None]:
    """:func:`query_page` with the rows encoded by DuckDB (see :mod:`.json_rows`).

    A page stops at :data:`~.json_rows.PAGE_BYTES` of rows, before ``limit`` when rows are large;
    its cursor then leads to the rest.
    """
    params: list[Any] = []
    where = _query_where(filters, after, params)
    rows, last, more = encoded_page(cursor, where, params, NEWEST_FIRST, limit, max_bytes=PAGE_BYTES)
    next_position = PagePosition(micros_to_datetime(last[0]), last[1]) if more and last else None
    return rows, next_position


def entries_page(
    cursor: Cursor, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None
) -> tuple[list[dict[str, Any]], int]:
    """Rows of page ``page`` (from 1) ordered by ``order_by``, and how many rows match in all."""
    order = _entries_order(order_by, order_desc)
    params: list[Any] = []
    where = where_clause(filters, params)
    sql = f"SELECT {SELECT_LIST} FROM access_logs {where} ORDER BY {order} LIMIT ? OFFSET ?"
    raw = fetch_in_batches(cursor.execute(sql, [*params, page_size, (page - 1) * page_size]))
    return rows_to_dicts(raw), _count(cursor, where, params)


def entries_page_encoded(
    cursor: Cursor, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None
) -> tuple[EncodedRows, int]:
    """:func:`entries_page` with the rows encoded by DuckDB (see :mod:`.json_rows`)."""
    order = _entries_order(order_by, order_desc)
    params: list[Any] = []
    where = where_clause(filters, params)
    rows, _, _ = encoded_page(cursor, where, params, order, page_size, (page - 1) * page_size)
    return rows, _count(cursor, where, params)


def _count(cursor: Cursor, where: str, params: list[Any]) -> int:
    (total,) = one_row(cursor.execute(f"SELECT count(*) FROM access_logs {where}", params))
    return int(total)


def fetch_in_batches(result: Cursor, batch: int = 256) -> list[tuple[Any, ...]]:
    """All rows of ``result``, a batch at a time, handing the GIL over after each.

    Reads run in a worker thread, but converting rows to Python holds the GIL: one ``fetchall``
    of thousands of rows would hold it from start to end, and the event loop serving proxied
    requests would wait. ``time.sleep(0)`` releases the GIL, so a waiting loop runs at once.
    """
    rows: list[tuple[Any, ...]] = []
    while chunk := result.fetchmany(batch):
        rows += chunk
        time.sleep(0)
    return rows


def rows_to_dicts(raw: list[tuple[Any, ...]], batch: int = 256) -> list[dict[str, Any]]:
    """:func:`row_to_dict` of every row, handing the GIL over between batches (see :func:`fetch_in_batches`)."""
    converted: list[dict[str, Any]] = []
    for start in range(0, len(raw), batch):
        converted += [row_to_dict(row) for row in raw[start : start + batch]]
        time.sleep(0)
    return converted


def row_count(cursor: Cursor) -> int:
    """Rows stored."""
    (count,) = one_row(cursor.execute("SELECT count(*) FROM access_logs"))
    return int(count)


def delete_all(cursor: Cursor, lock: Any) -> int:
    """Delete every row and every rollup; return how many rows."""
    with lock:
        return in_transaction(cursor, delete_everything)


def delete_older_than(cursor: Cursor, cutoff: Any, lock: Any) -> int:
    """Delete rows before ``cutoff`` (rounded down to the hour, see :func:`delete_rows_before`); return how many."""
    with lock:
        return in_transaction(cursor, delete_rows_before, cutoff)
