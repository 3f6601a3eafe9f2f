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

from clickhouse_driver import Client

from ccproxy_core.plugin_host.log_store import SORTABLE_COLUMNS, LogFilters, PagePosition, QueryPage

from .filters import Params, where_clause
from .rows import SELECT_LIST, datetime_to_micros, micros_to_datetime, row_to_dict
from .schema import TABLE, quote


def _order_column(name: str) -> str:
    return "timestamp_us" if name == "timestamp" else quote(name)


def query_page(client: Client, database: str, filters: LogFilters, limit: int, after: PagePosition | None) -> QueryPage:
    """Up to ``limit`` rows newest first, strictly after ``after``; keyset pagination on (timestamp, request_id)."""
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
    next_position = None
    if len(keys) > limit:
        keys = keys[:limit]
        next_position = PagePosition(micros_to_datetime(keys[-1][0]), keys[-1][1])
    return QueryPage(rows_for_keys(client, database, keys), next_position)


def rows_for_keys(client: Client, database: str, keys: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The full rows of ``keys`` (timestamp_us, request_id), in the order of ``keys``."""
    if not keys:
        return []
    params = Params()
    micros = [key[0] for key in keys]
    sql = (
        f"SELECT {SELECT_LIST} FROM {database}.{TABLE} WHERE timestamp_us >= {params.add(min(micros))} "
        f"AND timestamp_us <= {params.add(max(micros))} AND request_id IN {params.add(tuple(k[1] for k in keys))}"
    )
    by_key = {(row[1], row[0]): row for row in client.execute(sql, params.values)}
    return [row_to_dict(by_key[key]) for key in keys if key in by_key]


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
