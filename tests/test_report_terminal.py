"""What ``ccproxy key-id`` reads and what ``ccproxy report`` writes to a terminal: bounded input, and
names whose control characters are shown, never obeyed."""

from __future__ import annotations

import os
import subprocess

from rich.console import Console

from ccproxy_core.runtime.report.tables import render

from .test_report import CCPROXY, write_config


def test_key_id_reads_no_more_than_any_key_could_be(tmp_path):
    config = write_config(tmp_path, 1)
    env = {**os.environ, "CCPROXY_CONFIG": str(config)}
    endless = "x" * (1 << 20)  # a mebibyte without a line end; before: read whole (from /dev/zero, without end)
    answer = subprocess.run([CCPROXY, "key-id"], input=endless, capture_output=True, text=True, env=env)
    assert answer.returncode == 2 and "no API key is that long" in answer.stderr and answer.stdout == ""


def test_names_a_table_shows_never_reach_the_terminal_as_its_controls():
    tokens = {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0, "total": 3}
    hostile = "\u202eevil\r\n\x1b[2J\x1b[H cleared"  # as another writer may have stored it
    row = {"key": hostile, "requests": 1, "errors": 0, "cost_usd": 0.5, "unpriced_requests": 0, "tokens": tokens}
    console = Console(width=100, record=True)
    render(console, "project", [row], "Projects")
    shown = console.export_text()
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown
    assert "\\x1b[2J" in shown  # written out, as the record's own escapes are
