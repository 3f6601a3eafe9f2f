"""The exporter's settings: the ``[plugins.jsonl]`` table of ccproxy's config file, or ``PLUGINS__JSONL__*``.

A plain pydantic model: ccproxy reads it from every source, checks it (an unknown key or a
bad value stops start-up with one line naming it), and shows it in ``ccproxy config show``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator


class JsonlSettings(BaseModel):
    """Where and how the access records are written."""

    path: Path = Path("~/.local/share/ccproxy/access.jsonl")
    """PLUGINS__JSONL__PATH: the file records are appended to (~ expanded, folders created)."""
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    """PLUGINS__JSONL__MAX_BYTES: rotate before the file would grow past this (default 100 MiB)."""
    backups: int = Field(5, ge=0, le=1000)
    """PLUGINS__JSONL__BACKUPS: rotated files kept as PATH.1 (newest) .. PATH.N; 0 keeps none."""
    queue_size: int = Field(10_000, ge=1)
    """PLUGINS__JSONL__QUEUE_SIZE: records waiting for the writer before new ones are dropped."""

    @field_validator("path", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        """An empty path would read as the current folder, which no record can be appended to."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give the file to append records to, or leave the setting out for the default")
        return value

    @field_validator("path")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()
