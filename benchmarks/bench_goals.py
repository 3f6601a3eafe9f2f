"""`make bench`: every performance goal of ccproxy, each printed as met or not, with its figure.

    python benchmarks/bench_goals.py                   # about 25 minutes on a 2-core machine
    python benchmarks/bench_goals.py --reuse           # only print the goals from the results already saved
    python benchmarks/bench_goals.py --memory-minutes 30   # also run the memory goal (else its last saved run)

Runs, each as its own script, on loopback only, against the mock provider:

1. ``bench_proxy.py --access-log on --repeat 3`` pinned (proxy on CPU 1, mock and load generators
   on CPU 0), JSON and streams at 1 and 16 connections, the median of three runs per cell: the
   default settings (access log on), all plugins on against all off. Throughput goal at 16
   connections, latency goal at one.
2. the same unpinned, at one connection: the added latency a user gets on a shared machine.
3. ``bench_side_by_side.py``: the two proxies loaded at the same time on one core, so the
   machine's drift cancels; their ratio of CPU per request is the throughput goal's steadier figure.
4. ``bench_floor.py``: the smallest proxy on ccproxy's stack beside ccproxy, at one connection,
   pinned: how much of the added latency is the stack's, printed under the latency goals.
5. ``bench_analytics.py``: /logs/analytics over 24 h at 10M rows, and the dashboard's 7-day view.
6. ``bench_scale.py --minutes N`` (only with ``--memory-minutes``; 30 minutes at 200 req/s is the
   goal's run): resident memory after warm-up. Without it the last saved run is read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PINNED, UNPINNED = RESULTS / "goals-pinned.json", RESULTS / "goals-unpinned.json"
ANALYTICS, SCALE = RESULTS / "analytics.json", RESULTS / "scale.json"
SIDE_BY_SIDE = RESULTS / "side-by-side.json"
FLOOR = RESULTS / "floor.json"


def run(script: str, *arguments: str) -> None:
    command = [sys.executable, str(HERE / script), *arguments]
    print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=HERE, timeout=3600)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def cell(results: dict, mode: str, concurrency: int) -> dict:
    return next(c for c in results["cells"] if c["mode"] == mode and c["concurrency"] == concurrency)["load"]


def busy(results: dict | None) -> bool:
    """True when the run started with more runnable work than CPUs: its timings are not ccproxy's alone."""
    machine = (results or {}).get("machine") or {}
    load_average = machine.get("load_average_at_start")
    return bool(load_average) and load_average[0] > machine.get("cpu_cores", 1)


def goal(name: str, figure: str, met: bool | None, results: dict | None = None) -> str:
    verdict = "no figure" if met is None else ("met" if met else "NOT met")
    if met is not None and busy(results):
        verdict = f"{verdict}?"
        figure = f"{figure} (busy machine: no verdict)"
    return f"  [{verdict:^9}] {name}: {figure}"


def proxy_goals(pinned: dict | None, unpinned: dict | None, side_by_side: dict | None) -> list[str]:
    lines = []
    if pinned is None:
        lines.append(goal("all plugins on >= 90% of plugins-off throughput", "not measured", None))
    else:
        ratios = {mode: cell(pinned, mode, 16)["on_over_off_rps"] for mode in ("json", "stream")}
        worst = min(ratios.values())
        lines.append(
            goal(
                "all plugins on >= 90% of plugins-off throughput (16 connections, access log on)",
                f"{ratios['json']:.0%} JSON, {ratios['stream']:.0%} stream",
                worst >= 0.9,
                pinned,
            )
        )
    lines.append(side_by_side_goal(side_by_side))
    if pinned is not None:
        added = cell(pinned, "json", 1)["vs_direct"]["on"]["added_p50_ms"]
        lines.append(
            goal(
                "added p50, one connection, everything on at defaults, pinned: JSON < 0.3 ms",
                f"{added:.2f} ms",
                added < 0.3,
                pinned,
            )
        )
    if unpinned is None:
        lines.append(goal("added p50 unpinned: JSON < 0.4 ms, stream < 0.6 ms", "not measured", None))
    else:
        json_added = cell(unpinned, "json", 1)["vs_direct"]["on"]["added_p50_ms"]
        stream_added = cell(unpinned, "stream", 1)["vs_direct"]["on"]["added_p50_ms"]
        lines.append(
            goal(
                "added p50, one connection, everything on at defaults, unpinned: JSON < 0.4 ms",
                f"{json_added:.2f} ms",
                json_added < 0.4,
                unpinned,
            )
        )
        lines.append(goal("  ... stream < 0.6 ms", f"{stream_added:.2f} ms", stream_added < 0.6, unpinned))
    return lines


def side_by_side_goal(results: dict | None) -> str:
    """The throughput goal from CPU per request, both proxies loaded at once on one core (JSON, 16 connections)."""
    name = "  ... the same, side by side on one core: CPU per request, all on against off, <= 1.11"
    if results is None or results.get("plugins") != "all":
        return goal(name, "not measured", None)
    ratio = results["median_ratio"]
    rounds = len(results["ratios_off_first"]) + len(results["ratios_on_first"])
    settled = results.get("settle_seconds", 0)
    when = f", from {settled:.0f} s after start-up" if settled else ", from start-up"
    return goal(
        name,
        f"{ratio:.3f}, {1 / ratio:.0%} of the throughput (median of {rounds} rounds{when})",
        ratio <= 1 / 0.9,
        results,
    )


def floor_lines(floor: dict | None) -> list[str]:
    """Not a goal: what the smallest proxy on the same stack adds, beside ccproxy, in one run."""
    if floor is None:
        return []
    placed = "pinned" if floor["pinned"] else "unpinned"
    lines = [f"  (the stack's floor, one connection, {placed}, {floor['started_at']}:"]
    for answers, figures in floor["results"].items():
        added = {name: figures[name]["added_p50_ms"] for name in ("floor", "plugins off", "all on")}
        shown = ", ".join(f"{name} {value:.2f} ms" for name, value in added.items())
        lines.append(f"     {answers}: added p50 {shown}")
    return [*lines[:-1], lines[-1] + ")"]


def analytics_goals(analytics: dict | None) -> list[str]:
    if analytics is None:
        return [
            goal("analytics 24 h at 10M rows < 300 ms", "not measured", None),
            goal("dashboard 7-day view < 1 s", "not measured", None),
        ]
    rows = analytics["data"]["rows"]
    day, week = analytics["analytics_24h_ms"]["median"], analytics["analytics_7d_ms"]["median"]
    return [
        goal(
            f"/logs/analytics 24 h at 10M rows < 300 ms ({rows:,} rows)",
            f"{day:.0f} ms median",
            day < 300 if rows >= 10_000_000 else None,
            analytics,
        ),
        goal(
            "dashboard 7-day view (/logs/analytics, hour buckets) < 1 s",
            f"{week:.0f} ms median",
            week < 1000 if rows >= 10_000_000 else None,
            analytics,
        ),
    ]


def memory_goal(scale: dict | None) -> list[str]:
    memory = (scale or {}).get("memory")
    if not memory or "spread_after_warmup_mib" not in memory["verdict"]:
        return [goal("resident memory flat within 20 MiB over 30 min at 200 req/s", "not measured", None)]
    verdict = memory["verdict"]
    minutes = memory["samples"][-1]["seconds"] / 60
    figure = (
        f"spread {verdict['spread_after_warmup_mib']:.1f} MiB after {verdict['warmup_seconds'] / 60:g} min "
        f"warm-up, over {minutes:.0f} min at {memory['achieved_rate']:.0f} req/s"
    )
    return [
        goal(
            "resident memory flat within 20 MiB (30 min, 200 req/s, everything on)",
            figure,
            verdict["flat"] if minutes >= 30 and memory["achieved_rate"] >= 190 else None,
            scale,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", action="store_true", help="measure nothing; print the goals from saved results")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows for the analytics goal")
    parser.add_argument("--memory-minutes", type=float, default=0, help="run the memory goal for this long")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per proxy cell, the median kept (single runs wander on a shared VM)"
    )
    args = parser.parse_args()
    if not args.reuse:
        run(
            "bench_proxy.py",
            "--access-log",
            "on",
            "--concurrency",
            "1",
            "16",
            "--paced-seconds",
            "6",
            "--repeat",
            str(args.repeat),
            "--output",
            str(PINNED),
        )
        run(
            "bench_proxy.py",
            "--access-log",
            "on",
            "--no-pin",
            "--concurrency",
            "1",
            "--paced-seconds",
            "6",
            "--repeat",
            str(args.repeat),
            "--output",
            str(UNPINNED),
        )
        run("bench_side_by_side.py", "--plugins", "all", "--output", str(SIDE_BY_SIDE))
        run("bench_floor.py", "--output", str(FLOOR))
        run("bench_analytics.py", "--rows", str(args.rows), "--output", str(ANALYTICS))
        if args.memory_minutes:
            run("bench_scale.py", "--streams", "0", "--minutes", str(args.memory_minutes))
    print("\nGoals (figures from benchmarks/results/*.json; 'no figure' when a run is missing or too short):")
    for line in [
        *proxy_goals(load(PINNED), load(UNPINNED), load(SIDE_BY_SIDE)),
        *floor_lines(load(FLOOR)),
        *analytics_goals(load(ANALYTICS)),
        *memory_goal(load(SCALE)),
    ]:
        print(line)
    print_machine_load()
    return 0


def print_machine_load() -> None:
    """Each run's load average at its start: above the CPU count, other work shared the machine."""
    for path in (PINNED, UNPINNED, SIDE_BY_SIDE, FLOOR, ANALYTICS, SCALE):
        machine = (load(path) or {}).get("machine")
        if machine and machine.get("load_average_at_start"):
            load_1m = machine["load_average_at_start"][0]
            busy = " (busy machine: figures are not ccproxy's alone)" if load_1m > machine["cpu_cores"] else ""
            print(f"  {path.name}: load average {load_1m:.1f} on {machine['cpu_cores']} CPUs at the start{busy}")


if __name__ == "__main__":
    sys.exit(main())
