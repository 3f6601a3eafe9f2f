"""The stable surface plugin authors import: ``ccproxy_core``'s ``__all__``, documented, used by the example and the guide."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ccproxy_core
from ccproxy_clickhouse.rows import record_to_row
from ccproxy_core.testing import make_record
from tests.duckdb_records import open_store, write_all

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
PUBLIC_MODULES = {"ccproxy_core", "ccproxy_core.testing", "ccproxy_core.testing.pytest_plugin"}


def test_every_public_name_exists_and_is_in_the_guides_table():
    surface = GUIDE.split("## The stable surface", 1)[1].split("\n## ", 1)[0]
    for name in ccproxy_core.__all__:
        assert hasattr(ccproxy_core, name), name
        assert f"`{name}`" in surface, f"{name} is exported but not documented in docs/plugins.md"
    documented = set(re.findall(r"^\| (.+?) \|", surface, flags=re.M)) - {"name", "---"}
    named = {n.strip("` ") for cell in documented for n in cell.replace(",", " ").split() if n.startswith("`")}
    assert named <= set(ccproxy_core.__all__), named - set(ccproxy_core.__all__)


def _ccproxy_imports(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ccproxy_core"):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names if alias.name.startswith("ccproxy_core")}
    return modules


def test_the_example_plugin_imports_only_the_stable_surface():
    files = sorted((ROOT / "examples" / "ccproxy-jsonl").rglob("*.py"))
    assert files
    for path in files:
        assert _ccproxy_imports(path.read_text()) <= PUBLIC_MODULES, path


def test_the_guide_imports_only_the_stable_surface():
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", GUIDE, flags=re.S)
    assert blocks
    used = set().union(*(_ccproxy_imports(block) for block in blocks))
    assert "ccproxy_core" in used and used <= PUBLIC_MODULES, used - PUBLIC_MODULES


def test_make_record_is_a_consistent_priced_record_with_overrides():
    first, second = make_record(), make_record(status_code=529, error_type="overloaded_error", tokens_output=None)
    assert first.request_id != second.request_id and first.priced
    parts = (first.cost_input_usd, first.cost_output_usd, first.cost_cache_read_usd, first.cost_cache_write_usd)
    assert sum(parts) == first.cost_usd
    assert (second.status_code, second.error_type, second.tokens_output) == (529, "overloaded_error", None)
    assert first.timestamp.tzinfo is not None and first.duration_seconds * 1000 == first.duration_ms
    with pytest.raises(TypeError, match="no_such_field"):
        make_record(no_such_field=1)


def test_stores_accept_what_make_record_builds(tmp_path):
    record = make_record()
    assert len(record_to_row(record, "instance-1", 0)) > 20  # the ClickHouse writer's checks pass
    store = open_store(tmp_path)
    try:
        write_all(store, [record])
        assert store.stats()["write_errors"] == 0
    finally:
        store.close()
