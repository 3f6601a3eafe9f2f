"""Reads of ``access_logs``: filtered pages, ordered entries, counts, and reset.

A page is read in two steps: first the keys (timestamp_us, request_id) of its rows, reading only
the key, filter and order columns; then the full rows of just those keys, which the primary key
finds in a few granules. ClickHouse before 19.14 cannot stop reading early for ORDER BY ... LIMIT,
so selecting every column at once would decompress every column of every matching row.
Each function takes a clickhouse-driver client of its own and blocks: call it in a thread.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from clickhouse_driver import Client

from ccproxy_core.plugin_host.log_store import SORTABLE_COLUMNS, LogFilters, PagePosition, QueryPage
from ccproxy_core.plugin_host.store_answers import datetime_to_micros, micros_to_datetime

from .filters import Params, where_clause
from .rows import SELECT_LIST, row_to_dict
from .schema import TABLE, quote


def _order_column(name: str) -> str:
    return "timestamp_us" if name == "timestamp" else quote(name)


PAGE_BYTES = 16 * 1024 * 1024
"""Most bytes of rows (as JSON) in one /logs/query page, as on DuckDB: 10,000 rows of ordinary size fit;
rows at their size caps end a page before its limit, and its cursor leads to the rest."""
ROWS_PER_READ = 500
"""Rows of a page read from ClickHouse at once."""


def query_page(client: Client, database: str, filters: LogFilters, limit: int, after: PagePosition | None) -> QueryPage:
    """Up to ``limit`` rows newest first, strictly after ``after``; keyset pagination on (timestamp, request_id).

    A page stops at :data:`PAGE_BYTES` of rows, before ``limit`` when rows are large.
    """
    params = Params()
    extra = []
    if after is not None:
        micros, request_id = params.add(datetime_to_micros(after.timestamp)), params.add(after.request_id)
        extra.append(f"(timestamp_us < {micros} OR (timestamp_us = {micros} AND request_id < {request_id}))")
    where = where_clause(filters, params, *extra)
    keys = client.execute(
        f"SELECT timestamp_us, request_id FROM {database}.{TABLE} {where} "
        f"ORDER BY timestamp_us DESC, request_id DESC LIMIT {int(limit) + 1}",
        params.values,
    )
    more = len(keys) > limit
    keys = keys[:limit]
    rows, covered = _rows_within(client, database, keys, PAGE_BYTES)
    next_position = None
    if (more or covered < len(keys)) and covered:
        next_position = PagePosition(micros_to_datetime(keys[covered - 1][0]), keys[covered - 1][1])
    return QueryPage(rows, next_position)


def _rows_within(
    client: Client, database: str, keys: list[tuple[int, str]], max_bytes: int
) -> tuple[list[dict[str, Any]], int]:
    """The rows of ``keys`` in order, read a slice at a time, up to the row that would take them past
    ``max_bytes`` of JSON (the first row always comes); and how many of ``keys`` they cover."""
    rows: list[dict[str, Any]] = []
    used = 0
    for start in range(0, len(keys), ROWS_PER_READ):
        batch = keys[start : start + ROWS_PER_READ]
        for index, row in enumerate(_rows_by_key(client, database, batch)):
            if row is None:  # deleted since its key was read
                continue
            size = len(orjson.dumps(row, default=str)) + 1
            if rows and used + size > max_bytes:
                return rows, start + index
            rows.append(row)
            used += size
    return rows, len(keys)


def rows_for_keys(client: Client, database: str, keys: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The full rows of ``keys`` (timestamp_us, request_id), in the order of ``keys``."""
    return [row for row in _rows_by_key(client, database, keys) if row is not None]


def _rows_by_key(client: Client, database: str, keys: list[tuple[int, str]]) -> list[dict[str, Any] | None]:
    """The full row of each of ``keys``, in their order; ``None`` for a key no longer stored."""
    if not keys:
        return []
    params = Params()
    micros = [key[0] for key in keys]
    sql = (
        f"SELECT {SELECT_LIST} FROM {database}.{TABLE} WHERE timestamp_us >= {params.add(min(micros))} "
        f"AND timestamp_us <= {params.add(max(micros))} AND request_id IN {params.add(tuple(k[1] for k in keys))}"
    )
    by_key = {(row[1], row[0]): row for row in client.execute(sql, params.values)}
    return [row_to_dict(by_key[key]) if key in by_key else None for key in keys]


def entries_page(
    client: Client,
    database: str,
    page: int,
    page_size: int,
    order_by: str,
    order_desc: bool,
    filters: LogFilters | None,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of page ``page`` (from 1) ordered by ``order_by``, and how many rows match in all."""
    if order_by not in SORTABLE_COLUMNS:
        raise ValueError(f"order_by must be one of {', '.join(SORTABLE_COLUMNS)}")
    params = Params()
    where = where_clause(filters, params)
    direction = "DESC" if order_desc else "ASC"
    offset, size = (int(page) - 1) * int(page_size), int(page_size)
    sql = (
        f"SELECT timestamp_us, request_id FROM {database}.{TABLE} {where} "
        f"ORDER BY {_order_column(order_by)} {direction} NULLS LAST, request_id {direction} LIMIT {offset}, {size}"
    )
    keys = client.execute(sql, params.values)
    ((total,),) = client.execute(f"SELECT count() FROM {database}.{TABLE} {where}", params.values)
    return rows_for_keys(client, database, keys), int(total)


def row_count(client: Client, database: str) -> int:
    """Rows stored (over the whole cluster when ``access_logs`` is Distributed)."""
    ((count,),) = client.execute(f"SELECT count() FROM {database}.{TABLE}")
    return int(count)


RESET_WAIT_SECONDS = 60.0
"""How long a reset waits for ClickHouse to finish deleting before it answers."""


def delete_all_rows(client: Client, database: str, table: str) -> int:
    """Empty one server's MergeTree table for good; return how many rows it had.

    ``TRUNCATE TABLE`` only marks the parts outdated, and a server that restarts before it has
    removed them (eight minutes by default) loads again those that merges had replaced: on
    ClickHouse 18, the deleted rows came back. A mutation that deletes every row leaves empty
    parts that cover them, and a restart keeps those.
    """
    ((count,),) = client.execute(f"SELECT count() FROM {database}.{table}")
    client.execute(f"ALTER TABLE {database}.{table} DELETE WHERE 1")
    deadline = time.monotonic() + RESET_WAIT_SECONDS
    while time.monotonic() < deadline and _mutations_running(client, database, table):
        time.sleep(0.1)
    return int(count)


def _mutations_running(client: Client, database: str, table: str) -> bool:
    sql = "SELECT count() FROM system.mutations WHERE database = %(d)s AND table = %(t)s AND NOT is_done"
    ((running,),) = client.execute(sql, {"d": database, "t": table})
    return bool(running)


def bytes_on_disk(client: Client, database: str, table: str) -> int:
    """Compressed size of one server's active parts of ``table``."""
    ((size,),) = client.execute(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = %(d)s AND table = %(t)s",
        {"d": database, "t": table},
    )
    return int(size or 0)
