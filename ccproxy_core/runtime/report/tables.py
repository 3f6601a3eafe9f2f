"""Report tables for the terminal, drawn with rich; each fits an 80-column terminal.

Numbers are never cut to fit: their columns are as wide as their widest figure, and the name
columns (session, client, project, the first column) give up room, down to a few characters.

Names in a report (sessions, projects, models, clients, keys) are whatever a client sent, so each
is drawn as :class:`rich.text.Text`: rich would read a plain string's ``[...]`` as markup (and
fail on ``[/]``) and its ``:name:`` as an emoji code.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ccproxy_core.safe_values import escaped

from .build import totals

_FIRST_COLUMN = {
    "daily": "Date",
    "weekly": "Week",
    "monthly": "Month",
    "session": "Session",
    "project": "Project",
    "model": "Model",
    "key": "Key",
    "client": "Client",
}
SESSION_ID_CHARS = 14
"""Longer session ids are shown as their start and end: ids made one after another (UUIDv7, a name with a
date or run number) share their start, and their ends tell them apart."""


def compact(count: int) -> str:
    """A token count in at most 7 characters: ``98,765``, ``1.23M``, ``4.56B``."""
    if count < 100_000:
        return f"{count:,}"
    if count < 1_000_000_000:
        return f"{count / 1_000_000:.2f}M"
    if count < 1_000_000_000_000:
        return f"{count / 1_000_000_000:.2f}B"
    if count < 1_000_000_000_000_000:
        return f"{count / 1_000_000_000_000:.2f}T"
    return f"{count:.1e}"


_CENT, _HUNDREDTH_CENT = Decimal("0.01"), Decimal("0.0001")


def money(value: float | None) -> str:
    """Dollars: cents from one cent up, four decimals below, ``<$0.0001`` for less but not nothing;
    ``unknown`` when no request of the row has a known price."""
    if value is None or not math.isfinite(value):
        return "unknown"
    # The number as the API wrote it, rounded half up: the float 0.045 is 0.04499..., which rounds to $0.04.
    amount = Decimal(repr(value))
    if amount >= _CENT or amount == 0:
        return f"${amount.quantize(_CENT, ROUND_HALF_UP):,.2f}"
    return f"${amount.quantize(_HUNDREDTH_CENT, ROUND_HALF_UP):.4f}" if amount >= _HUNDREDTH_CENT else "<$0.0001"


def render(console: Console, kind: str, rows: list[dict[str, Any]], title: str) -> None:
    """Print the report's table, its breakdown lines indented under each row, and a total."""
    lines: list[tuple[list[str | Text], str | None]] = []
    for row in rows:
        summed = kind == "session" and "session_id" not in row  # the "other" row: no one session's columns
        lines.append((_cells(kind, row, _label(kind, row["key"]), bare=summed), None))
        for part in row.get("breakdown", []):
            lines.append((_cells(kind, part, _label(kind, part["key"], part=True), bare=True), "dim"))
    total = totals(rows)
    total_line = _cells(kind, total, Text("Total"), bare=True)
    table = Table(
        title=Text(title), box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False, title_justify="left"
    )
    names = _name_columns(kind)
    numbers = ("Req", "In", "Out") if kind == "session" else ("Requests", "Input", "Output", "Cache rd", "Cache wr")
    number_widths = [
        max(len(name), *(len(str(cells[len(names) + index])) for cells in [total_line, *(c for c, _ in lines)]))
        for index, name in enumerate((*numbers, "Cost"))
    ]
    room = console.width - sum(number_widths) - (len(names) + len(number_widths) - 1)  # a space between columns
    for (name, _, fixed), width in zip(names, _share(room, names), strict=True):
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=None if fixed else width, min_width=width)
    for name, width in zip((*numbers, "Cost"), number_widths, strict=True):
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    for cells, style in lines:
        table.add_row(*cells, style=style)
    table.add_section()
    table.add_row(*total_line, style="bold")
    console.print(table)
    if total.get("unpriced_requests"):
        console.print(
            f"{total['unpriced_requests']:,} of {total['requests']:,} requests have no known cost (errors without"
            " usage, models without a price, OpenAI streams without usage): Cost leaves them out;"
            " --json gives unpriced_requests per row.",
            style="dim",
            overflow="fold",
        )
    if kind == "session":
        console.print(
            "In = input tokens including cache reads and writes; long session ids are shown by their start and"
            " end (--json has them whole).",
            style="dim",
            overflow="fold",
        )


_NARROWEST = 6
"""A name column is never cut below this (the table is then wider than the terminal, its numbers whole)."""


def _name_columns(kind: str) -> list[tuple[str, int, bool]]:
    """(heading, width wanted, fixed) of the columns left of the numbers."""
    if kind != "session":
        return [(_FIRST_COLUMN[kind], 22, False)]
    return [
        ("Session", SESSION_ID_CHARS, False),
        ("Last active", 11, True),
        ("Client", 11, False),
        ("Project", 12, False),
    ]


def _share(room: int, columns: list[tuple[str, int, bool]]) -> list[int]:
    """Each name column's width: what it wants while ``room`` allows, the last ones giving up room first."""
    widths = [wanted for _, wanted, _ in columns]
    for index in reversed(range(len(columns))):
        excess = sum(widths) - room
        if excess <= 0:
            break
        if not columns[index][2]:
            widths[index] = max(_NARROWEST, widths[index] - excess)
    return widths


def _short_id(session: str) -> str:
    """``01a23d1b-2de8-7c41-9d0e-5f6a7b8c9d0e`` as ``01a23d1…8c9d0e``: start and end, within the column."""
    if len(session) <= SESSION_ID_CHARS:
        return session
    return session[:7] + "…" + session[-6:]


def _label(kind: str, key: Any, part: bool = False) -> Text:
    """A row's name, literally: a long session id shortened, a breakdown part's name indented."""
    if key is None or key == "":
        text = "(none)"
    elif kind == "session" and not part:
        text = _short_id(str(key))
    else:
        text = str(key)
    return Text(f"  {escaped(text)}" if part else escaped(text))  # a name is shown, never obeyed by the terminal


def _cells(kind: str, row: dict[str, Any], label: Text, bare: bool = False) -> list[str | Text]:
    """One table row; ``bare`` rows (breakdown parts, the total) leave the session's own columns empty."""
    tokens = row["tokens"]
    cells: list[str | Text] = [label]
    if kind == "session":
        last = row.get("last_seen")
        cells += [
            "" if bare or not last else datetime.fromisoformat(last).strftime("%m-%d %H:%M"),
            Text("" if bare else escaped(str(row.get("client_name") or "-"))),
            Text("" if bare else escaped(str(row.get("project") or "-"))),
        ]
        cells += [
            f"{row['requests']:,}",
            compact(tokens["input"] + tokens["cache_read"] + tokens["cache_write"]),
            compact(tokens["output"]),
        ]
    else:
        cells += [
            f"{row['requests']:,}",
            compact(tokens["input"]),
            compact(tokens["output"]),
            compact(tokens["cache_read"]),
            compact(tokens["cache_write"]),
        ]
    return [*cells, money(row["cost_usd"])]
