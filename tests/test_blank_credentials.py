"""A blank credential header (empty, or a scheme alone such as ``Authorization: Bearer``) holds no key:
the operator's configured key is sent in its place, alone, as for a client that sends none."""

from __future__ import annotations

import httpx
import pytest
from starlette.datastructures import Headers

from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.forwarding.upstream import forwarded_headers
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_settings
from ccproxy_core.testing.mock_upstream.recorder import redact_secret

from .test_proxy_http import BODY, mock_requests


@pytest.mark.parametrize(
    ("service", "path", "blank", "key_header", "sent"),
    [
        ("anthropic", "/v1/messages", {"x-api-key": ""}, "x-api-key", "sk-ant-operator-0123456789"),
        ("anthropic", "/v1/messages", {"authorization": "Bearer"}, "x-api-key", "sk-ant-operator-0123456789"),
        (
            "openai",
            "/v1/chat/completions",
            {"authorization": "Bearer"},
            "authorization",
            "Bearer sk-operator-0123456789",
        ),
    ],
)
def test_a_blank_credential_header_is_no_key_and_the_operator_s_is_sent_alone(
    proxy_factory, upstream, recorder, service, path, blank, key_header, sent
):
    # curl -H "x-api-key: $KEY" with KEY unset. Before: forwarded blank, the provider answered 401.
    keys = {"anthropic_api_key": "sk-ant-operator-0123456789", "openai_api_key": "sk-operator-0123456789"}
    proxy = proxy_factory(plugins=[recorder], upstream=keys)
    httpx.delete(upstream.url + "/_mock/requests")
    body = BODY if service == "anthropic" else {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(proxy.url + path, json=body, headers={"anthropic-version": "2023-06-01", **blank})
    assert answer.status_code == 200
    [seen] = mock_requests(upstream)
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert headers[key_header] == redact_secret(sent)
    assert not ({"x-api-key", "authorization"} - {key_header}) & headers.keys()  # the blank one is not sent beside
    [record] = recorder.wait_for_ends(1)
    assert record.api_key_id == key_fingerprint(keys[f"{service}_api_key"])


def test_a_blank_credential_beside_a_websocket_key_subprotocol_brings_no_operator_key():
    settings = make_settings("http://127.0.0.1:9", upstream={"openai_api_key": "sk-operator-0123456789"})
    protocol = "realtime, openai-insecure-api-key.sk-client-0123456789abcdefABCD"
    headers = Headers(raw=[(b"authorization", b"Bearer"), (b"sec-websocket-protocol", protocol.encode())])
    sent = forwarded_headers(headers, PROVIDERS["openai"], settings)
    # Before: the operator's key was added beside the client's, which the record named.
    assert sent["authorization"] == "Bearer" and sent["sec-websocket-protocol"] == protocol
