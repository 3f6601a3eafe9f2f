"""Turns each proxied request into metric updates.

One :class:`MetricsObserver` per app; the plugin's request hooks find it through the
``ccproxy`` handle they are given.

The request path only counts the request in and out of flight and puts its record aside; the
records put aside are counted together, every :data:`CATCH_UP_EVERY` records and whenever
the registry is collected (a scrape, a push), so every reader sees every finished request.
Counting a record among others costs a third of counting it between two requests, whose
work has pushed the metrics' objects out of the CPU's caches (benchmarks/bench_metrics_hooks.py).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_metrics.families import MetricFamilies, create_families
from ccproxy_metrics.handles import CounterHandle, GaugeHandle, HistogramHandle
from ccproxy_metrics.labels import CappedCombination, CappedLabel, method_label, split_rate_limit_key

# error_type comes partly from provider error bodies; bound it like the model label.
ERROR_TYPE_LABEL_CAP = 50
_skip_log = RateLimitedLog(logging.getLogger("ccproxy.metrics"), level=logging.ERROR)
_ATTRIBUTION_FIELDS = {"project": "project", "client": "client_name"}
CATCH_UP_EVERY = 64
"""Finished records put aside before the request path counts them: the most that wait for a scrape."""


BUDGET_REFUSAL = "budget_exceeded"
"""A budget's refusal (429) of a request the provider never saw. The shipped alert rules take these
out of the 429s; their series is made, at 0, with the first series of 429s of its labels, since
``rate()`` misses the increments a series shows in its first scrape: refusals in a new series
beside 429s in an older one would count as the provider's 429s for a whole window (a budget spent
paged as a rate-limit storm)."""


class _Children:
    """A family's labelled children, cached by label tuple, each as a direct handle.

    ``family.labels(...)`` validates and locks on every call; a dict lookup is a few
    times cheaper, and the set of keys is bounded because every label value is.
    """

    __slots__ = ("_family", "_handle", "_cache")

    def __init__(self, family: MetricWrapperBase, handle: Callable[[Any], Any]) -> None:
        self._family = family
        self._handle = handle
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = self._handle(self._family.labels(*labels))
        return child


class _Series:
    """Every handle the records of one label combination count into, found with one dict lookup instead of
    one per family; each is taken from its family's :class:`_Children` on first use, when the family's
    ``labels()`` made it before (a child is a series in the exposition: none is made sooner)."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make

    def __getattr__(self, name: str) -> Any:  # only for a handle not taken yet
        if name.startswith("_"):
            raise AttributeError(name)
        handle = self._make(name)
        setattr(self, name, handle)
        return handle


class MetricsObserver:
    """Updates one app's metrics from its requests."""

    def __init__(
        self, families: MetricFamilies, model_label_cap: int, attribution_labels: tuple[str, ...] = ()
    ) -> None:
        self.families = families
        self.model_label = CappedLabel(model_label_cap)
        # Opt-in project/client labels, each capped like the model label, and so are their
        # combinations; never session or user.
        self._attribution = tuple(
            (_ATTRIBUTION_FIELDS[name], CappedLabel(model_label_cap)) for name in attribution_labels
        )
        self._attribution_combination = CappedCombination(model_label_cap)
        # Budget refusals keep their own label past the cap: the alert rules take them out by it.
        self.error_type_label = CappedLabel(ERROR_TYPE_LABEL_CAP, always=(BUDGET_REFUSAL,))
        self._in_flight: set[int] = set()
        """The contexts (by ``id``) of requests started and not ended: kept here, not in the context's ``state``,
        which other plugins may clear; ``ccproxy_active_requests`` reads their number when collected."""
        families.active_requests.set_function(lambda: self.in_flight)
        self._requests = _Children(families.requests, CounterHandle)
        self._response_duration = _Children(families.response_duration, HistogramHandle)
        self._upstream_duration = _Children(families.upstream_duration, HistogramHandle)
        self._time_to_first_token = _Children(families.time_to_first_token, HistogramHandle)
        self._proxy_overhead = _Children(families.proxy_overhead, HistogramHandle)
        self._tokens = _Children(families.tokens, CounterHandle)
        self._cost = _Children(families.cost, CounterHandle)
        self._unpriced = _Children(families.unpriced_requests, CounterHandle)
        self._errors = _Children(families.errors, CounterHandle)
        self._errors_after_200 = _Children(families.errors_after_200, CounterHandle)
        self._request_bytes = _Children(families.request_bytes, CounterHandle)
        self._response_bytes = _Children(families.response_bytes, CounterHandle)
        self._ratelimit = {
            "limit": _Children(families.ratelimit_limit, GaugeHandle),
            "remaining": _Children(families.ratelimit_remaining, GaugeHandle),
        }
        self._series: dict[tuple[Any, ...], _Series] = {}
        self._rate_limit_keys: dict[str, tuple[str, str] | None] = {}
        self._latest_rate_limits: dict[str, dict[str, float]] = {}  # by service, over the records being counted
        self._waiting: deque[AccessRecord] = deque()
        self._counting = threading.Lock()  # one thread counts at a time: the loop, or a scrape's
        self.skipped_records = 0
        """Records the metrics could not take (each logged, rate-limited, with its request id)."""

    @classmethod
    def in_registry(
        cls, registry: CollectorRegistry, model_label_cap: int, attribution_labels: tuple[str, ...] = ()
    ) -> MetricsObserver:
        """Every family created in ``registry``, and an observer counting into them that each
        collection of ``registry`` brings up to date."""
        catch_up = CatchUpCollector()
        registry.register(catch_up)  # first: a registry is collected in the order its collectors came
        families = create_families(registry, attribution_labels)
        catch_up.observer = cls(families, model_label_cap, attribution_labels)
        return catch_up.observer

    def on_request_start(self, context: RequestContext) -> None:
        """Count the request as in flight."""
        self._in_flight.add(id(context))  # the context lives until its end: its id is no other's meanwhile

    def on_request_end(self, context: RequestContext, record: AccessRecord) -> None:
        """Take the request out of flight, and put its record aside to be counted."""
        self._in_flight.discard(id(context))  # only what on_request_start added: the gauge never goes negative
        self._waiting.append(record)
        if len(self._waiting) >= CATCH_UP_EVERY:
            self.catch_up(wait=False)

    @property
    def in_flight(self) -> int:
        """Requests started and not ended."""
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        """Finished records put aside and not counted yet."""
        return len(self._waiting)

    def catch_up(self, wait: bool = True) -> None:
        """Count every record put aside. From a scrape, ``wait`` for a count under way in another thread;
        the request path does not wait (that count takes its records too)."""
        if not self._counting.acquire(blocking=wait):
            return
        try:
            while self._waiting:
                self._count(self._waiting.popleft())
            self._set_rate_limits()
        finally:
            self._counting.release()

    def _count(self, record: AccessRecord) -> None:
        try:
            self.observe(record)
        except Exception:  # noqa: BLE001 - one bad record must not cost the metrics of the others
            self.skipped_records += 1
            self.families.skipped_records.inc()
            _skip_log.log("metrics skipped access record %s", record.request_id, exc_info=True)

    def observe(self, record: AccessRecord) -> None:
        """Add one finished request to the counters and histograms; its rate limits wait for the
        end of the catch-up, which sets each gauge once, to its latest value."""
        model = self.model_label(record.model)
        endpoint = record.endpoint
        service = record.service_type
        extra = self._attribution_labels(record) if self._attribution else ()
        key = (method_label(record.method), endpoint, model, record.status_code, service, extra)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(functools.partial(self._handle, key))
            if record.status_code == 429:
                self._errors(self.error_type_label(BUDGET_REFUSAL), endpoint, model, service)  # made at 0
        series.requests.inc()
        if record.error_type is not None:
            error_type = self.error_type_label(record.error_type)
            self._errors(error_type, endpoint, model, service).inc()
            if record.status_code == 200:  # the client was told it worked
                self._errors_after_200(error_type, service).inc()
        self._observe_latency(record, series)
        self._observe_usage(record, series)
        if record.rate_limits:
            # Gauges: only each header's latest value counts, so they are set once per catch-up.
            latest = self._latest_rate_limits.get(service)
            if latest is None:
                latest = self._latest_rate_limits[service] = {}
            latest.update(record.rate_limits)

    def _handle(self, key: tuple[Any, ...], name: str) -> Any:
        """The handle called ``name`` of the series of ``key`` (see :meth:`observe`), from its family's children."""
        method, endpoint, model, status_code, service, extra = key
        if name == "requests":
            return self._requests(method, endpoint, model, str(status_code), service, *extra)
        if name in _BY_MODEL_ENDPOINT:
            return _BY_MODEL_ENDPOINT[name](self)(model, endpoint, service)
        if name == "proxy_overhead":
            return self._proxy_overhead(endpoint, service)
        kind = name.partition("_")[2]
        if name.startswith("tokens_"):
            return self._tokens(kind, model, service, *extra)
        if name.startswith("cost_"):
            return self._cost(model, kind, service, *extra)
        if name == "unpriced":
            return self._unpriced(model, service, *extra)
        return (self._request_bytes if name == "request_bytes" else self._response_bytes)(service)

    def _attribution_labels(self, record: AccessRecord) -> tuple[str, ...]:
        return self._attribution_combination(tuple(label(getattr(record, name)) for name, label in self._attribution))

    @staticmethod
    def _observe_latency(record: AccessRecord, series: _Series) -> None:
        series.response_duration.observe(record.duration_seconds)
        if record.upstream_duration_ms is not None:
            series.upstream_duration.observe(record.upstream_duration_ms / 1000)
        if record.streaming and record.ttft_ms is not None:
            series.time_to_first_token.observe(record.ttft_ms / 1000)
        if record.proxy_overhead_ms is not None:
            series.proxy_overhead.observe(record.proxy_overhead_ms / 1000)

    @staticmethod
    def _observe_usage(record: AccessRecord, series: _Series) -> None:
        if record.tokens_input:
            series.tokens_input.inc(record.tokens_input)
        if record.tokens_output:
            series.tokens_output.inc(record.tokens_output)
        if record.cache_read_tokens:
            series.tokens_cache_read.inc(record.cache_read_tokens)
        if record.cache_write_tokens:
            series.tokens_cache_write.inc(record.cache_write_tokens)
        if not record.priced:
            series.unpriced.inc()
        # Decimal zero and None are both skipped: neither adds to the total.
        if record.cost_input_usd:
            series.cost_input.inc(float(record.cost_input_usd))
        if record.cost_output_usd:
            series.cost_output.inc(float(record.cost_output_usd))
        if record.cost_cache_read_usd:
            series.cost_cache_read.inc(float(record.cost_cache_read_usd))
        if record.cost_cache_write_usd:
            series.cost_cache_write.inc(float(record.cost_cache_write_usd))
        if record.cost_tools_usd:
            series.cost_tools.inc(float(record.cost_tools_usd))
        if record.request_bytes:
            series.request_bytes.inc(record.request_bytes)
        if record.response_bytes:
            series.response_bytes.inc(record.response_bytes)

    def _set_rate_limits(self) -> None:
        """Set the rate-limit gauges to the latest values of the records just counted; a value that
        is not a number is skipped alone (records from the proxy never have one: they are made safe)."""
        latest_by_service, self._latest_rate_limits = self._latest_rate_limits, {}
        for service, latest in latest_by_service.items():
            for key, value in latest.items():
                try:
                    self._set_rate_limit(service, key, value)
                except (TypeError, ValueError, OverflowError):
                    _skip_log.log("metrics skipped rate limit %r=%r of %s: not a number", key, value, service)

    def _set_rate_limit(self, service: str, key: str, value: float) -> None:
        try:
            parsed = self._rate_limit_keys[key]
        except KeyError:
            parsed = self._rate_limit_keys[key] = split_rate_limit_key(key)
        if parsed is not None:
            resource, kind = parsed
            self._ratelimit[kind](service, resource).set(value)


_BY_MODEL_ENDPOINT: dict[str, Callable[[MetricsObserver], _Children]] = {
    "response_duration": lambda observer: observer._response_duration,
    "upstream_duration": lambda observer: observer._upstream_duration,
    "time_to_first_token": lambda observer: observer._time_to_first_token,
}


class CatchUpCollector:
    """Registered first in the app's registry: whoever collects it (a scrape, a push, a test)
    gets every finished request counted before the families are read. It yields nothing."""

    def __init__(self) -> None:
        self.observer: MetricsObserver | None = None

    def describe(self) -> list[Any]:
        """No families of its own."""
        return []

    def collect(self) -> Iterator[Any]:
        """Count what waits, then yield nothing."""
        if self.observer is not None:
            self.observer.catch_up()
        return iter(())
