"""How long the metrics plugin's request hooks take per request (prints microseconds)."""

import timeit
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_metrics.families import create_families
from ccproxy_metrics.observer import MetricsObserver

NOW = datetime.now(UTC)
RECORD = AccessRecord(
    request_id="r",
    timestamp=NOW,
    method="POST",
    endpoint="/v1/messages",
    path="/v1/messages",
    query="",
    client_ip="127.0.0.1",
    user_agent="bench",
    service_type="anthropic",
    model="claude-haiku-4-5",
    streaming=True,
    status_code=200,
    duration_ms=1500.0,
    duration_seconds=1.5,
    tokens_input=100,
    tokens_output=40,
    cache_read_tokens=30,
    cache_write_tokens=20,
    cost_usd=Decimal("0.00136"),
    cost_sdk_usd=None,
    ttft_ms=250.0,
    upstream_status=200,
    upstream_duration_ms=1400.0,
    proxy_overhead_ms=2.0,
    cost_input_usd=Decimal("0.0003"),
    cost_output_usd=Decimal("0.0006"),
    cost_cache_read_usd=Decimal("0.00001"),
    cost_cache_write_usd=Decimal("0.00045"),
    priced=True,
    request_bytes=512,
    response_bytes=4096,
    rate_limits={
        "requests_limit": 4000.0,
        "requests_remaining": 3999.0,
        "tokens_limit": 2e6,
        "tokens_remaining": 1.9e6,
    },
)
CONTEXT = RequestContext(
    request_id="r",
    method="POST",
    path="/v1/messages",
    endpoint="/v1/messages",
    query="",
    client_ip=None,
    user_agent=None,
    service_type="anthropic",
    model="claude-haiku-4-5",
    streaming=True,
    started_at=NOW,
    started_monotonic=0.0,
)


def main() -> None:
    observer = MetricsObserver(create_families(CollectorRegistry()), model_label_cap=100)

    def start_and_end() -> None:
        observer.on_request_start(context=CONTEXT)
        observer.on_request_end(context=CONTEXT, record=RECORD)

    runs = 50_000
    best = min(timeit.repeat(start_and_end, number=runs, repeat=5)) / runs
    print(f"metrics hooks (on_request_start + on_request_end), streamed request, every family: {best * 1e6:.1f} us")


if __name__ == "__main__":
    main()
