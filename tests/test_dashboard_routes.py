"""The dashboard plugin's HTTP side: the page, its embedded settings, the token cookie, the assets."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ccproxy_core.runtime.app import create_app
from ccproxy_core.security.auth import session_value
from ccproxy_core.testing import make_settings
from ccproxy_dashboard import bundle, page

TOKEN = "s3cret-token"
UNUSED_UPSTREAM = "http://127.0.0.1:9"


@pytest.fixture
def fake_bundle(tmp_path, monkeypatch):
    """A stand-in bundle, so these tests do not depend on `make dashboard` having run."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "dashboard.js").write_text("console.log('dashboard');")
    (static / "dashboard.css").write_text("body{}")
    (static / "dashboard.js.map").write_text("{}")
    (tmp_path / "secret.js").write_text("outside the static folder")
    monkeypatch.setattr(bundle, "STATIC_DIR", static)
    return static


def client_for(auth_token: str | None = None, **observability) -> TestClient:
    settings = make_settings(
        UNUSED_UPSTREAM,
        observability={"dashboard_enabled": True, **observability},
        security={"auth_token": auth_token},
    )
    return TestClient(create_app(settings), base_url="http://localhost", follow_redirects=False)


def embedded_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="ccproxy-config">(.*?)</script>', html, re.S)
    assert match, "page has no embedded config"
    return json.loads(match.group(1))


def test_page_embeds_the_logs_settings(fake_bundle):
    with client_for(logs_endpoints_enabled=True, logs_collection_enabled=False) as client:
        response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    config = embedded_config(response.text)
    assert config["logs_endpoints_enabled"] is True
    assert config["logs_collection_enabled"] is False
    assert config["logs_base"] == "/logs"
    assert config["feed_max_rows"] == page.FEED_MAX_ROWS
    assert abs(config["server_time"] - time.time()) < 5


def test_page_loads_only_its_own_assets(fake_bundle):
    with client_for() as client:
        response = client.get("/dashboard")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources and all(s.startswith("/dashboard/static/") or s == "data:," for s in sources), sources
    assert response.headers["cache-control"] == "no-store"


def test_json_for_script_cannot_close_the_script_element():
    text = page.json_for_script({"x": "</script><script>alert(1)</script>&<!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": "</script><script>alert(1)</script>&<!--"}


def test_assets_are_served_with_their_types(fake_bundle):
    with client_for() as client:
        js = client.get("/dashboard/static/dashboard.js")
        css = client.get("/dashboard/static/dashboard.css")
        source_map = client.get("/dashboard/static/dashboard.js.map")
    assert js.status_code == 200 and js.text == "console.log('dashboard');"
    assert js.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    assert source_map.headers["content-type"] == "application/json"
    assert js.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["..%2Fsecret.js", "missing.js", ".hidden.js", "dashboard.exe", "%2E%2E"])
def test_assets_outside_the_bundle_are_not_found(fake_bundle, name):
    with client_for() as client:
        response = client.get(f"/dashboard/static/{name}")
    assert response.status_code == 404
    assert "outside the static folder" not in response.text


def test_missing_bundle_page_says_how_to_build_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(bundle, "STATIC_DIR", tmp_path / "never-built")
    with client_for() as client:
        response = client.get("/dashboard")
    assert response.status_code == 503
    assert "make dashboard" in response.text and "npm ci &amp;&amp; npm run build" in response.text
    assert any("make dashboard" in message for message in caplog.messages)


def test_without_a_token_setting_the_page_is_open(fake_bundle):
    with client_for() as client:
        assert client.get("/dashboard").status_code == 200
        assert client.get("/dashboard/static/dashboard.js").status_code == 200
        redirected = client.get("/dashboard?token=anything")
    assert redirected.status_code == 303 and redirected.headers["location"] == "/dashboard"
    assert "set-cookie" not in redirected.headers


def test_token_setting_protects_page_and_assets(fake_bundle):
    with client_for(auth_token=TOKEN) as client:
        page_response = client.get("/dashboard")
        asset_response = client.get("/dashboard/static/dashboard.js")
        with_header = client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page_response.status_code == 401
    assert "/dashboard?token=" in page_response.text and TOKEN not in page_response.text
    assert asset_response.status_code == 401
    assert with_header.status_code == 200


def test_token_link_sets_an_httponly_strict_cookie_and_redirects(fake_bundle):
    with client_for(auth_token=TOKEN) as client:
        response = client.get(f"/dashboard?token={TOKEN}")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard"
        cookie = response.headers["set-cookie"]
        # the cookie holds an HMAC of the token, never the token, under a name that carries the port
        assert cookie.startswith(f"ccproxy_session_80={session_value(SecretStr(TOKEN))};")
        assert TOKEN not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert response.headers["referrer-policy"] == "no-referrer"
        client.cookies.clear()
        client.cookies.set("ccproxy_session_80", TOKEN)  # the raw token is not a session
        assert client.get("/dashboard").status_code == 401
        client.cookies.clear()
        client.cookies.set("ccproxy_session_80", session_value(SecretStr(TOKEN)))
        assert client.get("/dashboard").status_code == 200
        assert client.get("/dashboard/static/dashboard.css").status_code == 200


def test_wrong_token_link_is_refused_without_a_cookie(fake_bundle):
    with client_for(auth_token=TOKEN) as client:
        response = client.get("/dashboard?token=wrong")
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "SECURITY__AUTH_TOKEN" in response.text


def test_startup_warns_which_setting_is_off(fake_bundle, caplog):
    with client_for(logs_endpoints_enabled=False):
        pass
    assert any("OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true" in message for message in caplog.messages)


def test_startup_names_every_setting_the_dashboard_lacks_at_once(fake_bundle, caplog):
    with client_for(logs_endpoints_enabled=False, logs_collection_enabled=False):
        pass
    (line,) = [message for message in caplog.messages if message.startswith("dashboard has no data")]
    assert "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true" in line
    assert "OBSERVABILITY__LOGS_COLLECTION_ENABLED=true" in line
