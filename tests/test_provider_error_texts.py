"""A provider's error texts in the record: keys it echoes masked whole or cut, control characters visible, cuts shown.

Bodies as the providers document their errors (Anthropic's ``{"type": "error", "error": {...}}``, OpenAI's
``{"error": {"message", "type", "param", "code"}}``), with hostile texts in them.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from ccproxy_core.accounting.usage import usage_from_json
from ccproxy_core.safe_values import safe_record
from tests.duckdb_records import numbered_record


def test_openai_error_body_falls_back_to_code_and_hides_keys():
    body = json.dumps(
        {
            "error": {
                "message": "Incorrect API key provided: sk-proj-abc1***********************wxyz. Find your key.",
                "type": None,
                "param": None,
                "code": "invalid_api_key",
            }
        }
    ).encode()
    usage = usage_from_json("openai", body)
    assert usage.error_type == "invalid_api_key"
    # Keys are masked in the record, once the request's own are known (safe_record), never in part before.
    record = safe_record(dataclasses.replace(numbered_record(1), error_message=usage.error_message))
    assert record.error_message == "Incorrect API key provided: sk-***. Find your key."


@pytest.mark.parametrize(
    "message",
    [
        "\u001b" * 245 + "{key}",  # escapes make it longer than its cap: cut through the key
        "Invalid key: {key} (rotate it)",
    ],
)
@pytest.mark.parametrize(
    "key", ["gw-tenant7-Zq8rT1xY4uP9wE2sD6fG3hJ5kL", "sk-ant-api03-SECRETPART\tTAILPART0123456789"]
)
def test_a_key_the_provider_echoes_in_its_error_is_kept_out_of_the_record_whole_or_cut(message, key):
    body = {"type": "error", "error": {"type": "authentication_error", "message": message.format(key=key)}}
    usage = usage_from_json("anthropic", json.dumps(body).encode())
    record = safe_record(dataclasses.replace(numbered_record(1), error_message=usage.error_message), credentials=(key,))
    assert "TAILPART" not in record.error_message and "Zq8rT1" not in record.error_message
    assert "SECRETPART" not in record.error_message


def test_a_providers_error_text_keeps_its_control_characters_visible_and_shows_where_it_was_cut():
    body = {
        "type": "error",
        "error": {"type": "ctl\x1b[31mred\x00nul\r\nforged: line", "message": "say \u202eevil\n" + "e" * 1_500},
    }
    usage = usage_from_json("anthropic", json.dumps(body).encode())
    assert usage.error_type == "ctl\\x1b[31mred\\x00nul\\r\\nforged: line"
    assert usage.error_message is not None and usage.error_message.startswith("say \\u202eevil\\ne")
    assert len(usage.error_message) == 1_000 and usage.error_message.endswith("e\u2026")
