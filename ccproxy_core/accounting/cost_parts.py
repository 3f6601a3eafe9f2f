"""A request's cost in parts, and the arithmetic on costs that keeps the parts adding up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

Secrets = Callable[[], Iterable[str]]
"""A request's keys, asked for only when a log line needs them kept out."""


@dataclass(frozen=True, slots=True)
class Cost:
    """A request's cost in USD, whole and in parts that sum exactly to ``total``.

    ``priced`` is False when the model has no known price: every amount is then
    ``None``, never 0, so an unknown cost is not mistaken for a free request.
    """

    total: Decimal | None
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None
    cache_write: Decimal | None
    priced: bool
    tools: Decimal | None = None
    """Server tools billed per use (web searches, file searches)."""


UNPRICED = Cost(None, None, None, None, None, priced=False)


def sum_costs(parts: list[Cost]) -> Cost:
    """The sum of ``parts``, part by part; unpriced if any of them is."""
    if not parts or not all(part.priced for part in parts):
        return UNPRICED

    def summed(name: str) -> Decimal:
        return sum((getattr(part, name) or Decimal(0) for part in parts), Decimal(0))

    return Cost(
        total=summed("total"),
        input=summed("input"),
        output=summed("output"),
        cache_read=summed("cache_read"),
        cache_write=summed("cache_write"),
        priced=True,
        tools=summed("tools"),
    )


def tokens_scaled(cost: Cost, factor: Decimal) -> Cost:
    """``cost`` with its token parts times ``factor``; server tools are billed per use, unchanged."""
    input_part, output, cache_read, cache_write = (
        (amount or Decimal(0)) * factor for amount in (cost.input, cost.output, cost.cache_read, cost.cache_write)
    )
    tools = cost.tools or Decimal(0)
    total = input_part + output + cache_read + cache_write + tools
    return Cost(total, input_part, output, cache_read, cache_write, priced=True, tools=tools)
