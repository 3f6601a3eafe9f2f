"""The rows `make bench` generates fit the access_logs table as the schema stands.

bench_storage.py and bench_analytics.py fill DuckDB files with SQL of their own; when the
table gained columns, that SQL stopped fitting and `make bench` failed before measuring.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ccproxy_duckdb.database import Database

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_generated_rows_fill_the_current_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    fill_sql = importlib.import_module("bench_storage").FILL_SQL

    database = Database.open(str(tmp_path / "bench.duckdb"))
    cursor = database.cursor()
    try:
        cursor.execute(fill_sql, {"end": datetime.now(UTC), "rows": 100, "step": 1_000_000})
        row = cursor.execute(
            "SELECT count(*), count(DISTINCT model), sum(cost_usd), max(request_id) FROM access_logs"
        ).fetchone()
    finally:
        cursor.close()
        database.close()
    assert row is not None
    rows, models, cost, newest_id = row
    assert rows == 100
    assert models == 6
    assert isinstance(cost, Decimal) and cost > 0
    assert newest_id == "bench-0000000099"
