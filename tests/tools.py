"""Programs from outside Python that some tests need, and how to name the fix when one is missing.

A test says what it needs with ``@pytest.mark.needs_tool("promtool")`` (names are keys of
``TOOLS``); tests that use a fixture of ``FIXTURE_TOOLS`` and tests marked ``browser`` get the
marker without asking. A missing tool skips the test with a line naming the Debian package to
install; under CI (``CI=true``) such a skip fails the run (``tests/conftest.py``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    """One program, under any of its names, and the Debian package that installs it."""

    programs: tuple[str, ...]
    package: str

    def path(self) -> str | None:
        """Where the program is, or ``None``."""
        for program in self.programs:
            if found := shutil.which(program):
                return found
        return None

    def missing_message(self) -> str:
        return (
            f"{self.programs[0]} not found: install the Debian package '{self.package}' "
            "(scripts/install-system-deps.sh)"
        )


TOOLS = {
    "pushgateway": Tool(("prometheus-pushgateway", "pushgateway"), "prometheus-pushgateway"),
    "prometheus": Tool(("prometheus",), "prometheus"),
    "promtool": Tool(("promtool",), "prometheus"),
    "alertmanager": Tool(("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"),
    "clickhouse": Tool(("clickhouse-server",), "clickhouse-server"),
    "chromium": Tool(("chromium",), "chromium"),
    "node": Tool(("node",), "nodejs"),
    "npm": Tool(("npm",), "npm"),
}

FIXTURE_TOOLS = {
    "start_gateway": ("pushgateway",),
    "clickhouse_server": ("clickhouse",),
    "promtool": ("promtool",),
}
"""Fixtures that start a tool: a test using one needs that tool."""


def tool_path(name: str) -> str:
    """The path of tool ``name``; a test that calls this is marked ``needs_tool(name)``, so it exists."""
    path = TOOLS[name].path()
    if path is None:
        raise AssertionError(TOOLS[name].missing_message())
    return path


def missing_tools(names: tuple[str, ...]) -> list[str]:
    """The message of each tool of ``names`` that is not installed."""
    unknown = [name for name in names if name not in TOOLS]
    if unknown:
        raise ValueError(f"needs_tool: unknown tool {unknown}; known: {', '.join(TOOLS)}")
    return [TOOLS[name].missing_message() for name in names if TOOLS[name].path() is None]
