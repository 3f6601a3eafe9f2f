"""Handing DuckDB's cached table blocks back, so the process does not grow with its file.

DuckDB keeps the blocks of the table it has written at each checkpoint, or read, in memory
until it nears its memory limit: left alone, a ccproxy that runs for days grows by the size
of its file up to OBSERVABILITY__DUCKDB_MEMORY_LIMIT. Those blocks are on disk already, and
DuckDB drops them when its limit is lowered, so once a minute the writer lowers the limit to
what is in use besides them (plus 1 MiB) and sets it back at once. Reads are kept out
while it does (:meth:`.database.Database.trim_block_cache`), so none meets the lowered limit.
"""

from __future__ import annotations

import duckdb

TRIM_EVERY_SECONDS = 60.0
WORTH_TRIMMING_BYTES = 8 * 1024 * 1024
"""A cache smaller than this is left alone."""
HEADROOM_BYTES = 1024 * 1024
"""Above what is in use besides the cache: the lowered limit must sit below the cache for DuckDB to drop it."""


def cached_table_bytes(cursor: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(bytes DuckDB holds in all, of which cached blocks of stored tables)."""
    row = cursor.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0), coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), 0) "
        "FROM duckdb_memory()"
    ).fetchone()
    assert row is not None, "an aggregate has one row"
    return int(row[0]), int(row[1])


def trim(cursor: duckdb.DuckDBPyConnection, memory_limit: str) -> int:
    """Drop the cached table blocks; return how many bytes DuckDB gave back. No read may run meanwhile."""
    total, cached = cached_table_bytes(cursor)
    if cached < WORTH_TRIMMING_BYTES:
        return 0
    try:
        cursor.execute(f"SET memory_limit='{total - cached + HEADROOM_BYTES}B'")
    except duckdb.Error:
        pass  # what is in use could not be brought under it: nothing was dropped, the limit is unchanged
    finally:
        cursor.execute(f"SET memory_limit='{memory_limit}'")
    return total - cached_table_bytes(cursor)[0]
