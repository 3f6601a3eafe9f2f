"""ccproxy's added cost: the mock upstream direct against the same through ccproxy, in one run.

    python benchmarks/bench_proxy.py            # the full matrix, a few minutes; writes results/latest.json
    python benchmarks/bench_proxy.py --quick    # concurrency 1 and 64, short runs; writes results/quick.json

Three targets are measured cell by cell, one after the other, so the machine's noise falls on
all three alike: the mock upstream direct, ccproxy with every plugin off, and ccproxy with
metrics, DuckDB collection (a file in a temporary folder), the logs API and the dashboard on.
Each is a separate process (``ccproxy mock-upstream``, ``ccproxy serve``). On a machine with
two or more CPUs the proxies are pinned to CPU 1 and the mock and the load generators to CPU 0
(``taskset``), so a proxy never competes with the process measuring it.

Cells: JSON answers and streamed answers (20 deltas, sent as fast as the mock can), at each
concurrency (kept-alive connections). wrk measures throughput and total latency. wrk cannot see
the time to first byte, so for streams ``benchlib/ttfb_client.py`` (aiohttp) runs the same
cell again; the table "wrk vs client" shows the two agree on total latency. A last run holds 64
paced streams open (the mock waits 25 ms before each delta, like a model producing tokens):
the TTFB ccproxy adds when it is not saturated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import report
from benchlib.machine import describe_machine
from benchlib.observe import wait_until_recorded
from benchlib.processes import Service, pinned, plugins_on_settings, start_mock, start_proxy
from benchlib.wrk import LoadResult, run_wrk, wrk_missing

RESULTS = Path(__file__).resolve().parent / "results"
TTFB_CLIENT = Path(__file__).resolve().parent / "benchlib" / "ttfb_client.py"
TARGETS = ("direct", "off", "on")
PACED_CONCURRENCY = 64
PACED_DELTA_INTERVAL_MS = 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="concurrency 1 and 64, 2-second runs (about a minute)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=None, help="default: 1 16 64 256")
    parser.add_argument("--seconds", type=float, default=None, help="length of each run (default 5, quick 2)")
    parser.add_argument(
        "--paced-seconds", type=float, default=None, help="length of each paced-stream run (default 20, quick 6)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell and target; the median (by req/s) is kept")
    parser.add_argument("--modes", nargs="+", choices=("json", "stream"), default=["json", "stream"])
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--access-log",
        choices=("on", "off"),
        default="off",
        help="LOGGING__ACCESS_LOG of both proxies (default off: the figures are the proxy's and its plugins' own)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results file (default results/latest.json, quick: results/quick.json)",
    )
    args = parser.parse_args()
    args.concurrency = args.concurrency or ([1, 64] if args.quick else [1, 16, 64, 256])
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.paced_seconds = args.paced_seconds or (6.0 if args.quick else 20.0)
    args.output = args.output or RESULTS / ("quick.json" if args.quick else "latest.json")
    return args


class Bench:
    """The three targets and how to load them."""

    def __init__(self, services: dict[str, Service], load_cpus: str | None, seconds: float, repeat: int) -> None:
        self.services, self.load_cpus, self.seconds, self.repeat = services, load_cpus, seconds, repeat

    def with_wrk(self, stream: bool, concurrency: int) -> dict[str, LoadResult]:
        runs: dict[str, list[LoadResult]] = {target: [] for target in TARGETS}
        for _ in range(self.repeat):
            for target in TARGETS:
                runs[target].append(
                    self._timed(
                        target,
                        lambda target=target: run_wrk(
                            self.messages_url(target), concurrency, self.seconds, stream, cpus=self.load_cpus
                        ),
                    )
                )
        return {target: _median_run(results) for target, results in runs.items()}

    def with_client(
        self, concurrency: int, seconds: float, delta_interval_ms: int | None = None
    ) -> dict[str, LoadResult]:
        runs: dict[str, list[LoadResult]] = {target: [] for target in TARGETS}
        for _ in range(self.repeat):
            for target in TARGETS:
                runs[target].append(self._client_run(target, concurrency, seconds, delta_interval_ms))
        return {target: _median_run(results) for target, results in runs.items()}

    def messages_url(self, target: str) -> str:
        return self.services[target].url + "/v1/messages"

    def _timed(self, target: str, run: Callable[[], LoadResult]) -> LoadResult:
        """``run()``, with the CPU time the target's server spent per request during it."""
        server = self.services[target]
        before = server.cpu_seconds()
        result = run()
        spent = server.cpu_seconds() - before
        return dataclasses.replace(
            result, server_cpu_us_per_request=spent * 1e6 / result.requests if result.requests else None
        )

    def _client_run(self, target: str, concurrency: int, seconds: float, delta_interval_ms: int | None) -> LoadResult:
        command = [
            sys.executable,
            str(TTFB_CLIENT),
            self.messages_url(target),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--warmup",
            "0.5",
            "--stream",
        ]
        if delta_interval_ms:
            # Paced streams all last 20 intervals: spread the starts so they do not arrive in bursts.
            stagger = 20 * delta_interval_ms / 1000
            command += [
                "--delta-interval-ms",
                str(delta_interval_ms),
                "--stagger",
                f"{stagger:g}",
                "--warmup",
                f"{stagger + 0.5:g}",
            ]
        done = subprocess.run(pinned(command, self.load_cpus), capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout)
        return LoadResult(**figures)


def _median_run(results: list[LoadResult]) -> LoadResult:
    ranked = sorted(results, key=lambda result: result.rps)
    return ranked[(len(ranked) - 1) // 2]


def run_matrix(bench: Bench, args: argparse.Namespace) -> tuple[list[dict], dict | None]:
    cells = []
    for mode in args.modes:
        for concurrency in args.concurrency:
            print(f"  {mode} c={concurrency} ...", file=sys.stderr, flush=True)
            cell = {
                "mode": mode,
                "concurrency": concurrency,
                "load": report.cell_json(bench.with_wrk(mode == "stream", concurrency)),
            }
            if mode == "stream":
                cell["ttfb"] = report.cell_json(bench.with_client(concurrency, args.seconds))
            cells.append(cell)
    paced = None
    if "stream" in args.modes:
        print(f"  paced streams c={PACED_CONCURRENCY} ...", file=sys.stderr, flush=True)
        paced = report.cell_json(bench.with_client(PACED_CONCURRENCY, args.paced_seconds, PACED_DELTA_INTERVAL_MS))
    return cells, paced


def agreement(cells: list[dict]) -> list[dict]:
    """Total latency of the same stream cells measured by wrk and by the TTFB client."""
    rows = []
    for cell in cells:
        if "ttfb" in cell:
            for target in TARGETS:
                wrk, client = cell["load"][target], cell["ttfb"][target]
                rows.append(
                    {
                        "concurrency": cell["concurrency"],
                        "target": target,
                        "wrk_p50_ms": wrk["p50_ms"],
                        "client_p50_ms": client["p50_ms"],
                        "wrk_p99_ms": wrk["p99_ms"],
                        "client_p99_ms": client["p99_ms"],
                        "wrk_rps": wrk["rps"],
                        "client_rps": client["rps"],
                    }
                )
    return rows


def agreement_table(rows: list[dict]) -> str:
    head = f"{'streams':18} | {'wrk p50':>8} {'client p50':>10} | {'wrk p99':>8} {'client p99':>10} | {'wrk req/s':>9} {'client req/s':>12}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{report.LABELS[row['target']][:11]:11} c={row['concurrency']:<4} | {row['wrk_p50_ms']:>6.2f}ms {row['client_p50_ms']:>8.2f}ms |"
            f" {row['wrk_p99_ms']:>6.2f}ms {row['client_p99_ms']:>8.2f}ms | {row['wrk_rps']:>9,.0f} {row['client_rps']:>12,.0f}"
        )
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    if wrk_missing():
        return 2
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_cpus, load_cpus = ("1", "0") if pin else (None, None)
    machine = describe_machine()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-") as tmp:
        workdir = Path(tmp)
        access = {"LOGGING__ACCESS_LOG": "true" if args.access_log == "on" else "false"}
        mock = start_mock(workdir, cpus=load_cpus)
        services = {"direct": mock}
        try:
            services["off"] = start_proxy("plugins-off", mock, workdir, server_cpus, access)
            services["on"] = start_proxy(
                "plugins-on", mock, workdir, server_cpus, {**access, **plugins_on_settings(workdir)}
            )
            bench = Bench(services, load_cpus, args.seconds, args.repeat)
            for target in TARGETS:  # warm up: connection pools, first-request imports
                run_wrk(bench.messages_url(target), max(args.concurrency), 1.0, stream=True, cpus=load_cpus)
            cells, paced = run_matrix(bench, args)
            recording = wait_until_recorded(services["on"].url)
            memory = {name: services[name].memory_kib() for name in ("off", "on")}
        finally:
            for service in services.values():
                service.stop()
    results = {
        "command": "python benchmarks/bench_proxy.py " + " ".join(sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "machine": machine,
        "setup": {
            "pinned": pin,
            "proxy_cpus": server_cpus,
            "mock_and_load_cpus": load_cpus,
            "seconds_per_run": args.seconds,
            "repeat": args.repeat,
            "access_log": args.access_log,
            "stream_deltas": 20,
            "paced_stream": {
                "concurrency": PACED_CONCURRENCY,
                "delta_interval_ms": PACED_DELTA_INTERVAL_MS,
                "seconds_per_run": args.paced_seconds,
            },
        },
        "cells": cells,
        "paced_stream_ttfb": paced,
        "wrk_vs_client": agreement(cells),
        "recording": recording,
        "proxy_memory_kib": memory,
    }
    results["goals"] = report.goals(cells, paced)
    print_results(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def print_results(results: dict) -> None:
    machine = results["machine"]
    print(
        f"\n{machine['cpu_model']}, {machine['cpu_cores']} CPUs, Python {machine['python']}; "
        f"pinned: {results['setup']['pinned']}; access log {results['setup']['access_log']}; "
        f"{results['setup']['seconds_per_run']:g} s per run\n"
    )
    print(report.load_table(results["cells"]))
    ttfb_rows = [(f"saturated c={cell['concurrency']}", cell["ttfb"]) for cell in results["cells"] if "ttfb" in cell]
    if results["paced_stream_ttfb"]:
        ttfb_rows.append((f"paced c={PACED_CONCURRENCY} (25 ms/delta)", results["paced_stream_ttfb"]))
    if ttfb_rows:
        print("\n" + report.ttfb_table(ttfb_rows))
        print(
            "\nwrk vs TTFB client, total latency of the same stream cells:\n"
            + agreement_table(results["wrk_vs_client"])
        )
    recording = results["recording"]
    print(
        f"\nrecorded: {recording['rows_in_duckdb']} DuckDB rows for {recording['requests_counted_by_metrics']} requests counted"
        f" by metrics, {recording['dropped_records']} dropped"
    )
    memory = results["proxy_memory_kib"]
    print(
        f"proxy peak RSS: plugins off {memory['off']['peak'] / 1024:.0f} MiB, all on {memory['on']['peak'] / 1024:.0f} MiB"
    )
    print("\n" + report.goals_text(results["goals"]))


if __name__ == "__main__":
    sys.exit(main())
