"""What plugins cost in CPU per request, measured side by side so the machine's drift cancels.

Two ccproxy processes, one with every plugin off and one with ``--plugins`` on, both pinned to
CPU 1 (the mock provider and the load generators on CPU 0), are loaded at the same time by
two wrk runs. Whatever the machine's speed does during a round, both proxies see it, so the
ratio of their CPU time per request (all threads, from /proc) is steady where separate
throughput runs minutes apart are not. Two passes, each with a fresh pair of proxies, started
in one order and then the other. Prints each round and the median ratios. ``--plugins off``
is the method's control: both proxies alike, the ratio should be 1.

``--against PATH`` measures a change instead: PATH is a checkout of the code before it (``git
worktree add PATH REV``), which the "off" proxy runs, with the same plugins on as the other
(its PYTHONPATH puts PATH first). The ratio is then this code's CPU per request against that
code's, the machine's drift cancelled as above: what a change costs or saves.

The rounds start once the logs API's start-up replay window has closed (a minute after start:
the ring keeps the last thousand records for clients of the previous run, which costs the
proxy with plugins some 2 to 4% more CPU per request while it lasts), so the figure is the
steady state a long-running proxy has; ``--settle 0`` measures from the start instead.

    python benchmarks/bench_side_by_side.py [--plugins all|metrics|duckdb|off] [--rounds 5] [--seconds 8]
                                            [--settle S] [--against PATH] [--output F]

With the proxy on one core, throughput is the inverse of its CPU time per request: a ratio of
1.11 or less is the goal "all plugins on keep 90% of plugins-off throughput".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchlib.machine import describe_machine
from benchlib.processes import PLUGINS_ON, Service, start_mock, start_proxy
from benchlib.wrk import LoadResult, run_wrk, wrk_missing
from ccproxy_logs_api.stream import REPLAY_GRACE_SECONDS

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
    if plugins == "off":  # the method's own control: both proxies alike
        return {}
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


def baseline_settings(plugins: str, folder: Path, against: Path | None) -> dict[str, str]:
    """The "off" proxy's settings: no plugin; or, measuring against other code, that code with the same plugins."""
    if against is None:
        return {}
    folder.mkdir()
    return {**plugin_settings(plugins, folder), "PYTHONPATH": f"{against}{os.pathsep}{against / 'plugins'}"}


def one_pass(
    plugins: str,
    folder: Path,
    mock: Service,
    rounds: int,
    seconds: float,
    on_first: bool,
    settle: float,
    against: Path | None = None,
) -> list[float]:
    """The on/off ratio of each round, for a fresh pair of proxies started in the order given,
    measured from ``settle`` seconds after the second one started."""
    order = ["on", "off"] if on_first else ["off", "on"]
    settings = {
        "off": baseline_settings(plugins, folder / f"baseline-{on_first}", against),
        "on": plugin_settings(plugins, folder / f"on-first-{on_first}"),
    }
    (folder / f"on-first-{on_first}").mkdir()
    started = {name: start_proxy(name, mock, folder, cpus=PROXY_CPU, settings=settings[name]) for name in order}
    proxies = [started["off"], started["on"]]
    settled_at = time.monotonic() + settle
    try:
        load_both(proxies, 2)  # warm-up
        time.sleep(max(0.0, settled_at - time.monotonic()))
        ratios = []
        for round_number in range(1, rounds + 1):
            off, on = load_both(proxies, seconds)
            ratios.append(on / off)
            base = "off" if against is None else "theirs"
            print(
                f"{order[0]} started first, round {round_number}: CPU per request, {base} {off:,.0f} us, on {on:,.0f} us"
            )
    finally:
        for proxy in proxies:
            proxy.stop()
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugins", choices=("all", "metrics", "duckdb", "off"), default="all")
    parser.add_argument("--rounds", type=int, default=5, help="rounds in each of the two passes")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each round")
    parser.add_argument(
        "--settle",
        type=float,
        default=REPLAY_GRACE_SECONDS + 1,
        help="seconds after start-up before the rounds: by default until the start-up replay window has closed",
    )
    parser.add_argument(
        "--against", type=Path, help="a checkout of other code: run it, plugins on, as the proxy the ratio divides by"
    )
    parser.add_argument("--output", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "ccproxy_core").is_dir():
        print(f"--against {args.against}: no ccproxy checkout there (make one with git worktree add PATH REV)")
        return 2
    if wrk_missing():
        return 2
    machine, started_at = describe_machine(), datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ccproxy-side-") as name:
        folder = Path(name)
        mock = start_mock(folder, cpus=LOAD_CPU)
        try:
            # Whichever proxy starts second uses some 2% less CPU per request, for reasons of
            # the machine's: a pass in each order cancels that out.
            ratios = [
                one_pass(args.plugins, folder, mock, args.rounds, args.seconds, on_first, args.settle, args.against)
                for on_first in (False, True)
            ]
        finally:
            mock.stop()
    for on_first, pass_ratios in zip((False, True), ratios, strict=True):
        print(f"  median with {'on' if on_first else 'off'} started first: {statistics.median(pass_ratios):.3f}")
    every = ratios[0] + ratios[1]
    median = statistics.median(every)
    against = f"the code at {args.against}, {args.plugins} on" if args.against else "plugins off"
    print(f"{args.plugins} on / {against}, CPU per request, median of {len(every)}: {median:.3f}")
    if args.output:
        figures = {"plugins": args.plugins, "started_at": started_at, "machine": machine, "seconds": args.seconds}
        figures["settle_seconds"] = args.settle
        figures["against"] = str(args.against) if args.against else None
        figures |= {"ratios_off_first": ratios[0], "ratios_on_first": ratios[1], "median_ratio": median}
        args.output.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
