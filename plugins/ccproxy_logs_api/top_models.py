"""``by_model`` of GET /logs/analytics: the models with most requests, and one ``other`` row for the rest.

Clients name the model, so a store knows as many models as were ever sent; the answer (and the
dashboard, which shows every row of it) stays small whatever they sent, and its rows still add
up to the window's totals.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core.plugin_host.log_store import OTHER_GROUP, TOP_GROUPS, money_sum

TOKEN_PARTS = ("input", "output", "cache_read", "cache_write", "total")


def top_models(rows: list[dict[str, Any]], top: int = TOP_GROUPS) -> list[dict[str, Any]]:
    """The first ``top`` of a store's ``by_model`` rows (most requests first) and, when more follow,
    one row with ``model`` :data:`OTHER_GROUP` summing them. A row the store summed itself (``"rest"``) is
    part of that one row, wherever the store put it."""
    models = [row for row in rows if not row.get("rest")]
    rest = models[top:] + [row for row in rows if row.get("rest")]
    if not rest:
        return models
    return [*models[:top], _summed(rest)]


def _summed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums of ``rows`` in their shape (a count a store left out read as zero); ``p95_ms`` is ``None``, as
    percentiles do not add up."""
    return {
        "model": OTHER_GROUP,
        "rest": True,
        "requests": _sum(rows, "requests"),
        "errors": _sum(rows, "errors"),
        "tokens_total": _sum(rows, "tokens_total"),
        "tokens": {part: sum((row.get("tokens") or {}).get(part) or 0 for row in rows) for part in TOKEN_PARTS},
        "cost_usd": money_sum(row.get("cost_usd") for row in rows),
        "unpriced_requests": _sum(rows, "unpriced_requests"),
        "p95_ms": None,
    }


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(row.get(key) or 0 for row in rows)
