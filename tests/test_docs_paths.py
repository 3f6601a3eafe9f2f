"""Every repository path the README and docs/ name in backticks exists, so a moved module cannot leave them stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_FOLDERS = "ccproxy_core|plugins|deploy|tests|benchmarks|scripts|examples|docs|build_support"
NAMED_PATH = re.compile(rf"`((?:{TOP_FOLDERS})/[A-Za-z0-9_./-]+)")
BUILT = {"plugins/ccproxy_dashboard/static"}
"""Made by the dashboard build (``make``), not kept in the repository."""


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_named_path_exists(document):
    named = {match.group(1).rstrip("/") for match in NAMED_PATH.finditer(document.read_text())}
    missing = sorted(path for path in named - BUILT if not (ROOT / path).exists())
    assert not missing, f"{document.name} names paths that do not exist: {missing}"
