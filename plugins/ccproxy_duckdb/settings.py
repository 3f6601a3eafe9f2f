"""The DuckDB store's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DuckDBSettings(BaseModel):
    """Storing every access record in a DuckDB file."""

    logs_collection_enabled: bool = False
    """OBSERVABILITY__LOGS_COLLECTION_ENABLED: store every access record."""
    log_storage_backend: Literal["duckdb", "none"] = "duckdb"
    """OBSERVABILITY__LOG_STORAGE_BACKEND: duckdb or none."""
    duckdb_path: str = "~/.local/share/ccproxy/metrics.duckdb"
    """OBSERVABILITY__DUCKDB_PATH: the DuckDB file (~ expanded, folders created)."""
    duckdb_memory_limit: str = Field("256MB", pattern=r"^\s*\d+(\.\d+)?\s*([KMGT]i?B)\s*$")
    """OBSERVABILITY__DUCKDB_MEMORY_LIMIT: DuckDB's buffer pool cap (e.g. 256MB, 1GiB); larger work spills to disk."""
    duckdb_threads: int = Field(2, ge=1, le=256)
    """OBSERVABILITY__DUCKDB_THREADS: threads DuckDB may use for one query."""
    log_retention_days: float | None = Field(None, gt=0)
    """OBSERVABILITY__LOG_RETENTION_DAYS: delete stored rows older than this; unset keeps all."""
    log_queue_size: int = Field(10_000, ge=1)
    """OBSERVABILITY__LOG_QUEUE_SIZE: records waiting for the writer before new ones are dropped."""
    log_batch_size: int = Field(1_000, ge=1)
    """OBSERVABILITY__LOG_BATCH_SIZE: records per insert."""
    log_flush_interval_seconds: float = Field(1.0, gt=0)
    """OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS: longest wait before queued records are written."""
