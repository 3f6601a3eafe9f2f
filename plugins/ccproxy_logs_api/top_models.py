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
    one row with ``model`` :data:`OTHER_GROUP` summing them."""
    if len(rows) <= top:
        return rows
    return [*rows[:top], _summed(rows[top:])]


def _summed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums of ``rows`` in their shape; ``p95_ms`` is ``None``, as percentiles do not add up."""
    return {
        "model": OTHER_GROUP,
        "rest": True,
        "requests": sum(row["requests"] for row in rows),
        "errors": sum(row["errors"] for row in rows),
        "tokens_total": sum(row["tokens_total"] for row in rows),
        "tokens": {part: sum(row["tokens"][part] for row in rows) for part in TOKEN_PARTS},
        "cost_usd": money_sum(row["cost_usd"] for row in rows),
        "unpriced_requests": sum(row["unpriced_requests"] for row in rows),
        "p95_ms": None,
    }
