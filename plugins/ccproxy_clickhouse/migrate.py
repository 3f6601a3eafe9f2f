"""Bring a ClickHouse server's tables to :data:`.schema.SCHEMA_VERSION`.

Idempotent and safe when several instances start at once: every CREATE has IF NOT EXISTS,
every column is added only when missing (and one that another instance added meanwhile is
taken as added), each version is recorded once it is not yet, and the applied versions are read
as ``max(version)``.
Runs on the server this instance connects to, and (with a cluster) on every other shard it can
reach, so the first instance to start prepares the whole cluster.

A column whose type changes is changed in the MergeTree tables first, on every server, and only
then in the Distributed tables (:func:`match_distributed`): while a Distributed table and a shard's
MergeTree table differ, ClickHouse 18.16 refuses inserts and reads across them, so that window is
kept as short as it can be. An insert refused in it is kept by the writer and retried.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from clickhouse_driver import Client, errors

from ccproxy_core.errors import StartupError

from .schema import MIGRATIONS, SCHEMA_VERSION, TABLE, VERSION_TABLE, Layout, Migration, quote

log = logging.getLogger("ccproxy.clickhouse")

TTL_SINCE = (19, 6)  # first release with table TTL


def server_version(client: Client) -> tuple[int, ...]:
    """The server's version as integers, e.g. ``(18, 16, 1)``."""
    ((text,),) = client.execute("SELECT version()")
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def supports_ttl(client: Client) -> bool:
    """True when the server understands table TTL."""
    return server_version(client)[:2] >= TTL_SINCE


def stored_version(client: Client, database: str) -> int:
    """The schema version recorded on this server (0 before the first start)."""
    ((version,),) = client.execute(f"SELECT max(version) FROM {database}.{VERSION_TABLE}")
    return int(version or 0)


def prepare_server(client: Client, layout: Layout, retention_days: float | None, where: str) -> int:
    """Create the database and tables that are missing and apply pending migrations; return the old version.

    ``where`` names the server in errors (its masked URL).
    """
    database = layout.database
    client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.execute(
        f"CREATE TABLE IF NOT EXISTS {database}.{VERSION_TABLE} "
        "(version UInt32, description String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
    )
    before = stored_version(client, database)
    if before > SCHEMA_VERSION:
        raise StartupError(
            f"ClickHouse database {database} at {where} has schema version {before}, newer than this ccproxy knows "
            f"({SCHEMA_VERSION}): upgrade ccproxy, or point OBSERVABILITY__CLICKHOUSE_URL at another database"
        )
    client.execute(layout.create_storage())
    if layout.cluster:
        client.execute(layout.create_distributed())
    for step in MIGRATIONS:
        if step.version > before:
            _apply(client, layout, step)
            if stored_version(client, database) >= step.version:
                continue  # another instance starting at the same time applied it and said so
            client.execute(
                f"INSERT INTO {database}.{VERSION_TABLE} (version, description, applied_at) VALUES",
                [{"version": step.version, "description": step.description, "applied_at": _now()}],
            )
            log.info("ClickHouse %s: schema version %d applied (%s)", where, step.version, step.description)
    if retention_days is not None and supports_ttl(client):
        days = max(1, int(retention_days))
        client.execute(f"ALTER TABLE {database}.{layout.storage_table} MODIFY TTL event_date + toIntervalDay({days})")
    return before


def match_distributed(client: Client, layout: Layout) -> None:
    """Give the Distributed table the column types of the MergeTree table under it, where they differ.

    Call after :func:`prepare_server` has run on every shard it can reach. Runs at every start, so a
    start that stopped between the two steps is finished by the next one.
    """
    if not layout.cluster:
        return
    storage = _column_types(client, layout, layout.storage_table)
    for name, sql_type in _column_types(client, layout, TABLE).items():
        if name in storage and storage[name] != sql_type:
            client.execute(f"ALTER TABLE {layout.database}.{TABLE} MODIFY COLUMN {quote(name)} {storage[name]}")


def _column_types(client: Client, layout: Layout, table: str) -> dict[str, str]:
    return dict(
        client.execute(
            "SELECT name, type FROM system.columns WHERE database = %(database)s AND table = %(table)s",
            {"database": layout.database, "table": table},
        )
    )


def _apply(client: Client, layout: Layout, step: Migration) -> None:
    tables = [layout.storage_table] + ([TABLE] if layout.cluster else [])
    for table in tables:
        present = _column_types(client, layout, table)
        for name, sql_type in step.add_columns:
            if name not in present:
                _add_column(client, layout, table, name, sql_type)
    storage = _column_types(client, layout, layout.storage_table)
    for name, sql_type in step.modify_columns:  # the values stored are converted, and keep their value
        if storage.get(name, sql_type) != sql_type:
            client.execute(
                f"ALTER TABLE {layout.database}.{layout.storage_table} MODIFY COLUMN {quote(name)} {sql_type}"
            )
    for statement in step.statements:
        client.execute(statement.format(table=f"{layout.database}.{layout.storage_table}"))


def _add_column(client: Client, layout: Layout, table: str, name: str, sql_type: str) -> None:
    """Add a column, unless another instance starting at the same time has just added it."""
    try:
        client.execute(f"ALTER TABLE {layout.database}.{table} ADD COLUMN {quote(name)} {sql_type}")
    except errors.ServerException as exc:
        # "column with this name already exists": ILLEGAL_COLUMN on 18.16, DUPLICATE_COLUMN later.
        if exc.code not in _COLUMN_EXISTS or name not in _column_types(client, layout, table):
            raise


_COLUMN_EXISTS = (errors.ErrorCodes.ILLEGAL_COLUMN, errors.ErrorCodes.DUPLICATE_COLUMN)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the driver sends naive datetimes as UTC DateTime
