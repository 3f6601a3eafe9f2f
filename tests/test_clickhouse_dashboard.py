"""The dashboard of one instance, in headless Chromium, over ClickHouse shared with a second instance.

Two real ccproxy servers write to one real clickhouse-server. The dashboard of instance A shows
the requests of B in its live feed (read back from the table) and in its tiles and tables.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard_pages import (
    ALL_LOGS_ON,
    ANTHROPIC_MODEL,
    assert_tiles_match,
    feed_row,
    send_anthropic,
    send_openai,
    stored_analytics,
    tile_value,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]
PEER_FEED_DEADLINE_MS = 10_000  # the peer's flush interval plus one poll of the table, on a loaded machine


def test_dashboard_of_one_instance_shows_both_instances(open_dashboard, proxy_factory, clickhouse_server):
    storage = {**ALL_LOGS_ON, "log_storage_backend": "clickhouse", "clickhouse_url": clickhouse_server.url}
    a = proxy_factory(observability=storage)
    b = proxy_factory(observability=storage)
    tab, problems = open_dashboard(f"{a.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")

    send_anthropic(a.url, "from-a")
    expect(feed_row(tab, "from-a")).to_be_visible(timeout=PEER_FEED_DEADLINE_MS)
    send_openai(b.url, "from-b", stream=True)
    send_anthropic(b.url, "from-b-2")
    expect(feed_row(tab, "from-b")).to_be_visible(timeout=PEER_FEED_DEADLINE_MS)
    expect(feed_row(tab, "from-b-2")).to_be_visible(timeout=PEER_FEED_DEADLINE_MS)
    expect(tab.locator("#feed tr")).to_have_count(3)  # each request once

    analytics = stored_analytics(a.url, expected_requests=3)
    tab.click('[data-window="1h"]')
    expect(tile_value(tab, "requests")).to_have_attribute("data-value", "3", timeout=5_000)
    assert_tiles_match(tab, analytics)
    expect(tab.locator(f'#by-model tr[data-name="{ANTHROPIC_MODEL}"] td').nth(1)).to_have_text("2")
    expect(tab.locator('#by-service tr[data-name="openai"] td').nth(1)).to_have_text("1")
    problems.assert_none()
