"""How fast the dashboard is usable with 1,000,000 stored requests.

Fills a fresh DuckDB file with rows spread over the last 7 days (DuckDB SQL, a few seconds),
serves it with ccproxy and the mock provider, and opens /dashboard in headless Chromium.
Prints, per window, the time from navigation start to the tiles being rendered (the page sets
the performance mark ``ccproxy:tiles-rendered``), and how long /logs/analytics takes alone.

    python benchmarks/bench_dashboard.py [--rows 1000000] [--runs 5]

Needs Debian's chromium and the built bundle (``make dashboard``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
from playwright.sync_api import sync_playwright

from ccproxy_core.testing import make_settings, mock_upstream, running_proxy
from ccproxy_duckdb.rollup_keeper import rebuild

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET_MS = 1000
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86_400, "7d": 604_800}
BUCKETS = {"15m": "minute", "1h": "minute", "24h": "hour", "7d": "hour"}
SPAN_MICROS = 7 * 86_400 * 1_000_000

# Rows newest first, one every SPAN/rows; four models, two providers, 2% errors, a long-tailed latency.
FILL_SQL = """
INSERT INTO access_logs (
    request_id, "timestamp", method, endpoint, path, query, client_ip, user_agent, service_type, model,
    streaming, status_code, duration_ms, duration_seconds, tokens_input, tokens_output,
    cache_read_tokens, cache_write_tokens, cost_usd, ttft_ms, upstream_status, error_type,
    error_message, priced, request_bytes, response_bytes, rate_limits)
SELECT
    'bench-' || i,
    now() - to_microseconds(CAST(i * $step AS BIGINT)),
    'POST',
    CASE WHEN i % 2 = 0 THEN '/v1/messages' ELSE '/v1/chat/completions' END,
    CASE WHEN i % 2 = 0 THEN '/v1/messages' ELSE '/v1/chat/completions' END,
    '', '127.0.0.1', 'bench/1.0',
    CASE WHEN i % 2 = 0 THEN 'anthropic' ELSE 'openai' END,
    CASE i % 4 WHEN 0 THEN 'claude-sonnet-4-5' WHEN 1 THEN 'gpt-4o-mini'
               WHEN 2 THEN 'claude-haiku-4-5' ELSE 'gpt-4o' END,
    i % 3 = 0,
    CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END,
    duration, duration / 1000,
    100 + i % 900, 20 + i % 400, (i % 5) * 500, (i % 7) * 40,
    CAST((100 + i % 900) * 0.000003 + (20 + i % 400) * 0.000015 AS DECIMAL(18, 9)),
    CASE WHEN i % 3 = 0 THEN duration / 4 END,
    CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END,
    CASE WHEN i % 50 = 0 THEN 'rate_limit_error' END,
    CASE WHEN i % 50 = 0 THEN 'Number of requests has exceeded your rate limit' END,
    true, 800, 1200, '{}'
FROM (SELECT range AS i, 150 + hash(range) % 1000 + power(hash(range * 7) % 100, 2) / 5 AS duration
      FROM range($rows))
"""


def settings_for(upstream_url: str, folder: Path):
    return make_settings(
        upstream_url,
        tmp_path=folder,
        observability={"dashboard_enabled": True, "logs_endpoints_enabled": True, "logs_collection_enabled": True},
    )


def fill_database(path: Path, rows: int) -> float:
    """Insert ``rows`` rows; return seconds taken. The schema exists: ccproxy created it."""
    started = time.perf_counter()
    with duckdb.connect(str(path)) as con:
        con.execute(FILL_SQL, {"step": SPAN_MICROS / rows, "rows": rows})
        rebuild(con)  # rows loaded around the writer: build their rollups as the migration would
        con.execute("CHECKPOINT")
    return time.perf_counter() - started


def time_to_tiles_ms(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(url)
    page.wait_for_selector('body[data-state="ready"]', timeout=30_000)
    mark = page.evaluate("performance.getEntriesByName('ccproxy:tiles-rendered')[0].startTime")
    context.close()
    if errors:
        raise RuntimeError(f"the page logged errors: {errors}")
    return float(mark)


def save_screenshot(browser, url: str, path: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector('body[data-state="ready"]', timeout=30_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    context.close()


def time_analytics_ms(proxy_url: str, seconds: int, bucket: str) -> float:
    end = int(time.time()) + 1
    params = {"start_time": end - seconds, "end_time": end, "bucket": bucket}
    started = time.perf_counter()
    response = httpx.get(f"{proxy_url}/logs/analytics", params=params, timeout=60)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def print_window_figures(browser, proxy_url: str, rows: int, runs: int) -> None:
    """One line per window: rows in it, analytics alone, navigation to tiles (median and worst)."""
    print(f"{'window':>6} {'rows in window':>15} {'analytics ms':>13} {'tiles median ms':>16} {'tiles max ms':>13}")
    for window, seconds in WINDOWS.items():
        url = f"{proxy_url}/dashboard#{window}"
        time_to_tiles_ms(browser, url)  # warm-up: server caches, first-run costs
        tiles = [time_to_tiles_ms(browser, url) for _ in range(runs)]
        api = [time_analytics_ms(proxy_url, seconds, BUCKETS[window]) for _ in range(runs)]
        in_window = min(rows, round(rows * seconds / (SPAN_MICROS / 1e6)))
        verdict = "ok" if statistics.median(tiles) < TARGET_MS else f"OVER {TARGET_MS} ms"
        print(
            f"{window:>6} {in_window:>15,} {statistics.median(api):>13.0f} "
            f"{statistics.median(tiles):>16.0f} {max(tiles):>13.0f}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "test-output" / "dashboard-1m-rows.png",
        help="where to save a picture of the 7 d window (default: test-output/ in the repository, ignored by git)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, mock_upstream() as upstream:
        settings = settings_for(upstream.url, Path(folder))
        with running_proxy(settings):
            pass  # start and stop once so the duckdb plugin creates the schema
        fill_seconds = fill_database(Path(settings.observability.duckdb_path), args.rows)
        print(f"filled {args.rows:,} rows in {fill_seconds:.1f} s")

        with running_proxy(settings) as proxy, sync_playwright() as playwright:
            status = httpx.get(f"{proxy.url}/logs/status").json()
            print(f"/logs/status row_count={status['row_count']:,} size={status['database_size_bytes']:,} bytes")
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            print_window_figures(browser, proxy.url, args.rows, args.runs)
            save_screenshot(browser, f"{proxy.url}/dashboard#7d", args.screenshot)
            print(f"screenshot of the 7 d window: {args.screenshot}")
            browser.close()


if __name__ == "__main__":
    main()
