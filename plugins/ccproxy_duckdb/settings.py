"""The DuckDB store's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ccproxy_core.plugin_host.log_store import LogCollectionSettings

_SIZE_PARTS = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B)\s*")
_ANY_CASE_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt])(i?)b\s*", re.IGNORECASE)  # ASCII digits: DuckDB's
_UNIT_BYTES = {
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
MAX_SIZE_BYTES = 2**50
"""1 PiB: more than any machine holds; DuckDB refuses sizes past its own range only when it opens the file."""
MIN_MEMORY_LIMIT = "32MB"
"""The least memory DuckDB is given: with less, it fails the logs API's analytics over a few thousand rows."""


class DuckDBSettings(LogCollectionSettings):
    """Storing every access record in a DuckDB file."""

    duckdb_path: str = "~/.local/share/ccproxy/metrics.duckdb"
    """OBSERVABILITY__DUCKDB_PATH: the DuckDB file (~ expanded, folders created)."""
    duckdb_memory_limit: str = "256MB"
    """OBSERVABILITY__DUCKDB_MEMORY_LIMIT: DuckDB's buffer pool cap (e.g. 256MB, 1GiB); larger work spills to disk."""
    duckdb_threads: int = Field(2, ge=1, le=256)
    """OBSERVABILITY__DUCKDB_THREADS: threads DuckDB may use for one query."""
    duckdb_checkpoint_threshold: str = "4MB"
    """OBSERVABILITY__DUCKDB_CHECKPOINT_THRESHOLD: rows written since DuckDB's last checkpoint stay in memory
    until its write-ahead log reaches this size (DuckDB's own default is 16MB); each checkpoint writes them
    as one row group, so a lower value holds less memory in smaller row groups."""

    @field_validator("duckdb_path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: give the path of the DuckDB file, or leave the setting out for the default")
        return value

    @field_validator("duckdb_memory_limit", "duckdb_checkpoint_threshold", mode="before")
    @classmethod
    def _a_size(cls, value: object) -> object:
        """``256mb`` as ``256MB``: DuckDB takes either; anything else is refused with the form it should take."""
        if not isinstance(value, str):
            return value
        size = _ANY_CASE_SIZE.fullmatch(value)
        if size is None:
            raise ValueError(
                "is not a size: write a number and a unit, such as 256MB or 1GiB (KB, MB, GB, TB, KiB, ...)"
            )
        return f"{size[1]}{size[2].upper()}{'iB' if size[3] else 'B'}"

    @field_validator("duckdb_memory_limit", "duckdb_checkpoint_threshold")
    @classmethod
    def _at_most_a_pebibyte(cls, value: str) -> str:
        if size_bytes(value) > MAX_SIZE_BYTES:
            raise ValueError("must be at most 1024TiB")
        return value

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _enough_for_duckdb(cls, value: str) -> str:
        if size_bytes(value) < size_bytes(MIN_MEMORY_LIMIT):
            raise ValueError(f"must be at least {MIN_MEMORY_LIMIT}: with less, DuckDB fails the logs API's analytics")
        return value


def size_bytes(value: str) -> float:
    """The bytes a size matching the settings' pattern (``256MB``, ``1 GiB``) stands for."""
    size = _SIZE_PARTS.fullmatch(value)
    return float(size[1]) * _UNIT_BYTES[size[2]] if size is not None else 0.0
