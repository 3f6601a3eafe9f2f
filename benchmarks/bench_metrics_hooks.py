"""How long the metrics plugin's request hooks take per request (prints microseconds of CPU).

Each record is counted either at once, in its own ``on_request_end``, or put aside and
counted with the others every ``CATCH_UP_EVERY`` records, as the plugin does. Both are
timed back to back, where every object the metrics touch stays in the CPU's caches, and
with a request's worth of other work in between (reading a few thousand objects spread
over some 100 MB), as in a running proxy.
"""

import random
import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.testing import make_record
from ccproxy_metrics.observer import CATCH_UP_EVERY, MetricsObserver

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


REQUESTS = 20 * CATCH_UP_EVERY
OTHER_WORK = [{"value": n, "text": str(n)} for n in range(300_000)]


def other_work(rng: random.Random, reads: int) -> int:
    """What the rest of a request does to the caches: read objects scattered over the heap."""
    return sum(OTHER_WORK[index]["value"] for index in rng.sample(range(len(OTHER_WORK)), reads))


def cpu_per_request(at_once: bool, reads: int) -> float:
    """Microseconds of CPU in the hooks alone, per request, best of 5 rounds."""
    observer = MetricsObserver.in_registry(CollectorRegistry(), model_label_cap=100)
    rng = random.Random(1)
    best = float("inf")
    for _ in range(5):
        spent = 0
        for _ in range(REQUESTS):
            if reads:
                other_work(rng, reads)
            started = time.thread_time_ns()
            observer.on_request_start(context=CONTEXT)
            observer.on_request_end(context=CONTEXT, record=RECORD)
            if at_once:
                observer.catch_up()
            spent += time.thread_time_ns() - started
        best = min(best, spent / REQUESTS / 1000)
    return best


def main() -> None:
    print(f"metrics hooks (on_request_start + on_request_end), streamed request, every family, {REQUESTS} requests:")
    for label, reads in (("back to back", 0), ("other work between", 3000)):
        at_once, put_aside = cpu_per_request(True, reads), cpu_per_request(False, reads)
        print(
            f"  {label:20} counted at once {at_once:6.1f} us   put aside, counted {CATCH_UP_EVERY} together {put_aside:6.1f} us"
        )


if __name__ == "__main__":
    main()
