"""ccproxy at scale: many streams held open at once, and memory over a long steady run.

    python benchmarks/bench_scale.py                    # 1,000 streams held 30 s, then 10 minutes of steady load
    python benchmarks/bench_scale.py --minutes 0        # only the 1,000 streams
    python benchmarks/bench_scale.py --streams 0 --minutes 2

One ``ccproxy serve`` process with every plugin on (metrics, DuckDB collection in a temporary
folder, logs API, dashboard; access log on, as by default) in front of ``ccproxy mock-upstream``.

Streams: ``--streams`` streamed Messages requests are opened at once and held: the mock waits
``--hold-seconds``/20 before each of its 20 deltas; the same is done straight to the mock first,
for the client's own time to open them all. Every stream must end with ``message_stop``,
and every one must be recorded (DuckDB rows and the metrics count both grow by exactly that
many). Reported: the peak number in flight (``ccproxy_active_requests``), time to first byte,
the proxy's peak resident memory (VmHWM) and open files.

Memory: a fresh proxy under a steady mixed load (both providers, JSON and streams, several
models, 1 in 8 answers a 429) at ``--rate`` requests per second for ``--minutes``, its resident
memory (VmRSS) sampled every ``--sample-seconds``. Flat means the highest and lowest samples after
five minutes of warm-up lie within 20 MiB.
Results go to results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

from benchlib.clients import SteadyLoad, hold_stream, summarise_streams
from benchlib.machine import describe_machine
from benchlib.observe import metric_sum, requests_counted, wait_until_recorded
from benchlib.processes import Service, get_json, plugins_on_settings, start_mock, start_proxy

RESULTS = Path(__file__).resolve().parent / "results"
DELTAS = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000, help="streams held open at once (0 skips)")
    parser.add_argument("--hold-seconds", type=float, default=30.0, help="how long each stream lasts")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory run (0 skips)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second in the memory run")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling period in the memory run")
    parser.add_argument(
        "--without-duckdb",
        action="store_true",
        help="memory run with metrics, logs API and dashboard but no DuckDB collection (a control)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "scale.json")
    return parser.parse_args()


def raise_open_files_limit(needed: int) -> dict:
    """Raise the soft limit on open files (inherited by the servers we start) up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(max(soft, needed), hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        print(f"warning: open files limited to {wanted} (hard limit); {needed} wanted", file=sys.stderr)
    return {"before": soft, "now": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "hard": hard, "needed": needed}


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def held_streams(proxy: Service | None, mock: Service, count: int, hold_seconds: float) -> dict:
    """Open ``count`` streams at once (through ``proxy``, or straight to the mock), watch, and summarise."""
    interval_ms = round(hold_seconds * 1000 / DELTAS)
    peak = {"active_requests": 0.0, "mock_in_progress": 0, "open_files": 0}

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            in_progress = (await asyncio.to_thread(get_json, mock.url + "/_mock/stats"))["answers_in_progress"]
            peak["mock_in_progress"] = max(peak["mock_in_progress"], in_progress)
            if proxy is not None:
                active = await asyncio.to_thread(metric_sum, proxy.url, "ccproxy_active_requests")
                peak["active_requests"] = max(peak["active_requests"], active)
                peak["open_files"] = max(peak["open_files"], open_files(proxy.pid))

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=hold_seconds * 4 + 60)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        watcher = asyncio.ensure_future(watch())
        try:
            target = (proxy or mock).url + "/v1/messages"
            outcomes = await asyncio.gather(*(hold_stream(session, target, interval_ms) for _ in range(count)))
        finally:
            watcher.cancel()
    summary = summarise_streams(list(outcomes))
    summary.update(
        wall_seconds=time.perf_counter() - started,
        delta_interval_ms=interval_ms,
        peak_in_flight=int(peak["active_requests"]),
        peak_mock_answers_in_progress=peak["mock_in_progress"],
        peak_proxy_open_files=peak["open_files"],
    )
    return summary


def run_streams(args: argparse.Namespace, workdir: Path, mock: Service) -> dict:
    # The same streams straight to the mock first: how long this client itself takes to open them all.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        direct = runner.run(held_streams(None, mock, args.streams, args.hold_seconds))
    proxy = start_proxy("scale", mock, workdir, settings=plugins_on_settings(workdir, "scale"))
    try:
        before = {
            "rss_kib": proxy.memory_kib()["rss"],
            "counted": requests_counted(proxy.url),
            "rows": get_json(proxy.url + "/logs/status")["row_count"],
        }
        cpu = proxy.cpu_seconds()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(held_streams(proxy, mock, args.streams, args.hold_seconds))
        recording = wait_until_recorded(proxy.url)
        result.update(
            proxy_cpu_seconds=proxy.cpu_seconds() - cpu,
            proxy_rss_before_mib=before["rss_kib"] / 1024,
            proxy_peak_rss_mib=proxy.memory_kib()["peak"] / 1024,
            recorded_by_metrics=recording["requests_counted_by_metrics"] - before["counted"],
            rows_added_in_duckdb=recording["rows_in_duckdb"] - before["rows"],
            dropped_records=recording["dropped_records"],
        )
        result["direct"] = {key: direct[key] for key in ("completed", "errors", "ttfb_ms", "duration_s")}
        result["all_completed_and_recorded"] = (
            result["completed"] == args.streams == result["recorded_by_metrics"] == result["rows_added_in_duckdb"]
        )
        return result
    finally:
        proxy.stop()


async def steady_run(proxy: Service, args: argparse.Namespace) -> dict:
    load = SteadyLoad(proxy.url, rate=args.rate)
    task = asyncio.ensure_future(load.run())
    samples = []
    started = time.monotonic()
    end = started + args.minutes * 60
    while True:
        samples.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "rss_mib": proxy.memory_kib()["rss"] / 1024,
                "requests": load.sent,
            }
        )
        print(
            f"  {samples[-1]['seconds']:6.0f} s  RSS {samples[-1]['rss_mib']:6.1f} MiB  {load.sent} requests",
            file=sys.stderr,
            flush=True,
        )
        if time.monotonic() >= end:
            break
        await asyncio.sleep(min(args.sample_seconds, max(0.0, end - time.monotonic())))
    load.stop()
    await task
    return {
        "samples": samples,
        "requests": load.sent,
        "statuses": load.statuses,
        "failures": load.failures,
        "achieved_rate": load.sent / (time.monotonic() - started),
    }


WARMUP_SECONDS = 300
"""Samples before this are warm-up: DuckDB's buffer pool filling up to its memory limit."""
FLAT_MIB = 20


def memory_verdict(samples: list[dict]) -> dict:
    """Growth from the first sample after one minute to the end, the least-squares slope over that span,
    and the spread (highest minus lowest) after warm-up: flat means a spread within FLAT_MIB."""
    warm = [sample["rss_mib"] for sample in samples if sample["seconds"] >= WARMUP_SECONDS] or [samples[-1]["rss_mib"]]
    after_warmup = {
        "warmup_seconds": WARMUP_SECONDS,
        "spread_after_warmup_mib": max(warm) - min(warm),
        "growth_after_warmup_mib": warm[-1] - warm[0],
    }
    after_warmup["flat"] = after_warmup["spread_after_warmup_mib"] <= FLAT_MIB
    settled = [sample for sample in samples if sample["seconds"] >= 60] or samples
    xs = [sample["seconds"] / 60 for sample in settled]
    ys = [sample["rss_mib"] for sample in settled]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    return {
        "rss_after_1_min_mib": ys[0],
        "rss_at_end_mib": ys[-1],
        "rss_max_mib": max(s["rss_mib"] for s in samples),
        "growth_after_1_min_mib": ys[-1] - ys[0],
        "slope_mib_per_minute": slope,
        **after_warmup,
    }


def run_memory(args: argparse.Namespace, workdir: Path, mock: Service) -> dict:
    settings = plugins_on_settings(workdir, "memory")
    if args.without_duckdb:
        settings["OBSERVABILITY__LOGS_COLLECTION_ENABLED"] = "false"
    proxy = start_proxy("memory", mock, workdir, settings=settings)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(steady_run(proxy, args))
        if args.without_duckdb:
            counted = requests_counted(proxy.url)
            result["recording"] = {
                "requests_counted_by_metrics": counted,
                "all_recorded": counted == result["requests"],
            }
        else:
            result["recording"] = wait_until_recorded(proxy.url)
        result["duckdb"] = not args.without_duckdb
        result["verdict"] = memory_verdict(result["samples"])
        result["duckdb_files_mib"] = sum(path.stat().st_size for path in workdir.glob("memory.duckdb*")) / 2**20
        return result
    finally:
        proxy.stop()


def main() -> int:
    args = parse_args()
    limits = raise_open_files_limit(args.streams * 4 + 1024)
    results: dict = {
        "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
        "machine": describe_machine(),
        "open_files_limit": limits,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="ccproxy-scale-") as tmp:
        workdir = Path(tmp)
        mock = start_mock(workdir)
        try:
            if args.streams:
                print(f"holding {args.streams} streams for {args.hold_seconds:g} s ...", file=sys.stderr, flush=True)
                results["streams"] = run_streams(args, workdir, mock)
                print_streams(results["streams"])
            if args.minutes:
                print(f"steady load at {args.rate:g} req/s for {args.minutes:g} min ...", file=sys.stderr, flush=True)
                part = "memory_without_duckdb" if args.without_duckdb else "memory"
                results[part] = run_memory(args, workdir, mock)
                print_memory(results[part])
        finally:
            mock.stop()
    _merge_into(args.output, results)
    print(f"\nwrote {args.output}")
    return 0


def _merge_into(path: Path, results: dict) -> None:
    """Keep the other part's figures when only one part ran."""
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(previous, indent=2) + "\n")


def print_streams(result: dict) -> None:
    print(
        f"\n{result['streams']} streams held {result['duration_s']['min']:.1f}-{result['duration_s']['max']:.1f} s: "
        f"{result['completed']} completed, {result['errors']} errors, peak {result['peak_in_flight']} in flight"
    )
    print(
        f"recorded: {result['recorded_by_metrics']} by metrics, {result['rows_added_in_duckdb']} DuckDB rows, "
        f"{result['dropped_records']} dropped -> all completed and recorded: {result['all_completed_and_recorded']}"
    )
    for label, part in (("through ccproxy", result), ("straight to the mock", result["direct"])):
        ttfb = part["ttfb_ms"]
        print(
            f"TTFB {label}: p50 {ttfb['p50']:.1f} ms, p99 {ttfb['p99']:.1f} ms, max {ttfb['max']:.1f} ms "
            f"({part['completed']} completed)"
        )
    print(
        f"proxy RSS {result['proxy_rss_before_mib']:.0f} MiB before, peak {result['proxy_peak_rss_mib']:.0f} MiB; "
        f"peak open files {result['peak_proxy_open_files']}; CPU {result['proxy_cpu_seconds']:.1f} s"
    )
    if result["first_errors"]:
        print("first errors:", *result["first_errors"], sep="\n  ")


def print_memory(result: dict) -> None:
    verdict = result["verdict"]
    print(
        f"\n{result['requests']} requests at {result['achieved_rate']:.0f} req/s; statuses {result['statuses']}, "
        f"{result['failures']} failures; all recorded: {result['recording']['all_recorded']}"
    )
    print(
        f"RSS after 1 min {verdict['rss_after_1_min_mib']:.1f} MiB, at end {verdict['rss_at_end_mib']:.1f} MiB, "
        f"max {verdict['rss_max_mib']:.1f} MiB; slope {verdict['slope_mib_per_minute']:+.2f} MiB/min; "
        f"DuckDB files {result['duckdb_files_mib']:.1f} MiB"
    )
    print(
        f"after {verdict['warmup_seconds'] / 60:g} min of warm-up: spread {verdict['spread_after_warmup_mib']:.1f} MiB, "
        f"growth {verdict['growth_after_warmup_mib']:+.1f} MiB -> flat within {FLAT_MIB} MiB: "
        f"{'met' if verdict['flat'] else 'NOT met'}"
    )


if __name__ == "__main__":
    sys.exit(main())
