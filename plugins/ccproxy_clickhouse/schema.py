"""The ``access_logs`` table on ClickHouse, its schema versions and the migrations between them.

One instance: a day-partitioned ``MergeTree`` table ``access_logs``. With
OBSERVABILITY__CLICKHOUSE_CLUSTER: the MergeTree table is ``access_logs_local`` on each shard
and ``access_logs`` is a ``Distributed`` table in front of the cluster (rows spread by a hash of
request_id). Reads and writes always name ``access_logs``.

Every statement runs on ClickHouse 18.16 and on current releases: no DateTime64 (timestamps are
integer microseconds beside a DateTime for people), no ON CLUSTER (each instance creates what is
missing on the server it connects to, and on the cluster's other shards when it can reach them),
and TTL only where the server has it (19.6 and later; older servers get retention by dropping
day partitions, see :mod:`.retention`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS

MONEY = "Nullable(Decimal(38, 12))"
"""Exact to a trillionth of a dollar: some per-token prices have 10 to 12 decimal places."""
TABLE = "access_logs"
LOCAL_TABLE = "access_logs_local"
VERSION_TABLE = "ccproxy_schema_migrations"

# (record field, ClickHouse type) in AccessRecord order.
RECORD_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("request_id", "String"),
    ("timestamp", "DateTime"),  # whole seconds, for people; timestamp_us is exact and is what ccproxy reads
    ("method", "String"),
    ("endpoint", "String"),
    ("path", "String"),
    ("query", "String"),
    ("client_ip", "Nullable(String)"),
    ("user_agent", "Nullable(String)"),
    ("service_type", "String"),
    ("model", "Nullable(String)"),
    ("streaming", "UInt8"),
    ("status_code", "Int32"),
    ("duration_ms", "Float64"),
    ("duration_seconds", "Float64"),
    ("tokens_input", "Nullable(Int64)"),
    ("tokens_output", "Nullable(Int64)"),
    ("cache_read_tokens", "Nullable(Int64)"),
    ("cache_write_tokens", "Nullable(Int64)"),
    ("cost_usd", MONEY),
    ("cost_sdk_usd", MONEY),
    ("ttft_ms", "Nullable(Float64)"),
    ("upstream_status", "Nullable(Int32)"),
    ("upstream_duration_ms", "Nullable(Float64)"),
    ("proxy_overhead_ms", "Nullable(Float64)"),
    ("error_type", "Nullable(String)"),
    ("error_message", "Nullable(String)"),
    ("response_model", "Nullable(String)"),
    ("cost_input_usd", MONEY),
    ("cost_output_usd", MONEY),
    ("cost_cache_read_usd", MONEY),
    ("cost_cache_write_usd", MONEY),
    ("priced", "UInt8"),
    ("request_bytes", "Int64"),
    ("response_bytes", "Int64"),
    ("rate_limits", "String"),  # JSON text, '' when none
    ("ttfb_ms", "Nullable(Float64)"),
    ("client_request_id", "Nullable(String)"),
    ("upstream_request_id", "Nullable(String)"),
    ("reasoning_tokens", "Nullable(Int64)"),
    ("cache_write_1h_tokens", "Nullable(Int64)"),
    ("web_search_requests", "Nullable(Int64)"),
    ("service_tier", "Nullable(String)"),
    ("speed", "Nullable(String)"),
    ("cost_tools_usd", MONEY),
    ("session_id", "Nullable(String)"),
    ("end_user", "Nullable(String)"),
    ("project", "Nullable(String)"),
    ("api_key_id", "Nullable(String)"),
    ("api_key_name", "Nullable(String)"),
    ("client_name", "Nullable(String)"),
    ("client_version", "Nullable(String)"),
    ("tags", "String"),  # JSON text, '' when none
    ("finish_reason", "Nullable(String)"),
)
JSON_COLUMNS = ("rate_limits", "tags")
"""Dict fields of the record, stored as JSON text ('' when empty)."""
assert tuple(name for name, _ in RECORD_COLUMN_TYPES) == ACCESS_LOG_COLUMNS, "columns must follow AccessRecord"

# Columns the store adds: the exact time, the partition day, who wrote the row and when.
EXTRA_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("timestamp_us", "Int64"),
    ("event_date", "Date"),
    ("instance", "String"),
    ("inserted_us", "Int64"),
)
COLUMN_TYPES = RECORD_COLUMN_TYPES + EXTRA_COLUMN_TYPES
INSERT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in COLUMN_TYPES)


def quote(name: str) -> str:
    """A column name as a ClickHouse identifier."""
    return f"`{name}`"


def _column_defs(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in pairs)


@dataclass(frozen=True, slots=True)
class Layout:
    """Which tables this instance uses: one MergeTree table, or local tables behind a Distributed one."""

    database: str
    cluster: str | None = None

    @property
    def storage_table(self) -> str:
        """The MergeTree table on each server."""
        return LOCAL_TABLE if self.cluster else TABLE

    def create_storage(self) -> str:
        """CREATE of the day-partitioned MergeTree table (also the shape of each shard's part)."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.database}.{self.storage_table} ({_column_defs(COLUMN_TYPES)}) "
            "ENGINE = MergeTree PARTITION BY event_date ORDER BY (timestamp_us, request_id)"
        )

    def create_distributed(self) -> str:
        """CREATE of the Distributed table in front of the cluster's local tables."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.database}.{TABLE} ({_column_defs(COLUMN_TYPES)}) "
            f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{LOCAL_TABLE}', cityHash64(request_id))"
        )


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the version it produces, the columns it adds or retypes and any other statements.

    Columns are added to the MergeTree table and to the Distributed table in front of it (both
    must keep the same shape), each only when missing: ClickHouse 18.16 has no ADD COLUMN IF NOT
    EXISTS. ``{table}`` in a statement is the MergeTree table. A retyped column is changed in the
    MergeTree table when its type differs; the Distributed tables follow once every shard's
    MergeTree table has changed (see :func:`.migrate.match_distributed`).
    """

    version: int
    description: str
    add_columns: tuple[tuple[str, str], ...] = ()
    statements: tuple[str, ...] = ()
    modify_columns: tuple[tuple[str, str], ...] = ()


MIGRATIONS: tuple[Migration, ...] = (
    # Version 1 is the table as created by Layout.create_storage: every column up to here.
    Migration(1, "access_logs: every AccessRecord field, exact timestamp, partition day, instance, insert time"),
    Migration(
        2,
        "money with 12 decimal places (was Decimal(18, 9))",
        modify_columns=tuple((name, sql_type) for name, sql_type in RECORD_COLUMN_TYPES if sql_type == MONEY),
    ),
    Migration(
        3,
        "why each answer ended: the provider's stop or finish reason",
        add_columns=(("finish_reason", "Nullable(String)"),),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
