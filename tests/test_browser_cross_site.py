"""A web page on another origin, in a real headless Chromium, cannot wipe the log or spend the configured key.

The attacker's page is served from another loopback port (another origin, the same site:
the closest a page can get without DNS tricks). It tries what any page the operator visits
could try: a no-cors POST to /logs/reset and a text/plain POST to /v1/messages, the
"simple" requests a browser sends without asking the server first.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ccproxy_core.testing import wait_until

pytestmark = pytest.mark.browser

CONFIGURED_KEY = "sk-ant-operator-configured-key"
LOGS_ON = {"logs_endpoints_enabled": True, "logs_collection_enabled": True, "log_flush_interval_seconds": 0.05}
ATTACK = """async (target) => {
  const outcomes = {};
  const body = JSON.stringify({model: "claude-haiku-4-5", max_tokens: 10, messages: [{role: "user", content: "hi"}]});
  for (const [name, url, init] of [
    ["reset", target + "/logs/reset", {method: "POST", mode: "no-cors"}],
    ["spend", target + "/v1/messages", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}],
    ["read", target + "/logs/query", {mode: "cors"}],
  ]) {
    try { const r = await fetch(url, init); outcomes[name] = r.type + ":" + r.status; }
    catch (e) { outcomes[name] = "error:" + e.message; }
  }
  return outcomes;
}"""


class AttackerPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's naming
        page = b"<!doctype html><title>an ordinary page</title><p>nothing to see"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def attacker_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_page_on_another_origin_can_neither_wipe_nor_spend(browser, attacker_site, proxy_factory, upstream):
    proxy = proxy_factory(observability=LOGS_ON, upstream={"anthropic_api_key": CONFIGURED_KEY})
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    own = httpx.post(proxy.url + "/v1/messages", json=body)  # the operator's own request
    assert own.status_code == 200
    wait_until(lambda: httpx.get(proxy.url + "/logs/status").json()["row_count"] == 1)
    httpx.delete(upstream.url + "/_mock/requests")

    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(attacker_site)
        outcomes = tab.evaluate(ATTACK, proxy.url)
    finally:
        context.close()

    # no-cors answers are opaque to the page; what matters is what the server did
    assert outcomes["reset"] == "opaque:0" and outcomes["spend"] == "opaque:0", outcomes
    assert outcomes["read"].startswith("error:"), outcomes  # no CORS: the page cannot read the log
    stored = [row["request_id"] for row in httpx.get(proxy.url + "/logs/query").json()["results"]]
    assert stored == [own.headers["x-ccproxy-request-id"]], "the page wiped the access log or added to it"
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == [], "the page reached the provider"
    assert proxy.app.state.browser_refusals["origin"] == 3
