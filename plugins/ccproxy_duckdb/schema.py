"""The ``access_logs`` table, its schema version, and the migrations that bring older files up to date.

Migrations are a list of steps, applied in order inside one transaction at start-up; a file is
never dropped or rebuilt. Version 1 is the documented twenty columns; version 2 adds the
columns that explain a row (time to first token, upstream status, errors, cost line items, ...);
version 3 the columns of record truth (time to first byte, request ids, reasoning and 1-hour cache
tokens, web searches, tier, speed, tool cost); version 4 the columns that say who and what a request
was for (session, project, key, client, tags); version 5 adds the analytics rollups (see :mod:`.rollup_sql`) and fills them from the rows already stored;
version 6 widens every money column and the rollups' cost sums from 9 to 12 decimal places, in place
(the values already stored keep their value); version 7 adds why each answer ended (``finish_reason``);
version 8 marks rows of the first schema priced when their cost is known (see ``_PRICED_FROM_COST``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS
from ccproxy_core.errors import StartupError

from . import rollup_sql

MONEY = "DECIMAL(38,12)"
"""Exact to a trillionth of a dollar: some per-token prices have 10 to 12 decimal places. Values up to
:data:`ccproxy_core.safe_values.MAX_USD` fit with room to spare (DECIMAL(18,12) would hold only 6 digits
before the point)."""

# (column, DuckDB type) in AccessRecord order; appended rows follow this order.
COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("request_id", "VARCHAR NOT NULL"),
    ("timestamp", "TIMESTAMPTZ NOT NULL"),
    ("method", "VARCHAR"),
    ("endpoint", "VARCHAR"),
    ("path", "VARCHAR"),
    ("query", "VARCHAR"),
    ("client_ip", "VARCHAR"),
    ("user_agent", "VARCHAR"),
    ("service_type", "VARCHAR"),
    ("model", "VARCHAR"),
    ("streaming", "BOOLEAN"),
    ("status_code", "INTEGER"),
    ("duration_ms", "DOUBLE"),
    ("duration_seconds", "DOUBLE"),
    ("tokens_input", "BIGINT"),
    ("tokens_output", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("cost_usd", MONEY),
    ("cost_sdk_usd", MONEY),
    ("ttft_ms", "DOUBLE"),
    ("upstream_status", "INTEGER"),
    ("upstream_duration_ms", "DOUBLE"),
    ("proxy_overhead_ms", "DOUBLE"),
    ("error_type", "VARCHAR"),
    ("error_message", "VARCHAR"),
    ("response_model", "VARCHAR"),
    ("cost_input_usd", MONEY),
    ("cost_output_usd", MONEY),
    ("cost_cache_read_usd", MONEY),
    ("cost_cache_write_usd", MONEY),
    ("priced", "BOOLEAN"),
    ("request_bytes", "BIGINT"),
    ("response_bytes", "BIGINT"),
    ("rate_limits", "VARCHAR"),  # JSON text
    ("ttfb_ms", "DOUBLE"),
    ("client_request_id", "VARCHAR"),
    ("upstream_request_id", "VARCHAR"),
    ("reasoning_tokens", "BIGINT"),
    ("cache_write_1h_tokens", "BIGINT"),
    ("web_search_requests", "BIGINT"),
    ("service_tier", "VARCHAR"),
    ("speed", "VARCHAR"),
    ("cost_tools_usd", MONEY),
    ("session_id", "VARCHAR"),
    ("end_user", "VARCHAR"),
    ("project", "VARCHAR"),
    ("api_key_id", "VARCHAR"),
    ("api_key_name", "VARCHAR"),
    ("client_name", "VARCHAR"),
    ("client_version", "VARCHAR"),
    ("tags", "VARCHAR"),  # JSON text
    ("finish_reason", "VARCHAR"),
)
COLUMNS: tuple[str, ...] = tuple(name for name, _ in COLUMN_TYPES)
assert COLUMNS == ACCESS_LOG_COLUMNS, "access_logs columns must follow AccessRecord field order"

_DOCUMENTED = 20  # the first twenty columns are the documented access_logs columns (schema version 1)
_VERSION_2_END = COLUMNS.index("rate_limits") + 1
_VERSION_3_END = COLUMNS.index("cost_tools_usd") + 1
_VERSION_4_END = COLUMNS.index("tags") + 1
MONEY_COLUMNS = tuple(name for name, sql_type in COLUMN_TYPES if sql_type == MONEY)
JSON_COLUMNS = ("rate_limits", "tags")
"""Dict fields stored as JSON text."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: the schema version it produces and the statements that get there."""

    version: int
    description: str
    statements: tuple[str, ...]
    only_if: str | None = None
    """A query whose one value says whether the statements are needed (they are always, without one)."""


def _column_defs(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f'"{name}" {sql_type}' for name, sql_type in pairs)


_PRICED_FROM_COST = "UPDATE access_logs SET priced = cost_usd IS NOT NULL WHERE priced IS NULL"
"""Rows of the first schema have no ``priced``: their cost is known when it is stored. (Version 2 added
the column without filling it, so such rows counted as unpriced, their cost in the totals all the same.)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the documented access_logs columns",
        (f"CREATE TABLE IF NOT EXISTS access_logs ({_column_defs(COLUMN_TYPES[:_DOCUMENTED])})",),
    ),
    Migration(
        2,
        "ttft, upstream status and timing, errors, response model, cost line items, priced flag, sizes, rate limits",
        (
            *(
                f'ALTER TABLE access_logs ADD COLUMN IF NOT EXISTS "{name}" {sql_type}'
                for name, sql_type in COLUMN_TYPES[_DOCUMENTED:_VERSION_2_END]
            ),
            _PRICED_FROM_COST,
        ),
    ),
    Migration(
        3,
        "time to first byte, client and provider request ids, reasoning, 1-hour cache writes, web searches, tier, speed, tool cost",
        tuple(
            f'ALTER TABLE access_logs ADD COLUMN IF NOT EXISTS "{name}" {sql_type}'
            for name, sql_type in COLUMN_TYPES[_VERSION_2_END:_VERSION_3_END]
        ),
    ),
    Migration(
        4,
        "attribution: session, end user, project, key fingerprint and name, client, tags",
        tuple(
            f'ALTER TABLE access_logs ADD COLUMN IF NOT EXISTS "{name}" {sql_type}'
            for name, sql_type in COLUMN_TYPES[_VERSION_3_END:_VERSION_4_END]
        ),
    ),
    Migration(
        5,
        "minute and hour rollups (sums and latency histograms) for analytics, built from the stored rows",
        rollup_sql.create_statements() + rollup_sql.rebuild_statements(),
    ),
    Migration(
        6,
        "money with 12 decimal places: every cost column and the rollups' cost sums",
        tuple(f'ALTER TABLE access_logs ALTER COLUMN "{name}" SET DATA TYPE {MONEY}' for name in MONEY_COLUMNS)
        + rollup_sql.money_statements(),
    ),
    Migration(
        7,
        "why each answer ended: the provider's stop or finish reason",
        tuple(
            f'ALTER TABLE access_logs ADD COLUMN IF NOT EXISTS "{name}" {sql_type}'
            for name, sql_type in COLUMN_TYPES[_VERSION_4_END:]
        ),
    ),
    Migration(
        8,
        "rows of the first schema marked priced when their cost is known, and the rollups built again",
        (_PRICED_FROM_COST, *rollup_sql.rebuild_statements()),
        only_if="SELECT count(*) > 0 FROM access_logs WHERE priced IS NULL",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the open file: 0 for an empty file.

    A file that has ``access_logs`` but no ``schema_version`` table predates versioning and
    counts as version 1 (its later columns are added with ``IF NOT EXISTS``).
    """
    tables = {
        row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    }
    if "schema_version" in tables:
        (version,) = one_row(con.execute("SELECT coalesce(max(version), 0) FROM schema_version"))
        return int(version)
    return 1 if "access_logs" in tables else 0


def _foreign_tables(con: duckdb.DuckDBPyConnection) -> str | None:
    """What shows that another program wrote the file, or ``None``.

    A view under one of ccproxy's names, an ``access_logs`` table without the twenty documented columns
    (the rule of ``ccproxy report``), a ``schema_version`` whose version is no integer: migrating such a
    file would add ccproxy's columns and tables to another program's.
    """
    views = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND view_name IN ('access_logs', 'schema_version')"
    ).fetchall()
    if views:
        return f"a view named {views[0][0]}"
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name IN ('access_logs', 'schema_version')"
    ).fetchall():
        tables.setdefault(table, {})[column] = data_type
    if "access_logs" in tables and not set(COLUMNS[:_DOCUMENTED]) <= tables["access_logs"].keys():
        return "an access_logs table with other columns"
    if "schema_version" in tables and tables["schema_version"].get("version") != "INTEGER":
        return "a schema_version table of another kind"
    return None


def migrate(con: duckdb.DuckDBPyConnection, path: str) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; return the version it had before.

    Raises :class:`StartupError` when the file was written by a newer ccproxy, or by another program.
    """
    foreign = _foreign_tables(con)
    if foreign is not None:
        raise StartupError(
            f"DuckDB file {path} holds no ccproxy access records ({foreign}); it was left untouched: "
            "set OBSERVABILITY__DUCKDB_PATH to ccproxy's file or a new one"
        )
    before = stored_version(con)
    if before > SCHEMA_VERSION:
        raise StartupError(
            f"DuckDB file {path} has schema version {before}, newer than this ccproxy knows ({SCHEMA_VERSION}): "
            "upgrade ccproxy or point OBSERVABILITY__DUCKDB_PATH at another file"
        )
    pending = [step for step in MIGRATIONS if step.version > before]
    if not pending:
        return before
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_VERSION_TABLE)
        for step in pending:
            needed = step.only_if is None or one_row(con.execute(step.only_if))[0]
            for statement in step.statements if needed else ():
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [step.version, datetime.now(UTC)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return before


def one_row(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row of an aggregate just executed on ``cursor`` (DuckDB types ``fetchone`` as maybe none)."""
    row = cursor.fetchone()
    if row is None:
        raise duckdb.InvalidInputException("the statement returned no row")
    return row
