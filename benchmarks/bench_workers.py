"""Throughput of ``ccproxy serve --workers N`` with every plugin and the access log on.

    python benchmarks/bench_workers.py                 # workers 1 and 2, 16 connections, 10 s runs, 3 rounds
    python benchmarks/bench_workers.py --workers 1 2 4 --seconds 5 --rounds 1

Each round measures every worker count one after the other (JSON answers, then streams of 20
deltas), so the machine's noise falls on all alike; the median round is printed. Nothing is
pinned: the workers are meant to use every core, and the mock provider and wrk share those
cores with them, so on a small machine the figures are a floor. After each run the records are
counted: DuckDB must hold exactly the requests /metrics counted (the hub receives them all).
CPU per request is the sum over the hub and its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchlib.machine import describe_machine
from benchlib.observe import wait_until_recorded
from benchlib.processes import plugins_on_settings, read_cpu_seconds, start_mock, start_proxy
from benchlib.wrk import run_wrk, wrk_missing

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "workers.json")
    return parser.parse_args()


def family_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the hub and its workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        children = []
    total = read_cpu_seconds(pid)
    for child in children:
        try:
            total += read_cpu_seconds(int(child))
        except FileNotFoundError:
            pass
    return total


def measure(workdir: Path, mock, workers: int, mode: str, args: argparse.Namespace) -> dict:
    settings = {
        **plugins_on_settings(workdir, f"w{workers}-{mode}-{time.monotonic_ns()}"),
        "LOGGING__ACCESS_LOG": "true",
    }
    proxy = start_proxy(f"workers-{workers}", mock, workdir, settings=settings, workers=workers)
    try:
        time.sleep(3 if workers > 1 else 0.5)  # every worker up
        run_wrk(proxy.url + "/v1/messages", args.connections, 2, mode == "stream")  # warm-up
        cpu_before = family_cpu_seconds(proxy.pid)
        result = run_wrk(proxy.url + "/v1/messages", args.connections, args.seconds, mode == "stream")
        cpu = family_cpu_seconds(proxy.pid) - cpu_before
        recorded = wait_until_recorded(proxy.url)
    finally:
        proxy.stop()
    return {
        "workers": workers,
        "mode": mode,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "errors": result.errors,
        "cpu_ms_per_request": round(cpu * 1000 / max(result.requests, 1), 3),
        "all_recorded": recorded["all_recorded"],
        "rows": recorded["rows_in_duckdb"],
    }


def main() -> int:
    args = parse_args()
    if wrk_missing():
        return 2
    machine = describe_machine()
    print(
        f"machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, {machine['memory_gib']} GiB, "
        f"load average at start {machine['load_average_at_start']} (a shared machine: other work ran beside)"
    )
    runs: dict[tuple[int, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-workers-") as folder:
        workdir = Path(folder)
        mock = start_mock(workdir)
        try:
            for round_number in range(args.rounds):
                for mode in ("json", "stream"):
                    for workers in args.workers:
                        cell = measure(workdir, mock, workers, mode, args)
                        runs.setdefault((workers, mode), []).append(cell)
                        print(f"round {round_number + 1}: {json.dumps(cell)}", flush=True)
        finally:
            mock.stop()
    medians = [_median(cells) for cells in runs.values()]
    print(f"\n{'mode':<7} {'workers':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} {'recorded':>8}")
    for cell in medians:
        print(
            f"{cell['mode']:<7} {cell['workers']:>7} {cell['rps']:>8.0f} {cell['p50_ms']:>7.1f} {cell['p99_ms']:>7.1f} "
            f"{cell['cpu_ms_per_request']:>10.3f} {cell['all_recorded']!s:>8}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": machine,
                "connections": args.connections,
                "seconds": args.seconds,
                "medians": medians,
                "runs": [c for cells in runs.values() for c in cells],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.output}; load average now {[round(v, 2) for v in os.getloadavg()]}")
    return 0


def _median(cells: list[dict]) -> dict:
    ordered = sorted(cells, key=lambda cell: cell["rps"])
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(main())
