"""ccproxy's own routes and plugins' asked with another method: HEAD served as GET, others 405 with Allow."""

from __future__ import annotations

import httpx
import pytest

from ccproxy_core import hookimpl
from ccproxy_core.testing import wait_until
from tests.test_security_access import EVERYTHING_ON, TOKEN

BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def guarded(proxy_factory):
    return proxy_factory(observability=EVERYTHING_ON, security={"auth_token": TOKEN})


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/logs/query", "GET, HEAD, OPTIONS"),
        ("GET", "/logs/reset", "OPTIONS, POST"),
        ("DELETE", "/logs/status", "GET, HEAD, OPTIONS"),
        ("PUT", "/metrics", "GET, HEAD, OPTIONS"),
        ("POST", "/dashboard", "GET, HEAD, OPTIONS"),
        ("PATCH", "/logs/sessions/some-session", "GET, HEAD, OPTIONS"),
    ],
)
def test_a_wrong_method_on_an_own_route_is_named_not_called_missing(guarded, method, path, allowed):
    answer = httpx.request(method, guarded.url + path, headers=BEARER)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allowed
    assert answer.json() == {"detail": f"{path} takes {allowed}, not {method}"}


@pytest.mark.parametrize("path", ["/metrics", "/logs/status", "/logs/analytics", "/dashboard"])
def test_head_on_an_own_route_is_its_get_without_a_body_behind_the_same_token(guarded, path):
    assert httpx.head(guarded.url + path).status_code == 401
    head = httpx.head(guarded.url + path, headers=BEARER)
    get = httpx.get(guarded.url + path, headers=BEARER)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b"" and get.content != b""
    assert head.headers["content-type"] == get.headers["content-type"]


class PagePlugin:
    """A third-party plugin serving one page, and counting the requests that ended as proxied ones."""

    def __init__(self) -> None:
        self.proxied = 0

    @hookimpl
    def register_routes(self, app):
        async def page() -> dict:
            return {"page": "yes"}

        app.add_api_route("/team-page", page, methods=["GET"])

    @hookimpl
    def on_request_end(self):
        self.proxied += 1


def test_a_plugins_route_asked_with_another_method_is_not_taken_for_a_proxied_request(proxy_factory):
    plugin = PagePlugin()
    proxy = proxy_factory(plugins=[plugin])
    refused = httpx.post(proxy.url + "/team-page", json={})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, OPTIONS"
    head = httpx.head(proxy.url + "/team-page")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(b'{"page":"yes"}'))
    assert httpx.get(proxy.url + "/team-page").json() == {"page": "yes"}
    assert plugin.proxied == 0  # before, the POST was answered as an unknown API path and recorded


def test_head_on_the_endless_live_stream_ends_after_its_headers_and_frees_the_connection(guarded, caplog):
    # Before, the stream ran on with its body thrown away: the kept-alive connection never served
    # another request, and each such HEAD held one of the stream's few subscriber places.
    with httpx.Client(base_url=guarded.url, headers=BEARER, timeout=5) as client:
        head = client.head("/logs/stream")
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
        assert client.get("/health").status_code == 200  # the same connection, free again
        status = wait_until(lambda: (answer := client.get("/logs/status").json())["stream_subscribers"] == 0 and answer)
    assert status["stream_subscribers"] == 0
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_options_on_an_own_route_names_the_methods_it_takes(guarded):
    # Before, a 405 whose Allow left out OPTIONS itself.
    answer = httpx.options(guarded.url + "/logs/query")
    assert (answer.status_code, answer.headers["allow"]) == (204, "GET, HEAD, OPTIONS")
