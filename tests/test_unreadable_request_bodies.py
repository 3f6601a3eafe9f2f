"""A request whose body no reader expected is still forwarded and recorded, never a bare 500.

The model and stream fields are read for the record; a reader that fails costs the record its
model (unpriced), not the client its answer nor the operator the record.
"""

from __future__ import annotations

import logging

import httpx

from ccproxy_core.forwarding import large_bodies
from ccproxy_core.testing import wait_until

OBSERVED = {"logs_endpoints_enabled": True, "logs_collection_enabled": True, "log_flush_interval_seconds": 0.05}
FORM = b'--ab\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--ab--\r\n'


def stored_rows(url: str) -> list[dict]:
    return wait_until(lambda: httpx.get(url + "/logs/query?limit=10", timeout=10).json()["results"], timeout=10)


def test_a_content_type_pythons_email_parser_raised_on_is_forwarded_and_recorded(proxy_factory):
    proxy = proxy_factory(observability=OBSERVED)
    # Both RFC 2231 forms of the boundary at once: email.utils.decode_params raised TypeError on it.
    content_type = "multipart/form-data; boundary*=utf-8''ab; boundary*0=ef"
    response = httpx.post(
        proxy.url + "/v1/audio/transcriptions",
        content=FORM,
        headers={"authorization": "Bearer sk-test", "content-type": content_type},
        timeout=10,
    )
    assert response.status_code < 500, response.text
    [row] = stored_rows(proxy.url)
    assert row["status_code"] == response.status_code and row["model"] is None


def test_a_reader_that_fails_costs_the_record_its_model_only(proxy_factory, monkeypatch, caplog):
    def failing(*args: object) -> None:
        raise RuntimeError("a body no reader expected")

    monkeypatch.setattr(large_bodies, "form_boundary", failing)
    proxy = proxy_factory(observability=OBSERVED)
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    with caplog.at_level(logging.ERROR, logger="ccproxy.proxy"):
        response = httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10)
    assert response.status_code == 200
    [row] = stored_rows(proxy.url)
    assert row["status_code"] == 200 and row["model"] is None and row["response_model"] == "claude-haiku-4-5"
    assert any("forwarding it with them unknown" in record.getMessage() for record in caplog.records)
