"""Pages of rows that DuckDB encodes as JSON itself, handed over as a few byte strings.

Building 10,000 row dicts and encoding them in Python held the GIL for most of a second,
and proxied requests waiting on the event loop felt every millisecond of it. DuckDB runs the
query, the encoding and the joining of rows into slices with the GIL released; Python only
receives the slices. The text decodes to exactly the dicts of :func:`.rows.row_to_dict` (tested).
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from ccproxy_core.plugin_host.log_store import EncodedRows

from .schema import COLUMN_TYPES, JSON_COLUMNS, MONEY

ROWS_PER_SLICE = 200
"""Rows joined into one slice (about 250 KB): the unit Python receives and the response sends."""

_MICROS = 'epoch_us("timestamp")'
# datetime.isoformat() leaves out the fraction when it is zero; strftime needs a constant format.
_ISO_TIMESTAMP = (
    f"CASE WHEN {_MICROS} % 1000000 = 0 THEN strftime(make_timestamp({_MICROS}), '%Y-%m-%dT%H:%M:%S+00:00') "
    f"ELSE strftime(make_timestamp({_MICROS}), '%Y-%m-%dT%H:%M:%S.%f+00:00') END"
)


def _json_value(name: str, column_type: str) -> str:
    if name == "timestamp":
        return _ISO_TIMESTAMP
    if name in JSON_COLUMNS:  # text that is not JSON (never written by ccproxy) reads as {}, not a failed page
        return f"coalesce(try_cast(\"{name}\" AS JSON), '{{}}'::JSON)"
    if column_type == MONEY:
        return f'CAST("{name}" AS DOUBLE)'  # exact to the nearest double, as float(Decimal) is
    return f'"{name}"'


ROW_JSON = "json_object(" + ", ".join(f"'{name}', {_json_value(name, kind)}" for name, kind in COLUMN_TYPES) + ")"
"""One row of ``access_logs`` as JSON text, keys in column order."""


def encoded_page(
    cursor: duckdb.DuckDBPyConnection, where: str, params: list[Any], order: str, limit: int, offset: int = 0
) -> tuple[EncodedRows, tuple[int, str] | None, bool]:
    """Rows ``offset`` to ``offset + limit`` of ``access_logs`` in ``order``, encoded.

    Also returns the (epoch microseconds, request_id) of the last row, and whether a row follows
    it. ``order`` must end with ``request_id`` so that it is total.
    """
    sql = f"""
        WITH page AS (SELECT * FROM access_logs {where} ORDER BY {order} LIMIT ? OFFSET ?),
        numbered AS (
            SELECT {ROW_JSON} AS row_json, {_MICROS} AS at_us, request_id, row_number() OVER (ORDER BY {order}) AS n
            FROM page
        )
        SELECT CASE WHEN n > ? THEN -1 ELSE (n - 1) // {ROWS_PER_SLICE} END AS slice,
               encode(string_agg(row_json, ',' ORDER BY n)), count(*), arg_max(at_us, n), arg_max(request_id, n)
        FROM numbered GROUP BY slice ORDER BY slice
    """
    # One row past the page is read to learn whether another page follows; it lands in slice -1.
    slices = _fetch_one_by_one(cursor.execute(sql, [*params, limit + 1, offset, limit]))
    more = bool(slices) and slices[0][0] == -1
    if more:
        slices = slices[1:]
    rows = EncodedRows([text for _, text, _, _, _ in slices], sum(count for _, _, count, _, _ in slices))
    last = (slices[-1][3], slices[-1][4]) if slices else None
    return rows, last, more


def _fetch_one_by_one(result: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every row of ``result``, handing the GIL over after each.

    ``fetchall`` and ``fetchmany`` convert a whole chunk of results (all the slices of a
    page) while holding the GIL, about 15 ms for 10,000 rows; ``fetchone`` converts one
    slice, and ``time.sleep(0)`` lets a waiting event loop run between two.
    """
    rows = []
    while (row := result.fetchone()) is not None:
        rows.append(row)
        time.sleep(0)
    return rows
