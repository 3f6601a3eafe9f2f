"""How long the metrics plugin's request hooks take per request (prints microseconds)."""

import timeit
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.testing import make_record
from ccproxy_metrics.families import create_families
from ccproxy_metrics.observer import MetricsObserver

NOW = datetime.now(UTC)
RECORD = make_record(
    request_id="r",
    timestamp=NOW,
    user_agent="bench",
    model="claude-haiku-4-5",
    response_model=None,
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
