"""The contract between an access-log store and whoever reads it (the /logs API, the dashboard).

A storage plugin answers the ``get_log_store(app, settings)`` hook with an object that has the
methods of :class:`LogStore`; readers never import the storage plugin. The built-in store is
DuckDB (plugin ``duckdb``); a third-party store answers the same hook with ``tryfirst=True``.

Rules every store follows:

- Reads are ``async`` and never block the event loop (a blocking database runs them in a thread).
- ``stats()`` is synchronous and cheap: it is read at every metrics scrape.
- Rows come back as dicts keyed by column name (the fields of
  :class:`ccproxy_core.accounting.record.AccessRecord`, in that order) with JSON-ready values, exactly as
  ``AccessRecord.to_dict()`` gives them: ISO 8601 timestamps, money as float, ``rate_limits`` a dict.
- Time windows include ``start_time`` and exclude ``end_time``.
- Column names reaching a store come from :data:`SORTABLE_COLUMNS`; every value is a parameter.

A store shared by several ccproxy instances (ClickHouse) may also offer
:class:`PeerRecordFeed`, so each instance's /logs/stream shows the other instances' requests.
A store that can encode rows as JSON itself may offer :class:`EncodedRowReads`: the logs API
then serves its largest pages without building a Python object per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS, AccessRecord


class LogCollectionSettings(BaseModel):
    """What every log-store plugin reads under ``[observability]``: whether to store, where, and how to batch.

    A store plugin's settings model subclasses this one, so the fields are shared, not repeated.
    """

    logs_collection_enabled: bool = False
    """OBSERVABILITY__LOGS_COLLECTION_ENABLED: store every access record."""
    log_storage_backend: Literal["duckdb", "clickhouse", "none"] = "duckdb"
    """OBSERVABILITY__LOG_STORAGE_BACKEND: which store plugin keeps the records (duckdb, clickhouse) or none."""
    log_retention_days: float | None = Field(None, gt=0, le=36_500)
    """OBSERVABILITY__LOG_RETENTION_DAYS: delete stored rows older than this; unset keeps all. At most 36500
    (a hundred years), so the cutoff stays a date stores can reckon with."""
    log_queue_size: int = Field(10_000, ge=1)
    """OBSERVABILITY__LOG_QUEUE_SIZE: records waiting for the writer before new ones are dropped."""
    log_batch_size: int = Field(1_000, ge=1)
    """OBSERVABILITY__LOG_BATCH_SIZE: records per insert."""
    log_flush_interval_seconds: float = Field(1.0, gt=0, le=3600)
    """OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS: longest wait before queued records are written; at most 3600
    (an hour): records still waiting are lost if the process is killed."""

    def store_enabled(self, backend: str) -> tuple[bool, str]:
        """Whether the store plugin for ``backend`` is on, and why (for ``ccproxy plugins list``)."""
        if not self.logs_collection_enabled:
            return False, "OBSERVABILITY__LOGS_COLLECTION_ENABLED=false"
        if self.log_storage_backend != backend:
            return False, f"OBSERVABILITY__LOG_STORAGE_BACKEND={self.log_storage_backend}"
        return True, f"OBSERVABILITY__LOGS_COLLECTION_ENABLED=true, OBSERVABILITY__LOG_STORAGE_BACKEND={backend}"


Bucket = Literal["minute", "hour", "day"]
"""Width of one point of the analytics time series."""

SORTABLE_COLUMNS: tuple[str, ...] = tuple(
    column for column in ACCESS_LOG_COLUMNS if column not in ("rate_limits", "tags")
)
"""Columns a reader may order by (every column but the ``rate_limits`` and ``tags`` dicts)."""

GROUP_DIMENSIONS: tuple[str, ...] = (
    "model",
    "service_type",
    "session",
    "project",
    "end_user",
    "api_key",
    "client",
    "day",
)
"""What :meth:`LogStore.groups` can group by, besides ``tag:<name>``. ``api_key`` groups by the key's
fingerprint (``api_key_id``), whatever name its rows were recorded under: readers label the groups
with the names configured now (:mod:`ccproxy_core.plugin_host.key_groups`); ``day`` is the UTC date
(``2025-01-31``)."""
OTHER_GROUP = "other"
"""The key of the group that sums every group beyond the top N."""
TOP_GROUPS = 10
"""How many groups a breakdown shows by default before summing the rest into :data:`OTHER_GROUP`."""


def money_sum(amounts: Iterable[float | None]) -> float:
    """Dollar amounts added as the decimals they were read from (``None`` counts 0).

    Stores hand costs over as floats of exact decimal sums; added as floats, 0.0086 + 0.0120533
    would read 0.020653300000000003, where every other figure of the answer is exact.
    """
    return float(sum((Decimal(repr(amount)) for amount in amounts if amount), Decimal(0)))


def show_unknown_costs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``cost_usd`` to ``None`` in each row (and its ``breakdown``) none of whose requests has a known price.

    Stores sum only known costs, so such a row would read as a known $0.00; with ``None`` and its
    ``unpriced_requests`` the reader sees that the cost is unknown. A row with some priced requests
    keeps the sum of those, and says how many were not priced. Rows without ``unpriced_requests``
    (a store that does not count them) are left alone. Changes the rows in place and returns them.
    """
    for row in rows:
        unpriced = row.get("unpriced_requests")
        if unpriced is not None and unpriced >= row.get("requests", 0) > 0:
            row["cost_usd"] = None
        show_unknown_costs(row.get("breakdown") or [])
    return rows


STATS_KEYS: tuple[str, ...] = ("queue_depth", "dropped_records", "write_errors", "rows_written", "last_flush_at")
"""Keys of :meth:`LogStore.stats`."""


@dataclass(frozen=True, slots=True)
class NameFilter:
    """Keep rows whose value is one of ``include`` (when given) and none of ``exclude``."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


@dataclass(frozen=True, slots=True)
class LogFilters:
    """Which rows a read looks at. Every part is optional; parts combine with AND."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    model: NameFilter = field(default_factory=NameFilter)
    service_type: NameFilter = field(default_factory=NameFilter)
    endpoint: NameFilter = field(default_factory=NameFilter)
    status_codes: tuple[int, ...] = ()
    """Exact statuses; a row matches one of these or one of ``status_classes``."""
    status_classes: tuple[int, ...] = ()
    """Hundreds digits: ``(4, 5)`` means 4xx or 5xx."""
    streaming: bool | None = None
    session_id: NameFilter = field(default_factory=NameFilter)
    project: NameFilter = field(default_factory=NameFilter)
    end_user: NameFilter = field(default_factory=NameFilter)
    api_key_id: NameFilter = field(default_factory=NameFilter)
    """Key fingerprints (readers turn a configured name into its keys' fingerprints first)."""
    client_name: NameFilter = field(default_factory=NameFilter)
    tags: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` pairs a row's tags must all hold."""


@dataclass(frozen=True, slots=True)
class Grouping:
    """What to group rows by: a dimension of :data:`GROUP_DIMENSIONS`, or ``tag`` with a tag name."""

    dimension: str
    tag: str | None = None
    top: int = TOP_GROUPS
    """Groups returned by size (cost, then requests); the rest are summed into one ``other`` group.
    ``day`` groups come in date order, the latest ``top`` days."""
    breakdown: str | None = None
    """A second dimension: each group then lists its own top groups by it (``model``, say)."""


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where a newest-first page ended: the next page starts strictly after this row."""

    timestamp: datetime
    request_id: str


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of newest-first rows and where the next page starts (``None`` when there is none)."""

    rows: list[dict[str, Any]]
    next_position: PagePosition | None


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Rows already encoded as JSON: each slice is UTF-8 objects separated by commas, without brackets.

    Joined with commas inside ``[...]``, the slices are the JSON array of the same rows as dicts.
    """

    slices: list[bytes]
    count: int
    truncated: bool = False
    """Whether rows that were asked for were left out to keep the answer's size bounded."""

    def __len__(self) -> int:
        return self.count


@runtime_checkable
class LogStore(Protocol):
    """What the logs API needs from an access-log store.

    A store that can read :meth:`analytics` and :meth:`groups` from one state may also offer
    ``async analytics_with_groups(filters, bucket, grouping) -> (analytics, groups)``; the API then
    uses it, so that one answer's groups add up to its totals while records are being written.
    """

    backend: str
    """Short name shown by /logs/status (``"duckdb"``)."""

    def stats(self) -> dict[str, Any]:
        """Writer health, cheap and synchronous, with exactly the keys of :data:`STATS_KEYS`.

        ``queue_depth`` (records waiting to be written), ``dropped_records``, ``write_errors``,
        ``rows_written`` (all ints since start) and ``last_flush_at`` (Unix seconds, float,
        or ``None`` before the first write).
        """
        ...

    async def describe(self) -> dict[str, Any]:
        """``{"database_path": str | None, "database_size_bytes": int | None, "row_count": int}``."""
        ...

    async def query(self, filters: LogFilters, limit: int, after: PagePosition | None = None) -> QueryPage:
        """Up to ``limit`` rows, newest first (ties broken by request_id, descending), after ``after``."""
        ...

    async def entries(
        self, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Page ``page`` (from 1) of rows ordered by ``order_by``, and the total number of matching rows."""
        ...

    async def analytics(self, filters: LogFilters, bucket: Bucket) -> dict[str, Any]:
        """Aggregates over the rows matching ``filters``; ``filters`` has both ends of the window.

        Returns the keys ``totals``, ``duration_ms``, ``ttft_ms``, ``tokens``, ``cost``,
        ``by_model``, ``by_service_type`` (each row with ``unpriced_requests``), ``timeseries`` and ``recent_errors``, shaped as
        documented for GET /logs/analytics in docs/logs-api.md (the API adds ``window``). ``by_model`` lists the
        models, most requests first; the API keeps the first :data:`TOP_GROUPS` and sums the rest into one row
        (:data:`OTHER_GROUP`, ``"rest": True``), which a store may do itself to read out only the rows shown (that
        row may stand anywhere in the list; a count a row leaves out reads as zero).
        A row is an error when ``status_code >= 400`` or ``error_type`` is set.
        """
        ...

    async def groups(self, filters: LogFilters, grouping: Grouping) -> list[dict[str, Any]]:
        """Rows matching ``filters`` summed per group (see :class:`Grouping`).

        Each group is ``{"key", "requests", "errors", "tokens": {"input", "output", "cache_read",
        "cache_write", "total"}, "cost_usd", "unpriced_requests"}`` (plus ``"breakdown"``, a list of
        the same shape, when asked); ``cost_usd`` sums the known costs. ``key`` is ``None`` for rows without a value and :data:`OTHER_GROUP` for the rest (which alone
        carries ``"rest": True``: a client may name its own project ``other``).
        """
        ...

    async def sessions(self, filters: LogFilters, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Sessions with a row matching ``filters``, most recently active first, and how many there are.

        Each is ``{"session_id", "first_seen", "last_seen", "requests", "errors", "tokens" (as in
        :meth:`groups`), "cost_usd", "unpriced_requests", "models" (sorted list), "project", "end_user", "api_key", "client_name"}``;
        ``api_key`` lists the session's key fingerprints (readers put the configured names in their place).
        """
        ...

    async def session_requests(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` rows of one session, oldest first (ties by request_id), as full rows."""
        ...

    async def reset(self) -> int:
        """Delete every stored row; return how many were deleted."""
        ...


@runtime_checkable
class EncodedRowReads(Protocol):
    """Optional: the reads that return full rows (query, entries, one session's requests), encoded by the store.

    The text decodes to exactly the dicts the plain methods return. A store whose database
    encodes JSON with Python's GIL released offers this, so one large page does not hold
    the event loop that serves proxied requests.
    """

    async def query_encoded(
        self, filters: LogFilters, limit: int, after: PagePosition | None = None
    ) -> tuple[EncodedRows, PagePosition | None]:
        """What :meth:`LogStore.query` returns, the rows encoded."""
        ...

    async def entries_encoded(
        self, page: int, page_size: int, order_by: str, order_desc: bool, filters: LogFilters | None = None
    ) -> tuple[EncodedRows, int]:
        """What :meth:`LogStore.entries` returns, the rows encoded."""
        ...

    async def session_requests_encoded(self, session_id: str, limit: int) -> EncodedRows:
        """What :meth:`LogStore.session_requests` returns, the rows encoded."""
        ...


@runtime_checkable
class PeerRecordFeed(Protocol):
    """Optional, for a store that several instances write to: their records for this instance's stream."""

    def follow_peer_records(self, publish: Callable[[AccessRecord], None]) -> None:
        """From now on, call ``publish`` once for each record another instance stores.

        Called once, when /logs/stream gets its first subscriber. ``publish`` is thread-safe and
        never blocks; the store calls it from a thread of its own and stops at ``close``.
        """
        ...


def _compact_json_encoder() -> Callable[[Any], str]:
    # The C encoder is made once and reused: json.dumps makes one per call, half the cost for a
    # dict of a dozen rate limits. It skips the check for circular containers, which the record's
    # flat dicts of text and numbers cannot be.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this Python
        return json.JSONEncoder(separators=(",", ":")).encode
    encode = make(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


compact_json: Callable[[Any], str] = _compact_json_encoder()
"""``json.dumps(value, separators=(",", ":"))`` for the record's dict fields (``rate_limits``,
``tags``), which a store keeps as JSON text; it runs once per record on the writer's path. ClickHouse
filters tags by the text as written, so it keeps this exact form."""
