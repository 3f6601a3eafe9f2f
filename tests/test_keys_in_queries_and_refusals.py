"""Keys a client puts in its query string, percent-encoded or naming the other provider, and in a refused path."""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import quote, unquote_plus

import httpx
import pytest

from ccproxy_core.security import browser_guard

GATEWAY_KEY = "Zm9vYmFy/KEY+base64==abcdEFGH"  # a gateway's key, in base64: not URL-safe
BODY = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "query",
    [
        f"q={quote(GATEWAY_KEY, safe='')}&api_key=zz",  # a secret-named parameter: the query is written anew
        f"q={quote(GATEWAY_KEY, safe='')}",  # kept as sent
        "q=" + re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(GATEWAY_KEY, safe="")),
    ],
)
def test_the_requests_own_key_percent_encoded_in_its_query_is_masked(proxy, recorder, query):
    headers = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}
    httpx.post(f"{proxy.url}/v1/messages?{query}", json=BODY, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert GATEWAY_KEY not in unquote_plus(record.query), record.query
    assert "***" in record.query


def test_a_key_holding_a_plus_is_masked_in_a_query_that_keeps_it_as_sent(proxy, recorder):
    key = "abc+def/ghijklmnop="  # "+" as sent is the key's own, not an escaped space
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    httpx.post(f"{proxy.url}/v1/messages?k=abc+def%2Fghijklmnop%3D", json=BODY, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert record.query == "***"


def test_the_other_providers_configured_key_in_a_query_is_masked(proxy_factory, recorder):
    operator_key = "plainOPERATORkey0987654321"  # no provider's shape: only its value can find it
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_api_key": operator_key})
    headers = {"x-api-key": "sk-ant-client-0123456789", "anthropic-version": "2023-06-01"}
    httpx.post(f"{proxy.url}/v1/messages?q={operator_key}", json=BODY, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert record.query == "q=***"


def test_a_refused_requests_log_line_masks_a_key_in_its_path(proxy, caplog, monkeypatch):
    monkeypatch.setattr(browser_guard, "_refusal_log", browser_guard.RateLimitedLog(browser_guard.log))
    caplog.set_level(logging.WARNING, logger=browser_guard.log.name)
    own_key, other_key = "CLIENTplainKEY5555566666777", "sk-ant-api03-SOMEONE-ELSES-0123456789abcdefghij"
    headers = {"origin": "http://evil.example", "x-api-key": own_key}
    response = httpx.post(f"{proxy.url}/v1/{own_key}/{other_key}/m", json=BODY, headers=headers, timeout=10)
    assert response.status_code == 403
    [line] = [record.getMessage() for record in caplog.records if "refused POST" in record.getMessage()]
    assert own_key not in line and other_key not in line
    assert "/v1/***/sk-***/m" in line


def test_a_refused_requests_log_line_masks_the_operators_key_in_its_path(proxy_factory, caplog, monkeypatch):
    operator_key = "OPERATORplainKEY0987654321"
    proxy = proxy_factory(upstream={"openai_api_key": operator_key})
    monkeypatch.setattr(browser_guard, "_refusal_log", browser_guard.RateLimitedLog(browser_guard.log))
    caplog.set_level(logging.WARNING, logger=browser_guard.log.name)
    response = httpx.get(f"{proxy.url}/v1/models/{operator_key}", headers={"origin": "http://evil.example"})
    assert response.status_code == 403
    [line] = [record.getMessage() for record in caplog.records if "refused GET" in record.getMessage()]
    assert operator_key not in line and "/v1/models/***" in line


def test_a_refused_requests_log_line_masks_a_key_in_its_origin_or_host_and_shows_their_text(proxy, caplog, monkeypatch):
    key = "sk-ant-api03-INTHEORIGIN0123456789abcdefghijklmnop"
    for header, refused in ((b"origin", "web page"), (b"host", "Host")):
        monkeypatch.setattr(browser_guard, "_refusal_log", browser_guard.RateLimitedLog(browser_guard.log))
        caplog.clear()
        caplog.set_level(logging.WARNING, logger=browser_guard.log.name)
        value = f"https://evil\u202e.example/{key}" if header == b"origin" else f"evil\u202e-{key}.example"
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
            head = b"POST /v1/messages HTTP/1.1\r\nconnection: close\r\ncontent-length: 2\r\n"
            if header == b"origin":
                head += b"host: 127.0.0.1\r\n"
            client.sendall(head + header + b": " + value.encode() + b"\r\n\r\n{}")
            assert client.recv(65536).startswith(b"HTTP/1.1 403 ")
        [line] = [record.getMessage() for record in caplog.records if "refused POST" in record.getMessage()]
        assert "INTHEORIGIN" not in line and refused in line, line
        assert "evil\\u202e" in line, line  # the character the browser sent, escaped; not its bytes read as Latin-1
