"""ccproxy reached by a LAN name over plain HTTP, in a real headless Chromium, and a page of another site.

To such an address Chromium sends no ``Sec-Fetch-*`` headers, and a frame's request carries no
``Origin``: nothing in the request says another page asked for it. Framing is still refused, by
the browser, on the ``X-Frame-Options`` of ccproxy's own answers, so a page cannot hold the live
stream's subscriber slots in hidden frames.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.dashboard_pages import CHROMIUM_ARGS
from tests.tools import tool_path

pytestmark = pytest.mark.browser

SUBSCRIBERS = 3
LOGS_ON = {"logs_endpoints_enabled": True, "logs_collection_enabled": True, "stream_max_subscribers": SUBSCRIBERS}


def framing_page(target: str) -> bytes:
    frames = "".join(f'<iframe src="{target}/logs/stream"></iframe>' for _ in range(SUBSCRIBERS))
    return f"<!doctype html><title>an ordinary page</title>{frames}".encode()


@pytest.fixture
def lan_browser() -> Iterator[object]:
    """Chromium that resolves ccproxy.test and other.test to loopback, as a LAN's DNS would name them."""
    rules = "--host-resolver-rules=MAP ccproxy.test 127.0.0.1, MAP other.test 127.0.0.1"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=tool_path("chromium"), args=[*CHROMIUM_ARGS, rules])
        try:
            yield browser
        finally:
            browser.close()


def serve_page(page: bytes) -> tuple[ThreadingHTTPServer, int]:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's naming
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_a_page_of_another_site_cannot_hold_the_live_stream_in_frames(lan_browser, proxy_factory):
    proxy = proxy_factory(observability=LOGS_ON, security={"allowed_hosts": ["ccproxy.test"]})
    port = proxy.url.rsplit(":", 1)[1]
    seen: list[tuple[str, str | None]] = []
    site, site_port = serve_page(framing_page(f"http://ccproxy.test:{port}"))
    context = lan_browser.new_context()
    try:
        context.on("request", lambda request: seen.append((request.url, request.headers.get("sec-fetch-site"))))
        tab = context.new_page()
        tab.goto(f"http://other.test:{site_port}/", wait_until="commit")
        tab.wait_for_timeout(2000)  # the frames have asked, and been answered (and events are delivered)
        framed = [fetch_site for url, fetch_site in seen if url.endswith("/logs/stream")]
        assert len(framed) == SUBSCRIBERS and set(framed) == {None}  # nothing says which site asked
        status = httpx.get(proxy.url + "/logs/status", timeout=10).json()
        assert status["stream_subscribers"] == 0  # the frames were refused, their connections dropped
        headers = httpx.get(proxy.url + "/logs/status", timeout=10).headers
        assert headers["x-frame-options"] == "DENY"
    finally:
        context.close()
        site.shutdown()
