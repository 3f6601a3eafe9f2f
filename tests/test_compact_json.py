"""The JSON text stores keep for the record's dict fields is json.dumps' compact text, byte for byte."""

from __future__ import annotations

import json

import pytest

from ccproxy_core.plugin_host import log_store
from tests.test_duckdb_encoded_rows import AWKWARD_TEXT

DICTS = [
    {},
    {"requests_limit": 4000.0, "requests_remaining": 3999.0, "tokens_remaining": 1.7976931348623157e308},
    {"input_tokens_remaining": 5e-324, "output_tokens_limit": -0.0, "n": 12},
    {"team": AWKWARD_TEXT, AWKWARD_TEXT: "key too", "empty": ""},
]


@pytest.mark.parametrize("value", DICTS)
def test_compact_json_is_json_dumps_compact_text(value):
    assert log_store.compact_json(value) == json.dumps(value, separators=(",", ":"))
    assert json.loads(log_store.compact_json(value)) == value


@pytest.mark.parametrize("value", DICTS)
def test_without_the_c_encoder_the_text_is_the_same(monkeypatch, value):
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert log_store._compact_json_encoder()(value) == json.dumps(value, separators=(",", ":"))


def test_a_value_json_cannot_carry_raises_as_json_dumps_does():
    with pytest.raises(TypeError):
        log_store.compact_json({"when": object()})
