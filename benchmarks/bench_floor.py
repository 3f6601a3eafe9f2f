"""How far ccproxy's added latency is from the floor of its own stack.

The latency goals are figures ccproxy adds to a direct request at one connection. Part of
that is ccproxy's work (reading the request and the answer, the record, the plugins) and part
is the stack's: a second process, uvicorn, aiohttp, two more trips over loopback. This script
measures the part that is the stack's with the smallest proxy that stack allows
(``benchlib/floor_proxy.py``: forwards and relays, nothing else), beside ccproxy with every
plugin off and with every plugin on, at the defaults (access log on).

Each round runs wrk at one connection against the mock directly, the floor proxy, and both
ccproxy proxies one after the other, so the machine's drift falls on all of them; it prints
each target's p50 added to the direct p50 of the same round and its CPU time per request,
then the medians. Proxies on CPU 1, the mock and wrk on CPU 0, as in ``bench_proxy.py``.

    python benchmarks/bench_floor.py [--rounds 7] [--seconds 4] [--no-pin] [--output F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchlib.machine import describe_machine
from benchlib.processes import Service, plugins_on_settings, start_floor_proxy, start_mock, start_proxy
from benchlib.wrk import run_wrk, wrk_missing

TARGETS = ("direct", "floor", "plugins off", "all on")


def start_targets(folder: Path, pin: bool) -> dict[str, Service]:
    """The mock and the three proxies in front of it."""
    proxy_cpu, load_cpu = ("1", "0") if pin else (None, None)
    mock = start_mock(folder, cpus=load_cpu)
    started = {"direct": mock}
    try:
        started["floor"] = start_floor_proxy(mock, folder, cpus=proxy_cpu)
        started["plugins off"] = start_proxy("off", mock, folder, cpus=proxy_cpu)
        started["all on"] = start_proxy("on", mock, folder, cpus=proxy_cpu, settings=plugins_on_settings(folder))
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(services: dict[str, Service]) -> None:
    for service in reversed(list(services.values())):
        service.stop()


def one_round(targets: dict[str, Service], stream: bool, seconds: float, pin: bool) -> dict[str, tuple[float, float]]:
    """Each target's p50 (ms) and CPU per request (µs) over one wrk run at one connection."""
    figures = {}
    for name, service in targets.items():
        before = service.cpu_seconds()
        load = run_wrk(service.url + "/v1/messages", 1, seconds, stream, cpus="0" if pin else None)
        figures[name] = (load.p50_ms, (service.cpu_seconds() - before) * 1e6 / max(load.requests, 1))
    return figures


def measure(targets: dict[str, Service], stream: bool, rounds: int, seconds: float, pin: bool) -> dict:
    """The median added p50 and CPU per request of every target over ``rounds`` rounds."""
    one_round(targets, stream, 1.0, pin)  # warm-up
    added: dict[str, list[float]] = {name: [] for name in TARGETS}
    cpu: dict[str, list[float]] = {name: [] for name in TARGETS}
    for number in range(1, rounds + 1):
        figures = one_round(targets, stream, seconds, pin)
        direct = figures["direct"][0]
        for name, (p50, cpu_us) in figures.items():
            added[name].append(p50 - direct if name != "direct" else p50)
            cpu[name].append(cpu_us)
        shown = ", ".join(f"{name} {added[name][-1]:.3f} ms / {cpu[name][-1]:,.0f} us" for name in TARGETS)
        print(f"{'stream' if stream else 'json'} round {number}: {shown}", flush=True)
    return {
        name: {
            "p50_ms" if name == "direct" else "added_p50_ms": statistics.median(added[name]),
            "cpu_us_per_request": statistics.median(cpu[name]),
        }
        for name in TARGETS
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each wrk run")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the processes")
    parser.add_argument("--output", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if wrk_missing():
        return 2
    pin = not args.no_pin
    machine, started_at = describe_machine(), datetime.now(UTC).isoformat(timespec="seconds")
    results = {}
    with tempfile.TemporaryDirectory(prefix="ccproxy-floor-") as name:
        targets = start_targets(Path(name), pin)
        try:
            for stream in (False, True):
                results["stream" if stream else "json"] = measure(targets, stream, args.rounds, args.seconds, pin)
        finally:
            stop_all(targets)
    for answers, figures in results.items():
        print(f"{answers}, one connection, {'pinned' if pin else 'unpinned'}, medians of {args.rounds} rounds:")
        print(f"  direct p50 {figures['direct']['p50_ms']:.3f} ms")
        for name in TARGETS[1:]:
            row = figures[name]
            print(
                f"  {name:<11} adds {row['added_p50_ms']:.3f} ms, {row['cpu_us_per_request']:,.0f} us CPU per request"
            )
    if args.output:
        figures = {"started_at": started_at, "machine": machine, "pinned": pin, "rounds": args.rounds}
        args.output.write_text(json.dumps(figures | {"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
