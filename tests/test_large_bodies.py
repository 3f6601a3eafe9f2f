"""The top-level scan of large bodies agrees with a full JSON decode, on awkward bodies included."""

from __future__ import annotations

import json

import pytest

from ccproxy_core.accounting.usage import request_model_and_stream
from ccproxy_core.forwarding.large_bodies import scan_top_level

BODIES = [
    {
        "messages": [{"role": "user", "content": 'a "model": "fake", "stream": true \\ }'}],
        "model": "claude-x",
        "stream": True,
    },
    {"model": "gpt-4o", "tools": [{"input_schema": {"model": "nested", "stream": True}}]},
    {"stream": False, "model": ""},
    {"system": "model", "metadata": {"model": "no"}},
    {"model": "claude-\ud800-lone"},
    {"model": 5, "stream": "true"},
    {"model": "first", "model_version": "x", "models": ["y"]},
]


@pytest.mark.parametrize("payload", BODIES)
def test_the_scan_finds_what_a_full_decode_finds(payload):
    body = json.dumps(payload).encode()
    padded = json.dumps({"padding": ["x" * 1000] * 10, **payload}).encode()
    for raw in (body, padded, bytearray(padded)):
        assert scan_top_level(raw) == request_model_and_stream(bytes(raw))


def test_not_an_object_or_not_json_gives_nothing():
    for raw in (b"[1, 2, 3]", b"not json", b"", b'{"model": ', b'"model": "x"'):
        assert scan_top_level(raw)[1] is False
    assert scan_top_level(b"[1, 2, 3]") == (None, False)
