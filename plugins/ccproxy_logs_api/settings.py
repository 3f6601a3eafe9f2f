"""The logs API plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LogsApiSettings(BaseModel):
    """The /logs routes and the live /logs/stream."""

    logs_endpoints_enabled: bool = False
    """OBSERVABILITY__LOGS_ENDPOINTS_ENABLED: serve the /logs query API."""
    logs_concurrent_reads: int = Field(1, ge=1, le=64)
    """OBSERVABILITY__LOGS_CONCURRENT_READS: store reads (query, entries, analytics, sessions) served at once.

    More wait their turn. One keeps a large read from crowding proxied requests off a small machine;
    raise it on a machine with cores to spare."""
    logs_max_unsent_bytes: int = Field(256 * 1024 * 1024, ge=16 * 1024 * 1024)
    """OBSERVABILITY__LOGS_MAX_UNSENT_BYTES: bytes of /logs answers held, all together, for clients still reading them.

    A page is up to 16 MiB. A read that finds this much already held for slow readers, or whose answer would
    take the total past it, is answered 503 (its client retries), so clients that stop reading cannot take
    memory without bound."""
    stream_max_subscribers: int = Field(100, ge=1)
    """OBSERVABILITY__STREAM_MAX_SUBSCRIBERS: concurrent /logs/stream clients."""
    stream_queue_size: int = Field(1_000, ge=1, le=1_000_000)
    """OBSERVABILITY__STREAM_QUEUE_SIZE: events buffered per subscriber before it is dropped."""
    stream_replay_size: int = Field(1_000, ge=0, le=1_000_000)
    """OBSERVABILITY__STREAM_REPLAY_SIZE: recent events kept for Last-Event-ID reconnects, while the stream is followed
    and for a minute after (see :data:`ccproxy_logs_api.stream.REPLAY_GRACE_SECONDS`)."""
