"""What a running ccproxy says about itself: Prometheus counters and the log store's status."""

from __future__ import annotations

import time
import urllib.request

from benchlib.processes import get_json


def metric_sum(url: str, family: str) -> float:
    """The sum over all label sets of one metric (``ccproxy_requests_total``) on ``url/metrics``."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    prefix_labelled, prefix_bare = family + "{", family + " "
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((prefix_labelled, prefix_bare))
    )


def requests_counted(url: str) -> int:
    """Proxied requests finished, as counted by the metrics plugin."""
    return int(metric_sum(url, "ccproxy_requests_total"))


def wait_until_recorded(url: str, timeout: float = 60.0) -> dict:
    """Wait until the DuckDB store has written every record the metrics counted; both figures and the verdict.

    ``all_recorded`` holds when the rows in DuckDB equal the requests counted by metrics
    (both count every proxied request once, from the same ``on_request_end``) and none was dropped.
    """
    deadline = time.monotonic() + timeout
    while True:
        status = get_json(url + "/logs/status")
        counted = requests_counted(url)
        if (status["queue_depth"] == 0 and status["row_count"] >= counted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {
        "requests_counted_by_metrics": counted,
        "rows_in_duckdb": status["row_count"],
        "dropped_records": status["dropped_records"],
        "write_errors": status["write_errors"],
        "all_recorded": status["row_count"] == counted and status["dropped_records"] == 0,
    }
