"""The DuckDB store's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import Field

from ccproxy_core.plugin_host.log_store import LogCollectionSettings

_SIZE = r"^\s*\d+(\.\d+)?\s*([KMGT]i?B)\s*$"


class DuckDBSettings(LogCollectionSettings):
    """Storing every access record in a DuckDB file."""

    duckdb_path: str = "~/.local/share/ccproxy/metrics.duckdb"
    """OBSERVABILITY__DUCKDB_PATH: the DuckDB file (~ expanded, folders created)."""
    duckdb_memory_limit: str = Field("256MB", pattern=_SIZE)
    """OBSERVABILITY__DUCKDB_MEMORY_LIMIT: DuckDB's buffer pool cap (e.g. 256MB, 1GiB); larger work spills to disk."""
    duckdb_threads: int = Field(2, ge=1, le=256)
    """OBSERVABILITY__DUCKDB_THREADS: threads DuckDB may use for one query."""
    duckdb_checkpoint_threshold: str = Field("4MB", pattern=_SIZE)
    """OBSERVABILITY__DUCKDB_CHECKPOINT_THRESHOLD: rows written since DuckDB's last checkpoint stay in memory
    until its write-ahead log reaches this size (DuckDB's own default is 16MB); each checkpoint writes them
    as one row group, so a lower value holds less memory in smaller row groups."""
