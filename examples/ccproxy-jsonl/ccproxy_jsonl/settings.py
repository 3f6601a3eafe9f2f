"""The exporter's settings, read from ``CCPROXY_JSONL__*`` environment variables (or a .env file).

ccproxy's own Settings ignore variables they do not know, so a plugin keeps its settings
under a prefix of its own and reads them itself, at start-up.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ccproxy_core.errors import StartupError

ENV_PREFIX = "CCPROXY_JSONL__"


class JsonlSettings(BaseSettings):
    """Where and how the access records are written."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    path: Path = Path("~/.local/share/ccproxy/access.jsonl")
    """CCPROXY_JSONL__PATH: the file records are appended to (~ expanded, folders created)."""
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    """CCPROXY_JSONL__MAX_BYTES: rotate before the file would grow past this (default 100 MiB)."""
    backups: int = Field(5, ge=0, le=1000)
    """CCPROXY_JSONL__BACKUPS: rotated files kept as PATH.1 (newest) .. PATH.N; 0 keeps none."""
    queue_size: int = Field(10_000, ge=1)
    """CCPROXY_JSONL__QUEUE_SIZE: records waiting for the writer before new ones are dropped."""

    @field_validator("path")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()


def load_jsonl_settings() -> JsonlSettings:
    """Read the settings now; a bad value stops start-up with one line naming the variable."""
    try:
        return JsonlSettings()
    except ValidationError as exc:
        problems = [
            f"invalid setting {ENV_PREFIX}{'__'.join(map(str, error['loc'])).upper()}={error['input']!r}: {error['msg']}"
            for error in exc.errors()
        ]
        raise StartupError("; ".join(problems)) from None
