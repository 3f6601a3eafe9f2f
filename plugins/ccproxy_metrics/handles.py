"""Direct handles on prometheus_client's labelled children, for counting finished requests.

A child's ``inc``, ``set`` and ``observe`` check on every call what always holds for
ccproxy's calls (the family is labelled, no exemplar is given), take a lock per value, and a
histogram tests its buckets one by one. A handle changes the very floats the exposition
reads, with one binary search per observation and no lock: the observer is the only writer of
its families and counts in one thread at a time (its counting lock), and reading a float
while it is replaced is safe in Python. A lock costs some 0.4 µs on a small VM, and a record
takes some twenty updates: without them, counting a record takes half the time
(``benchmarks/bench_metrics_hooks.py``).

It reads prometheus_client's value attributes (``_value``, ``_sum``, ``_buckets``,
``_upper_bounds``); the version is pinned in constraints.txt, and
tests/test_metrics_handles.py checks the exposition against the library's own methods.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any


class CounterHandle:
    """``inc`` of one counter child."""

    __slots__ = ("_value",)

    def __init__(self, child: Any) -> None:
        self._value = child._value

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``; a negative amount raises ``ValueError``, as the library does."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._value._value += amount


class GaugeHandle:
    """``set`` of one gauge child."""

    __slots__ = ("_value",)

    def __init__(self, child: Any) -> None:
        self._value = child._value

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        self._value._value = float(value)


class HistogramHandle:
    """``observe`` of one histogram child."""

    __slots__ = ("_sum", "_buckets", "_bounds")

    def __init__(self, child: Any) -> None:
        self._sum = child._sum
        self._buckets = child._buckets
        self._bounds = child._upper_bounds  # ascending, the last one +Inf

    def observe(self, amount: float) -> None:
        """Add ``amount`` to the sum and count it in the first bucket whose bound is at least it."""
        self._sum._value += amount
        index = bisect_left(self._bounds, amount)
        if amount <= self._bounds[index]:  # false only for NaN, which the library counts in no bucket
            self._buckets[index]._value += 1
