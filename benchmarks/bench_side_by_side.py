"""What plugins cost in CPU per request, measured side by side so the machine's drift cancels.

Two ccproxy processes, one with every plugin off and one with ``--plugins`` on, both pinned to
CPU 1 (the mock provider and the load generators on CPU 0), are loaded at the same time by
two wrk runs. Whatever the machine's speed does during a round, both proxies see it, so the
ratio of their CPU time per request (all threads, from /proc) is steady where separate
throughput runs minutes apart are not. Prints each round and the median ratio.

    python benchmarks/bench_side_by_side.py [--plugins all|metrics|duckdb] [--rounds 5] [--seconds 8]

With the proxy on one core, throughput is the inverse of its CPU time per request: a ratio of
1.11 or less is the goal "all plugins on keep 90% of plugins-off throughput".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from benchlib.processes import PLUGINS_ON, Service, start_mock, start_proxy
from benchlib.wrk import LoadResult, run_wrk

PROXY_CPU, LOAD_CPU = "1", "0"


def plugin_settings(plugins: str, folder: Path) -> dict[str, str]:
    """The settings of the proxy with plugins: every built-in one, or metrics or DuckDB collection alone."""
    duckdb = {
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__LOG_STORAGE_BACKEND": "duckdb",
        "OBSERVABILITY__DUCKDB_PATH": str(folder / "side.duckdb"),
    }
    if plugins == "metrics":
        return {"OBSERVABILITY__METRICS_ENDPOINT_ENABLED": "true"}
    if plugins == "duckdb":
        return duckdb
    return {**PLUGINS_ON, **duckdb}


def load_both(proxies: list[Service], seconds: float) -> list[float]:
    """Load every proxy at once for ``seconds``; each one's CPU microseconds per request."""
    results: dict[int, LoadResult] = {}
    before = [proxy.cpu_seconds() for proxy in proxies]

    def load(index: int) -> None:
        url = proxies[index].url + "/v1/messages"
        results[index] = run_wrk(url, 16, seconds, False, cpus=LOAD_CPU)

    threads = [threading.Thread(target=load, args=(index,)) for index in range(len(proxies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [
        (proxy.cpu_seconds() - spent) * 1e6 / results[index].requests
        for index, (proxy, spent) in enumerate(zip(proxies, before, strict=True))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugins", choices=("all", "metrics", "duckdb"), default="all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccproxy-side-") as name:
        folder = Path(name)
        mock = start_mock(folder, cpus=LOAD_CPU)
        proxies = [
            start_proxy("off", mock, folder, cpus=PROXY_CPU),
            start_proxy("on", mock, folder, cpus=PROXY_CPU, settings=plugin_settings(args.plugins, folder)),
        ]
        try:
            load_both(proxies, 2)  # warm-up
            ratios = []
            for round_number in range(1, args.rounds + 1):
                off, on = load_both(proxies, args.seconds)
                ratios.append(on / off)
                print(
                    f"round {round_number}: CPU per request, plugins off {off:,.0f} us, {args.plugins} on {on:,.0f} us"
                )
        finally:
            for service in (*proxies, mock):
                service.stop()
    print(f"{args.plugins} on / plugins off, CPU per request, median of {args.rounds}: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
