"""GET /logs/analytics at ten million rows: from the rollups, and by the exact scan for comparison.

Fills a fresh DuckDB file with ``--rows`` rows spread over the last ``--hours`` hours (DuckDB SQL),
builds the rollups as the schema migration does for an existing file (timed), then serves the
file with ccproxy (DuckDB at its default memory limit and threads) and times, over HTTP on
loopback, the 24-hour window (hour buckets, as the API chooses) and the dashboard's 7-day
window (hour buckets). The exact scan of the same 24 hours is timed in-process for comparison,
and its answer checked against the rollups' (counts and sums equal, percentiles within the
stated error). Results go to results/analytics.json.

    python benchmarks/bench_analytics.py [--rows 10000000] [--hours 24] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
from bench_storage import FILL_SQL

from benchlib.machine import describe_machine
from ccproxy_core.plugin_host.log_store import LogFilters
from ccproxy_core.testing import make_settings, mock_upstream, running_proxy
from ccproxy_duckdb.analytics import analytics
from ccproxy_duckdb.rollup_keeper import rebuild
from ccproxy_duckdb.rollup_sql import MAX_RELATIVE_ERROR
from ccproxy_duckdb.rollups import answer_analytics

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_24H_MS = 300
GOAL_7D_MS = 1000


def fill(path: Path, rows: int, hours: float) -> dict:
    end = datetime.now(UTC)
    step = max(1, int(hours * 3_600_000_000 // rows))
    with duckdb.connect(str(path)) as connection:
        started = time.perf_counter()
        connection.execute(FILL_SQL, {"end": end, "rows": rows, "step": step})
        connection.execute("CHECKPOINT")
        filled = time.perf_counter() - started
        started = time.perf_counter()
        rebuild(connection)
        connection.execute("CHECKPOINT")
        rolled = time.perf_counter() - started
        rollup_rows = connection.execute(
            "SELECT (SELECT count(*) FROM rollup_minute) + (SELECT count(*) FROM "
            "rollup_hour), (SELECT count(*) FROM latency_minute) + "
            "(SELECT count(*) FROM latency_hour)"
        ).fetchone()
    return {
        "rows": rows,
        "hours": hours,
        "fill_seconds": filled,
        "rollup_build_seconds": rolled,
        "rollup_rows": rollup_rows[0],
        "latency_rows": rollup_rows[1],
        "file_mb": path.stat().st_size / 1e6,
    }


def window_end(path: Path) -> datetime:
    """Just after the newest stored row: windows end there, so a file filled earlier and kept still holds them whole."""
    with duckdb.connect(str(path), read_only=True) as connection:
        (newest,) = connection.execute('SELECT max("timestamp") FROM access_logs').fetchone()
    return newest.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)


def time_http_ms(
    url: str, seconds: int, bucket: str, runs: int, window_end: datetime
) -> tuple[list[float], list[float]]:
    """Wall milliseconds per request, and CPU milliseconds of this process (server and client, all threads)."""
    timings, cpu = [], []
    end = int(window_end.timestamp())
    for _ in range(runs + 1):  # the first run warms the file's blocks and is not counted
        params = {"start_time": end - seconds, "end_time": end, "bucket": bucket}
        started, cpu_started = time.perf_counter(), time.process_time()
        response = httpx.get(f"{url}/logs/analytics", params=params, timeout=120)
        response.raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return timings[1:], cpu[1:]


def time_exact_ms(path: Path, settings, runs: int, memory_limit: str, end: datetime) -> tuple[list[float], dict, dict]:
    filters = LogFilters(start_time=end - timedelta(hours=24), end_time=end)
    config = {"memory_limit": memory_limit, "threads": settings.observability.duckdb_threads}
    timings, answer = [], {}
    with duckdb.connect(str(path), config=config) as connection:
        for _ in range(runs + 1):
            started = time.perf_counter()
            answer = analytics(connection, filters, "hour")
            timings.append((time.perf_counter() - started) * 1000)
        rolled = answer_analytics(connection, filters, "hour")  # the same window, for the agreement check
    return timings[1:], answer, rolled


def agreement(rolled: dict, exact: dict) -> dict:
    """Counts and sums equal; the worst relative gap of any percentile."""
    same = all(rolled[key] == exact[key] for key in ("totals", "tokens"))
    same = same and abs(rolled["cost"]["total_usd"] - exact["cost"]["total_usd"]) < 1e-6
    gaps = [
        abs(rolled[part][name] - exact[part][name]) / exact[part][name]
        for part in ("duration_ms", "ttft_ms")
        for name in exact[part]
        if name != "avg" and exact[part][name]
    ]
    return {"counts_and_sums_equal": same, "worst_percentile_gap": max(gaps), "stated_bound": MAX_RELATIVE_ERROR}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--hours", type=float, default=24.0, help="span of the rows, ending now")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "analytics.json")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="DuckDB file to fill and keep (reused as it is when it exists: no new fill)",
    )
    parser.add_argument(
        "--exact-memory-limit",
        default="1GB",
        help="DuckDB memory limit for the exact scan (at 64MB it fails at 10M rows)",
    )
    args = parser.parse_args()
    results: dict = {
        "command": "python benchmarks/bench_analytics.py " + " ".join(sys.argv[1:]),
        "machine": describe_machine(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="ccproxy-analytics-") as folder, mock_upstream() as upstream:
        folder_path = args.keep.parent if args.keep else Path(folder)
        settings = make_settings(
            upstream.url,
            tmp_path=folder_path,
            observability={
                "logs_endpoints_enabled": True,
                "logs_collection_enabled": True,
                "duckdb_path": str(args.keep or Path(folder) / "analytics.duckdb"),
            },
        )
        path = Path(settings.observability.duckdb_path)
        if path.exists():
            results["data"] = json.loads(Path(f"{path}.json").read_text())
        else:
            with running_proxy(settings):
                pass  # creates the file and its schema
            results["data"] = fill(path, args.rows, args.hours)
            Path(f"{path}.json").write_text(json.dumps(results["data"]))
        print_line("data", results["data"])
        with running_proxy(settings):
            pass  # migrates a kept file written by an older ccproxy
        end = window_end(path)
        results["window_end"] = end.isoformat()
        with running_proxy(settings) as proxy:
            day, day_cpu = time_http_ms(proxy.url, 86_400, "hour", args.runs, end)
            week, week_cpu = time_http_ms(proxy.url, 7 * 86_400, "hour", args.runs, end)
        results["analytics_24h_ms"], results["analytics_7d_ms"] = summary(day), summary(week)
        results["analytics_24h_cpu_ms"], results["analytics_7d_cpu_ms"] = summary(day_cpu), summary(week_cpu)
        results["load_average_after"] = list(os.getloadavg())
        print(f"24 h: {results['analytics_24h_ms']}\n7 d: {results['analytics_7d_ms']}", flush=True)
        results["exact_memory_limit"] = args.exact_memory_limit
        exact, exact_answer, rolled_same_window = time_exact_ms(path, settings, args.runs, args.exact_memory_limit, end)
    results["memory_limit"] = settings.observability.duckdb_memory_limit
    results["threads"] = settings.observability.duckdb_threads
    results["exact_scan_24h_ms"] = summary(exact)
    results["agreement"] = agreement(rolled_same_window, exact_answer)
    results["requests_in_24h"] = rolled_same_window["totals"]["requests"]
    report(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def summary(timings: list[float]) -> dict:
    return {"median": statistics.median(timings), "min": min(timings), "max": max(timings), "runs": len(timings)}


def print_line(label: str, values: dict) -> None:
    print(
        f"{label}: "
        + ", ".join(
            f"{key} {value:,.1f}" if isinstance(value, float) else f"{key} {value:,}" for key, value in values.items()
        )
    )


def report(results: dict) -> None:
    rows = results["data"]["rows"]
    print(f"load average after the HTTP runs: {results['load_average_after']}")
    print(
        f"DuckDB memory_limit {results['memory_limit']}, threads {results['threads']}; "
        f"{results['requests_in_24h']:,} of {rows:,} rows in the 24 h window"
    )
    for key, label, goal in (
        ("analytics_24h_ms", "/logs/analytics 24 h (rollups)", GOAL_24H_MS),
        ("analytics_7d_ms", "/logs/analytics 7 d, the dashboard's view", GOAL_7D_MS),
        ("exact_scan_24h_ms", f"exact scan, 24 h (in-process, {results['exact_memory_limit']})", None),
    ):
        figures = results[key]
        verdict = "" if goal is None else f"  goal < {goal} ms: {'met' if figures['median'] < goal else 'NOT met'}"
        cpu = results.get(key.replace("_ms", "_cpu_ms"))
        cpu_text = f"; CPU {cpu['median']:.0f} ms" if cpu else ""
        print(
            f"{label:<44} median {figures['median']:7.1f} ms (min {figures['min']:.1f}, max {figures['max']:.1f})"
            f"{cpu_text}{verdict}"
        )
    agree = results["agreement"]
    print(
        f"rollups against the exact scan: counts and sums equal {agree['counts_and_sums_equal']}; worst percentile "
        f"gap {agree['worst_percentile_gap']:.2%} (bound {agree['stated_bound']:.2%})"
    )


if __name__ == "__main__":
    sys.exit(main())
