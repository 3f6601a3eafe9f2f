"""Code, docs and tests speak of the product: no numbers of a tracker readers cannot see."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACKER_REFERENCE = re.compile(r"\bissues? ?#?\d+", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".sh", ".yml", ".yaml", ".html", ".js", ".css", ".in"}


def test_no_file_refers_to_a_tracker_issue_by_number():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / name for name in listed.splitlines() if Path(name).suffix in TEXT_SUFFIXES]
    assert len(files) > 100
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path.is_file()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if TRACKER_REFERENCE.search(line)
    ]
    assert found == [], "\n".join(found)
