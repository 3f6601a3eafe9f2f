"""The metric families ccproxy exposes, created in one app's own CollectorRegistry.

Names and label names of the documented families are part of the product:
dashboards and alerts are written against them, so they never change.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# LLM calls often last minutes (long generations, extended thinking), so the buckets
# run from 50 ms to 30 min instead of the client library's web-request defaults. Between
# 0.5 and 20 s, where most answers end, no edge is more than 1.5 times the one before: with
# 2-5-10-20 alone, histogram_quantile read a p95 of 3.1 s as 4.7.
DURATION_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    1.5,
    2,
    3,
    4,
    5,
    7.5,
    10,
    15,
    20,
    30,
    60,
    120,
    180,
    300,
    450,
    600,
    900,
    1200,
    1800,
)
TTFT_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    1.5,
    2,
    3,
    4,
    5,
    7.5,
    10,
    15,
    20,
    30,
    60,
    120,
    300,
    600,
)
# The proxy's own overhead should be a few milliseconds; these buckets show when it is not.
OVERHEAD_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
)

LATENCY_LABELS = ("model", "endpoint", "service_type")


@dataclass(frozen=True, slots=True)
class MetricFamilies:
    """The instrumented families of one app; the collectors for derived ones live in collectors.py."""

    requests: Counter
    response_duration: Histogram
    upstream_duration: Histogram
    time_to_first_token: Histogram
    proxy_overhead: Histogram
    tokens: Counter
    cost: Counter
    unpriced_requests: Counter
    errors: Counter
    errors_after_200: Counter
    active_requests: Gauge
    request_bytes: Counter
    response_bytes: Counter
    ratelimit_limit: Gauge
    ratelimit_remaining: Gauge
    skipped_records: Counter


def create_families(registry: CollectorRegistry, attribution_labels: tuple[str, ...] = ()) -> MetricFamilies:
    """Create every family in ``registry`` (never the process-global default registry).

    ``attribution_labels`` (``project``, ``client``; opt-in) are added, last, to the request,
    token, cost and unpriced-request counters.
    """
    extra = attribution_labels
    return MetricFamilies(
        requests=Counter(
            "ccproxy_requests_total",
            "Proxied LLM requests, by the status the client received.",
            ("method", "endpoint", "model", "status", "service_type", *extra),
            registry=registry,
        ),
        response_duration=Histogram(
            "ccproxy_response_duration_seconds",
            "Time from receiving a proxied request to sending its last byte.",
            LATENCY_LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        upstream_duration=Histogram(
            "ccproxy_upstream_duration_seconds",
            "Time spent waiting on the provider, from sending the request to its last byte.",
            LATENCY_LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        time_to_first_token=Histogram(
            "ccproxy_time_to_first_token_seconds",
            "Streaming requests: time from receiving the request to the stream's first token (text, thinking or a tool call).",
            LATENCY_LABELS,
            buckets=TTFT_BUCKETS,
            registry=registry,
        ),
        proxy_overhead=Histogram(
            "ccproxy_proxy_overhead_seconds",
            "Time ccproxy itself added before the response headers went out.",
            ("endpoint", "service_type"),
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        ),
        tokens=Counter(
            "ccproxy_tokens_total",
            "Tokens used; type is input, output, cache_read or cache_write.",
            ("type", "model", "service_type", *extra),
            registry=registry,
        ),
        cost=Counter(
            "ccproxy_cost_usd_total",
            "Cost in US dollars; summed over cost_type it is the total cost.",
            ("model", "cost_type", "service_type", *extra),
            registry=registry,
        ),
        unpriced_requests=Counter(
            "ccproxy_unpriced_requests_total",
            "Requests whose cost is unknown (no price for the model or tier, no usage in the answer): "
            "ccproxy_cost_usd_total leaves them out.",
            ("model", "service_type", *extra),
            registry=registry,
        ),
        errors=Counter(
            "ccproxy_errors_total",
            "Proxied requests that ended in an error, by error type.",
            ("error_type", "endpoint", "model", "service_type"),
            registry=registry,
        ),
        errors_after_200=Counter(
            "ccproxy_errors_after_200_total",
            "Proxied requests answered with status 200 that still ended in an error (an error event in the stream, "
            "a stream broken off or ended early, an error body), by error type.",
            ("error_type", "service_type"),
            registry=registry,
        ),
        active_requests=Gauge(
            "ccproxy_active_requests",
            "Proxied requests in flight.",
            registry=registry,
        ),
        request_bytes=Counter(
            "ccproxy_request_bytes_total",
            "Bytes of proxied request bodies received from clients.",
            ("service_type",),
            registry=registry,
        ),
        response_bytes=Counter(
            "ccproxy_response_bytes_total",
            "Bytes of proxied response bodies sent to clients.",
            ("service_type",),
            registry=registry,
        ),
        ratelimit_limit=Gauge(
            "ccproxy_ratelimit_limit",
            "The provider's rate limit, from its latest response headers; resource is requests, "
            "tokens, input_tokens or output_tokens.",
            ("service_type", "resource"),
            registry=registry,
        ),
        ratelimit_remaining=Gauge(
            "ccproxy_ratelimit_remaining",
            "What is left of the provider's rate limit, from its latest response headers.",
            ("service_type", "resource"),
            registry=registry,
        ),
        skipped_records=Counter(
            "ccproxy_metrics_skipped_records_total",
            "Access records the metrics could not take (each is logged with its request id).",
            registry=registry,
        ),
    )
