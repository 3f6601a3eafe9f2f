"""Pages of rows that DuckDB encodes as JSON itself, handed over as a few byte strings.

Building 10,000 row dicts and encoding them in Python held the GIL for most of a second,
and proxied requests waiting on the event loop felt every millisecond of it. DuckDB runs the
query and the encoding with the GIL released; Python only receives each row's bytes and joins
a slice of them (one call). The text decodes to exactly the dicts of :func:`.rows.row_to_dict` (tested).
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from ccproxy_core.plugin_host.log_store import EncodedRows

from .schema import COLUMN_TYPES, JSON_COLUMNS, MONEY

ROWS_PER_SLICE = 200
"""Rows read and joined into one slice (about 250 KB; 1.8 MB at the size caps): the unit DuckDB holds,
Python receives and the response sends."""
PAGE_BYTES = 16 * 1024 * 1024
"""Most bytes of rows in one /logs/query page: 10,000 rows of ordinary size (about 1.3 KB each) fit; at
the size caps (about 8 KB of JSON each) a page holds some 2,000 and its cursor leads to the rest."""

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
    cursor: duckdb.DuckDBPyConnection,
    where: str,
    params: list[Any],
    order: str,
    limit: int,
    offset: int = 0,
    max_bytes: int | None = None,
) -> tuple[EncodedRows, tuple[int, str] | None, bool]:
    """Rows ``offset`` to ``offset + limit`` of ``access_logs`` in ``order``, encoded.

    Also returns the (epoch microseconds, request_id) of the last row, and whether a row follows
    it. ``order`` must end with ``request_id`` so that it is total. With ``max_bytes`` the page
    stops before the row that would take it past that many bytes of JSON (it always holds one
    row): the rest follows, as if ``limit`` had been reached.

    DuckDB holds only a slice of rows at a time: first the page's row ids are sorted out (a few
    bytes a row), then each slice of rows is read and encoded on its own, all in one snapshot.
    Encoding the whole page in one query held every row several times over (the page, its JSON,
    the joined slices): 4,000 rows at their size caps did not fit DuckDB's default 256 MB, and
    the writer, which shares that memory, failed meanwhile.
    """
    cursor.execute("BEGIN TRANSACTION")
    try:
        sql = f"SELECT rowid, {_MICROS}, request_id FROM access_logs {where} ORDER BY {order} LIMIT ? OFFSET ?"
        # One row past the page is read to learn whether another page follows.
        keys = _fetch_in_batches(cursor.execute(sql, [*params, limit + 1, offset]))
        more = len(keys) > limit
        keys = keys[:limit]
        slices, taken, used = [], 0, 0
        for start in range(0, len(keys), ROWS_PER_SLICE):
            batch = keys[start : start + ROWS_PER_SLICE]
            texts = _encoded_rows(cursor, [row_id for row_id, _, _ in batch])
            piece = []
            for row_id, _, _ in batch:
                text = texts[row_id]
                if max_bytes is not None and taken and used + len(text) + 1 > max_bytes:
                    more = True
                    break
                piece.append(text)
                taken, used = taken + 1, used + len(text) + 1
            if piece:
                slices.append(b",".join(piece))
            if len(piece) < len(batch):
                break
            time.sleep(0)
    finally:
        cursor.execute("ROLLBACK")
    last = (keys[taken - 1][1], keys[taken - 1][2]) if taken else None
    return EncodedRows(slices, taken), last, more


def _encoded_rows(cursor: duckdb.DuckDBPyConnection, row_ids: list[int]) -> dict[int, bytes]:
    """The JSON of each row in ``row_ids``, by row id."""
    sql = f"SELECT rowid, encode({ROW_JSON}) FROM access_logs WHERE rowid IN (SELECT unnest(?::BIGINT[]))"
    return dict(cursor.execute(sql, [row_ids]).fetchall())


def _fetch_in_batches(result: duckdb.DuckDBPyConnection, batch: int = 1000) -> list[tuple[Any, ...]]:
    """Every row of ``result``, handing the GIL over between batches (a waiting event loop runs at once)."""
    rows: list[tuple[Any, ...]] = []
    while chunk := result.fetchmany(batch):
        rows += chunk
        time.sleep(0)
    return rows
