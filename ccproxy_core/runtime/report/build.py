"""The rows of each report, from a source's groups and sessions (no printing here)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ccproxy_core.plugin_host.log_store import Grouping, show_unknown_costs

from .sources import ReportSource

KINDS = ("daily", "weekly", "monthly", "session", "project", "model", "key", "client")
DEFAULT_DAYS = {
    "daily": 30,
    "weekly": 7 * 12,
    "monthly": 366,
    "session": 30,
    "project": 30,
    "model": 30,
    "key": 30,
    "client": 30,
}
_DIMENSION = {"project": "project", "model": "model", "key": "api_key", "client": "client"}


def default_window(kind: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last :data:`DEFAULT_DAYS` of the report's kind, up to now."""
    end = now or datetime.now(UTC)
    return end - timedelta(days=DEFAULT_DAYS[kind]), end


def build_rows(
    source: ReportSource, kind: str, start: datetime, end: datetime, breakdown: str | None, limit: int
) -> list[dict[str, Any]]:
    """The report's rows: ``key``, requests, errors, tokens by type, cost_usd (``None`` when no
    request of the row has a known price), unpriced_requests (and ``breakdown``)."""
    if kind in ("daily", "weekly", "monthly"):
        days = (end - start).days + 2
        daily = source.groups(start, end, Grouping("day", None, days, breakdown))
        rows = daily if kind == "daily" else merge_periods(daily, kind)
    elif kind == "session":
        rows = _session_rows(source, start, end, breakdown, limit)
    else:
        rows = source.groups(start, end, Grouping(_DIMENSION[kind], None, limit, breakdown))
    return show_unknown_costs(rows)


def period_of(day: str, kind: str) -> str:
    """``2025-01-31`` as its ISO week (``2025-W05``) or month (``2025-01``)."""
    if kind == "monthly":
        return day[:7]
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def merge_periods(daily: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Daily groups summed into weeks or months, in date order."""
    periods: dict[str, dict[str, Any]] = {}
    for group in daily:
        key = period_of(group["key"], kind)
        target = periods.setdefault(key, _empty(key, "breakdown" in group))
        _add(target, group)
        for part in group.get("breakdown", []):
            sub = next((s for s in target["breakdown"] if s["key"] == part["key"]), None)
            if sub is None:
                sub = _empty(part["key"], False)
                target["breakdown"].append(sub)
            _add(sub, part)
    for period in periods.values():
        period.get("breakdown", []).sort(key=lambda s: (-s["cost_usd"], -s["requests"]))
        _close_sums([period, *period.get("breakdown", [])])
    return list(periods.values())


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of every row."""
    total = _empty("total", False)
    for row in rows:
        _add(total, row)
    return show_unknown_costs(_close_sums([total]))[0]


def _session_rows(
    source: ReportSource, start: datetime, end: datetime, breakdown: str | None, limit: int
) -> list[dict[str, Any]]:
    sessions = source.sessions(start, end, limit)
    rows = [{**session, "key": session["session_id"]} for session in sessions]
    if breakdown:
        listed = [row["key"] for row in rows]
        parts = {g["key"]: g.get("breakdown", []) for g in source.session_groups(start, end, listed, breakdown)}
        for row in rows:
            row["breakdown"] = parts.get(row["key"], [])
    rest = _other_than(source, start, end, rows, bool(breakdown))
    return [*rows, rest] if rest["requests"] > 0 else rows


def _other_than(
    source: ReportSource, start: datetime, end: datetime, listed: list[dict[str, Any]], with_breakdown: bool
) -> dict[str, Any]:
    """The window's requests outside the ``listed`` sessions (the other sessions and the requests
    without one) as a row keyed ``other``: the whole window, grouped any way, less the listed rows."""
    other = _empty("other", with_breakdown)
    for group in source.groups(start, end, Grouping("model", None, 1, None)):
        _add(other, group)
    for row in listed:
        _add(other, row, sign=-1)
    return _close_sums([other])[0]


def _empty(key: str, with_breakdown: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": key,
        "requests": 0,
        "errors": 0,
        "cost_usd": Decimal(0),  # a sum of money, exact until _close_sums
        "unpriced_requests": 0,
        "tokens": {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "total": 0},
    }
    if with_breakdown:
        row["breakdown"] = []
    return row


def _add(target: dict[str, Any], group: dict[str, Any], sign: int = 1) -> None:
    target["requests"] += sign * group["requests"]
    target["errors"] += sign * group["errors"]
    target["cost_usd"] += sign * _exact(group["cost_usd"])
    target["unpriced_requests"] += sign * group.get("unpriced_requests", 0)
    for part, count in group["tokens"].items():
        target["tokens"][part] += sign * count


def _exact(cost: float | Decimal | None) -> Decimal:
    """A cost as the decimal it stands for (a float's shortest repr); None (no known price) adds nothing."""
    if cost is None:
        return Decimal(0)
    return cost if isinstance(cost, Decimal) else Decimal(repr(float(cost)))


def _close_sums(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn the exact sums of :func:`_add` into the floats every other row carries, rounded once."""
    for row in rows:
        row["cost_usd"] = float(row["cost_usd"])
    return rows
