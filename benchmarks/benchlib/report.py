"""Ratios to direct, the speed goals, and the printed tables."""

from __future__ import annotations

from dataclasses import asdict

from benchlib.wrk import LoadResult

PROXIES = ("off", "on")
LABELS = {"direct": "direct", "off": "plugins off", "on": "all plugins on"}


def compare(direct: LoadResult, proxied: LoadResult) -> dict:
    """One proxied run against the direct run of the same cell: ratios and added milliseconds."""
    figures = {
        "rps_ratio": _ratio(proxied.rps, direct.rps),
        "p50_ratio": _ratio(proxied.p50_ms, direct.p50_ms),
        "p99_ratio": _ratio(proxied.p99_ms, direct.p99_ms),
        "added_p50_ms": proxied.p50_ms - direct.p50_ms,
        "added_p99_ms": proxied.p99_ms - direct.p99_ms,
    }
    if direct.ttfb_p99_ms is not None and proxied.ttfb_p99_ms is not None:
        figures["added_ttfb_p50_ms"] = proxied.ttfb_p50_ms - direct.ttfb_p50_ms
        figures["added_ttfb_p99_ms"] = proxied.ttfb_p99_ms - direct.ttfb_p99_ms
    return figures


def cell_json(results: dict[str, LoadResult]) -> dict:
    """A cell's raw figures per target, its ratios to direct, and plugins-on over plugins-off throughput."""
    out = {target: {**asdict(result), "rps": result.rps} for target, result in results.items()}
    out["vs_direct"] = {target: compare(results["direct"], results[target]) for target in PROXIES if target in results}
    if "on" in results and "off" in results:
        out["on_over_off_rps"] = _ratio(results["on"].rps, results["off"].rps)
    return out


def goals(cells: list[dict], paced: dict | None) -> dict:
    """The four speed goals (memory flat is reported by bench_scale.py)."""
    load_cells = [cell for cell in cells if cell["load"]["on_over_off_rps"] is not None]
    worst = min(load_cells, key=lambda cell: cell["load"]["on_over_off_rps"])
    json_c1 = next((cell for cell in cells if cell["mode"] == "json" and cell["concurrency"] == 1), None)
    result = {
        "on_over_off_rps_worst": {
            "value": worst["load"]["on_over_off_rps"],
            "cell": f"{worst['mode']} c={worst['concurrency']}",
            "goal": ">= 0.70",
        },
        "on_over_off_rps_by_cell": {
            f"{cell['mode']} c={cell['concurrency']}": cell["load"]["on_over_off_rps"] for cell in load_cells
        },
    }
    if json_c1:
        result["added_p50_ms_c1"] = {target: json_c1["load"]["vs_direct"][target]["added_p50_ms"] for target in PROXIES}
        result["added_p50_ms_c1"]["goal"] = "< 1 ms"
    if paced:
        result["paced_stream_added_ttfb_p99_ms_c64"] = {
            target: paced["vs_direct"][target]["added_ttfb_p99_ms"] for target in PROXIES
        }
        result["paced_stream_added_ttfb_p99_ms_c64"]["goal"] = "< 2 ms"
    return result


def load_table(cells: list[dict]) -> str:
    """Throughput and latency per cell: direct in absolute figures, the proxies as ratios to direct."""
    head = (
        f"{'mode':6} {'conc':>4} | {'direct req/s':>12} {'p50':>7} {'p99':>7} |"
        f" {'plugins off: req/s':>18} {'p50':>6} {'p99':>6} | {'all on: req/s':>13} {'p50':>6} {'p99':>6} | {'on/off':>6} |"
        f" {'CPU us/req off':>14} {'on':>5}"
    )
    lines = [head, "-" * len(head)]
    for cell in cells:
        load = cell["load"]
        direct = load["direct"]
        parts = [
            f"{cell['mode']:6} {cell['concurrency']:>4} | {direct['rps']:>12,.0f} {direct['p50_ms']:>6.2f}m {direct['p99_ms']:>6.2f}m |"
        ]
        for target, width in (("off", 18), ("on", 13)):
            ratios = load["vs_direct"][target]
            parts.append(
                f" {ratios['rps_ratio']:>{width}.2f}x {ratios['p50_ratio']:>5.1f}x {ratios['p99_ratio']:>5.1f}x |"
            )
        parts.append(f" {load['on_over_off_rps']:>6.2f} |")
        parts.append(
            f" {_us(load['off']['server_cpu_us_per_request']):>14} {_us(load['on']['server_cpu_us_per_request']):>5}"
        )
        lines.append("".join(parts))
    return "\n".join(lines)


def ttfb_table(rows: list[tuple[str, dict]]) -> str:
    """Time to first byte of streams: direct in ms, the proxies as milliseconds added."""
    head = (
        f"{'streams':28} | {'direct TTFB p50':>15} {'p99':>7} | {'off: added p50':>14} {'p99':>7} |"
        f" {'on: added p50':>13} {'p99':>7}"
    )
    lines = [head, "-" * len(head)]
    for label, cell in rows:
        direct = cell["direct"]
        parts = [f"{label:28} | {direct['ttfb_p50_ms']:>13.2f}ms {direct['ttfb_p99_ms']:>5.2f}ms |"]
        for target, width in (("off", 14), ("on", 13)):
            ratios = cell["vs_direct"][target]
            parts.append(f" {ratios['added_ttfb_p50_ms']:>{width - 2}.2f}ms {ratios['added_ttfb_p99_ms']:>5.2f}ms |")
        lines.append("".join(parts).rstrip(" |"))
    return "\n".join(lines)


def goals_text(summary: dict) -> str:
    worst = summary["on_over_off_rps_worst"]
    lines = [f"all plugins on / plugins off throughput: worst {worst['value']:.2f} ({worst['cell']}), goal >= 0.70"]
    if "added_p50_ms_c1" in summary:
        added = summary["added_p50_ms_c1"]
        lines.append(
            f"added latency p50 at concurrency 1 (JSON): plugins off {added['off']:.2f} ms, all on {added['on']:.2f} ms, goal < 1 ms"
        )
    if "paced_stream_added_ttfb_p99_ms_c64" in summary:
        added = summary["paced_stream_added_ttfb_p99_ms_c64"]
        lines.append(
            f"added stream TTFB p99 at concurrency 64 (paced): plugins off {added['off']:.2f} ms, all on {added['on']:.2f} ms, goal < 2 ms"
        )
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
