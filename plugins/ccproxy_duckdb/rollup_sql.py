"""Rollups of ``access_logs``: their tables and the SQL that fills them from raw rows.

A rollup row sums the requests of one time bucket (a minute or an hour) that share a model,
service type, endpoint, status code, streaming flag and error flag: counts, token and cost sums,
the sum of durations. Beside it, a latency table counts, for the same key, the durations and
times to first token per histogram bin. Bins are log-spaced with a fixed growth factor, so any
set of rows merges by adding counts, and a percentile read back from the bins is within
:data:`MAX_RELATIVE_ERROR` of the exact (nearest-rank) percentile.

Each level has a watermark: every raw row before it is in that level's rollup, none after it.
This module only builds SQL; it imports nothing from the rest of the plugin, so the schema
migrations can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GROWTH = 2 ** (1 / 8)
"""Ratio between the bounds of a latency bin: eight bins per doubling."""
MAX_RELATIVE_ERROR = math.sqrt(GROWTH) - 1
"""A bin reports its geometric middle, at most this far (4.43%) from any value in it."""
SMALLEST_MS = 0.01
"""Values below this (and zero) share one bin that reports 0."""
UNDERFLOW_BIN = -10_000
LATE_TABLE = "rollup_late"
"""Per-connection temporary table for rows that arrive after their bucket was rolled up."""
MARGIN_MICROS = 120_000_000
"""Buckets close this long after they end; a row written later still reaches its bucket (see LATE_TABLE)."""


@dataclass(frozen=True, slots=True)
class Level:
    """One granularity of rollups: its bucket width and its two tables."""

    name: str
    width_micros: int

    @property
    def sums_table(self) -> str:
        return f"rollup_{self.name}"

    @property
    def latency_table(self) -> str:
        return f"latency_{self.name}"

    def floor(self, micros: int) -> int:
        return micros // self.width_micros * self.width_micros

    def ceil(self, micros: int) -> int:
        return -(-micros // self.width_micros) * self.width_micros


MINUTE = Level("minute", 60_000_000)
HOUR = Level("hour", 3_600_000_000)
LEVELS: tuple[Level, ...] = (HOUR, MINUTE)
"""Coarsest first: a query takes the largest buckets that fit, then finer ones at the edges."""

SUM_MONEY = "DECIMAL(38,12)"
"""A rollup's cost sum: the scale of the money columns, the widest DECIMAL."""

DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("model", "VARCHAR"),
    ("service_type", "VARCHAR"),
    ("endpoint", "VARCHAR"),
    ("status_code", "INTEGER"),
    ("streaming", "BOOLEAN"),
)
"""Columns a rollup keeps whole: every column /logs filters on besides the time."""
DIMENSION_NAMES = tuple(name for name, _ in DIMENSIONS)
IS_ERROR = '(coalesce("status_code", 0) >= 400 OR "error_type" IS NOT NULL)'

_SUMS: tuple[tuple[str, str, str], ...] = (
    ("requests", "BIGINT", "count(*)"),
    ("duration_count", "BIGINT", 'count("duration_ms")'),
    ("duration_sum", "DOUBLE", 'sum("duration_ms")'),
    ("tokens_input", "HUGEINT", 'sum("tokens_input")'),
    ("tokens_output", "HUGEINT", 'sum("tokens_output")'),
    ("cache_read_tokens", "HUGEINT", 'sum("cache_read_tokens")'),
    ("cache_write_tokens", "HUGEINT", 'sum("cache_write_tokens")'),
    ("cost_usd", SUM_MONEY, 'sum("cost_usd")'),
    ("unpriced", "BIGINT", 'count(*) FILTER (WHERE NOT coalesce("priced", false))'),
)
SUM_NAMES = tuple(name for name, _, _ in _SUMS)
LATENCY_METRICS: tuple[tuple[int, str], ...] = ((0, "duration_ms"), (1, "ttft_ms"))
DURATION, TTFT = 0, 1


def _dimension_defs() -> str:
    return ", ".join(f'"{name}" {sql_type}' for name, sql_type in DIMENSIONS)


def create_statements() -> tuple[str, ...]:
    """The rollup tables of every level and the watermark table."""
    statements = ["CREATE TABLE IF NOT EXISTS rollup_watermark (level VARCHAR NOT NULL, watermark_us BIGINT NOT NULL)"]
    for level in LEVELS:
        sums = ", ".join(f'"{name}" {sql_type}' for name, sql_type, _ in _SUMS)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {level.sums_table} "
            f"(t_us BIGINT NOT NULL, {_dimension_defs()}, is_error BOOLEAN NOT NULL, {sums})"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {level.latency_table} "
            f"(t_us BIGINT NOT NULL, {_dimension_defs()}, is_error BOOLEAN NOT NULL, "
            "metric TINYINT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL)"
        )
    return tuple(statements)


def bin_sql(column: str) -> str:
    """The latency bin of ``column`` (NULL for NULL, NaN and infinities)."""
    return (
        f'CASE WHEN "{column}" IS NULL OR NOT isfinite("{column}") THEN NULL '
        f'WHEN "{column}" < {SMALLEST_MS} THEN {UNDERFLOW_BIN} '
        f'ELSE CAST(floor(ln("{column}") / {math.log(GROWTH)!r}) AS INTEGER) END'
    )


def bin_value(bin_number: int) -> float:
    """What a bin reports: the geometric middle of its bounds (0 for the underflow bin)."""
    if bin_number == UNDERFLOW_BIN:
        return 0.0
    return GROWTH ** (bin_number + 0.5)


def _key_sql(width_micros: int) -> str:
    dims = ", ".join(f'"{name}"' for name in DIMENSION_NAMES)
    return f'epoch_us("timestamp") // {width_micros} * {width_micros} AS t_us, {dims}, {IS_ERROR} AS is_error'


def sums_select(width_micros: int, source: str, where: str) -> str:
    """Rollup rows (t_us, dimensions, is_error, sums) of the raw rows of ``source`` matching ``where``."""
    sums = ", ".join(f"{expression} AS {name}" for name, _, expression in _SUMS)
    return f"SELECT {_key_sql(width_micros)}, {sums} FROM {source} {where} GROUP BY ALL"


def latency_select(width_micros: int, source: str, where: str) -> str:
    """Latency rows (t_us, dimensions, is_error, metric, bin, n) of the raw rows of ``source`` matching ``where``.

    One scan: each row gives one (metric, bin) pair per latency column, NULL bins left out.
    """
    metrics = ", ".join(str(metric) for metric, _ in LATENCY_METRICS)
    bins = ", ".join(bin_sql(column) for _, column in LATENCY_METRICS)
    dims = ", ".join(f'"{name}"' for name in DIMENSION_NAMES)
    pairs = (
        f"SELECT {_key_sql(width_micros)}, unnest([{metrics}]) AS metric, unnest([{bins}]) AS bin FROM {source} {where}"
    )
    return (
        f"SELECT t_us, {dims}, is_error, CAST(metric AS TINYINT) AS metric, bin, count(*) AS n "
        f"FROM ({pairs}) WHERE bin IS NOT NULL GROUP BY ALL"
    )


def fill_statements(level: Level, source: str, where: str) -> tuple[str, str]:
    """Add the rows of ``source`` matching ``where`` to ``level``'s two tables."""
    # Ordered by time so that DuckDB's zone maps let a query skip the buckets outside its window.
    return (
        f"INSERT INTO {level.sums_table} {sums_select(level.width_micros, source, where)} ORDER BY t_us",
        f"INSERT INTO {level.latency_table} {latency_select(level.width_micros, source, where)} ORDER BY t_us",
    )


def merge_statements(coarse: Level, fine: Level) -> tuple[str, str]:
    """Add ``fine``'s rows of the buckets from ``$start`` to before ``$end`` (epoch microseconds) to
    ``coarse``'s two tables, summed into its buckets.

    Every sum and bin count adds up, so this gives what the raw rows of those buckets would, from a
    few rows a minute instead of every request: rolling an hour of 720,000 rows up from the rows read
    them back from the file, in ten times the time and with some 20 MiB more left resident.
    """
    dims = ", ".join(f'fine."{name}"' for name in DIMENSION_NAMES)
    key = f"fine.t_us // {coarse.width_micros} * {coarse.width_micros} AS t_us, {dims}, fine.is_error"
    sums = ", ".join(f'sum(fine."{name}")' for name in SUM_NAMES)
    where = "WHERE fine.t_us >= $start AND fine.t_us < $end GROUP BY ALL ORDER BY 1"
    return (
        f"INSERT INTO {coarse.sums_table} SELECT {key}, {sums} FROM {fine.sums_table} AS fine {where}",
        f"INSERT INTO {coarse.latency_table} SELECT {key}, fine.metric, fine.bin, sum(fine.n) "
        f"FROM {fine.latency_table} AS fine {where}",
    )


def rebuild_statements() -> tuple[str, ...]:
    """For a migration: set each watermark from the clock and roll up every stored row before it."""
    statements: list[str] = []
    for level in LEVELS:
        watermark = f"(epoch_us(now()) - {MARGIN_MICROS}) // {level.width_micros} * {level.width_micros}"
        statements.append(f"DELETE FROM rollup_watermark WHERE level = '{level.name}'")
        statements.append(f"INSERT INTO rollup_watermark VALUES ('{level.name}', {watermark})")
        statements.append(f"DELETE FROM {level.sums_table}")
        statements.append(f"DELETE FROM {level.latency_table}")
        below = (
            f"WHERE epoch_us(\"timestamp\") < (SELECT watermark_us FROM rollup_watermark WHERE level = '{level.name}')"
        )
        statements.extend(fill_statements(level, "access_logs", below))
    return tuple(statements)


def money_statements() -> tuple[str, ...]:
    """For a migration: give the cost sums of every level the scale of :data:`SUM_MONEY`, values kept."""
    return tuple(
        f'ALTER TABLE {level.sums_table} ALTER COLUMN "{name}" SET DATA TYPE {sql_type}'
        for level in LEVELS
        for name, sql_type, _ in _SUMS
        if sql_type == SUM_MONEY
    )


def rollup_tables() -> tuple[str, ...]:
    """Every table that holds rollup rows (not the watermarks)."""
    return tuple(table for level in LEVELS for table in (level.sums_table, level.latency_table))
