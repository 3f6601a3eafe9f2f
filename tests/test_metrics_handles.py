"""The direct handles leave the exposition exactly as prometheus_client's own methods do."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ccproxy_metrics.families import DURATION_BUCKETS, OVERHEAD_BUCKETS, TTFT_BUCKETS
from ccproxy_metrics.handles import CounterHandle, GaugeHandle, HistogramHandle

# Every bound itself, just either side of it, zero, negative, huge, infinite and not a number.
AMOUNTS = [
    *DURATION_BUCKETS,
    *(bound * (1 + 1e-12) for bound in DURATION_BUCKETS),
    *(bound * (1 - 1e-12) for bound in OVERHEAD_BUCKETS),
    *OVERHEAD_BUCKETS,
    0.0,
    -1.5,
    1e300,
    math.inf,
    math.nan,
]


def exposition(registry: CollectorRegistry) -> list[bytes]:
    """The exposition without its ``_created`` timestamps, which differ between any two families."""
    return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]


def families(buckets: tuple[float, ...]) -> tuple[CollectorRegistry, Counter, Gauge, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("c_total", "c", ("a",), registry=registry)
    gauge = Gauge("g", "g", ("a",), registry=registry)
    histogram = Histogram("h_seconds", "h", ("a",), buckets=buckets, registry=registry)
    return registry, counter, gauge, histogram


@pytest.mark.parametrize("buckets", [DURATION_BUCKETS, TTFT_BUCKETS, OVERHEAD_BUCKETS])
def test_handles_expose_what_the_library_methods_expose(buckets):
    by_library, counter_a, gauge_a, histogram_a = families(buckets)
    by_handle, counter_b, gauge_b, histogram_b = families(buckets)
    counter, gauge = CounterHandle(counter_b.labels("x")), GaugeHandle(gauge_b.labels("x"))
    histogram = HistogramHandle(histogram_b.labels("x"))
    for amount in AMOUNTS:
        histogram_a.labels("x").observe(amount)
        histogram.observe(amount)
        if amount >= 0:
            counter_a.labels("x").inc(amount)
            counter.inc(amount)
        gauge_a.labels("x").set(amount)
        gauge.set(amount)
    assert exposition(by_handle) == exposition(by_library)
    assert f'h_seconds_count{{a="x"}} {float(len(AMOUNTS) - 1)}'.encode() in exposition(by_handle)  # NaN: no bucket


def test_a_counter_handle_refuses_a_negative_amount_as_the_library_does():
    _, counter_family, _, _ = families(OVERHEAD_BUCKETS)
    child = counter_family.labels("x")
    with pytest.raises(ValueError, match="non-negative"):
        child.inc(-1)
    with pytest.raises(ValueError, match="non-negative"):
        CounterHandle(child).inc(-1)
    assert child._value.get() == 0
