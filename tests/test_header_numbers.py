"""Numbers in provider headers (rate limits, a gateway's cost): read as HTTP writes them, nothing looser."""

from __future__ import annotations

import email.utils
import time
from decimal import Decimal

import pytest

from ccproxy_core.forwarding.response_headers import read_response_headers
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.safe_values import decimal_from_header, number_from_header


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0123", Decimal("0.0123")),
        (" 5 ", Decimal(5)),
        ("1e-3", Decimal("0.001")),
        ("1_000", None),
        ("٣", None),
        ("1e999", None),
        ("NaN", None),
        ("0x10", None),
    ],
)
def test_a_cost_header_is_a_plain_decimal(text, expected):
    assert decimal_from_header(text) == expected


def test_rate_limit_headers_with_python_only_spellings_are_left_out():
    headers = [
        (b"anthropic-ratelimit-output-tokens-limit", b"12_000"),  # float() would read 12000
        (b"anthropic-ratelimit-output-tokens-remaining", b"11000"),
        (b"anthropic-ratelimit-requests-limit", b"nan"),
        (b"anthropic-ratelimit-requests-remaining", b"\xd9\xa3"),  # an Arabic-Indic digit
    ]
    limits, _ = read_response_headers(PROVIDERS["anthropic"], headers)
    assert limits == {"output_tokens_remaining": 11000.0}


@pytest.mark.parametrize(
    ("provider", "headers", "expected"),
    [
        ("anthropic", [(b"retry-after", b"17")], {"retry_after_seconds": 17.0}),
        (
            "openai",
            [(b"Retry-After", b"2"), (b"retry-after-ms", b"1500")],
            {"retry_after_seconds": 2.0, "retry_after_ms": 1500.0},
        ),
        ("openai", [(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")], {"retry_after_seconds": 0.0}),  # past
        ("anthropic", [(b"retry-after", b"soon")], {}),
        ("anthropic", [(b"retry-after", b"Wed, 21 Oct 99999 07:28:00 GMT")], {}),
    ],
)
def test_a_retry_after_in_seconds_is_recorded_with_the_rate_limits(provider, headers, expected):
    limits, _ = read_response_headers(PROVIDERS[provider], headers)
    assert limits == expected


def test_a_retry_after_given_as_a_date_is_recorded_as_the_seconds_until_it():
    # RFC 9110 lets Retry-After be an HTTP date; a gateway in front of the provider may send one.
    date = email.utils.formatdate(time.time() + 90, usegmt=True).encode()
    limits, _ = read_response_headers(PROVIDERS["anthropic"], [(b"retry-after", date)])
    assert 85 <= limits["retry_after_seconds"] <= 90


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"4000", 4000.0),
        (b"0", 0.0),
        (b"9" * 64, float("9" * 64)),
        (b"9" * 65, None),  # longer than any count: not read, as a long text with a point is not
        (b" 12 ", 12.0),
        (b"12.5", 12.5),
        (b"", None),
        (b"\xd9\xa3", None),
        (b"\xb2", None),  # a superscript two in latin-1: a digit to str.isdigit, not to HTTP
    ],
)
def test_a_count_header_is_read_as_written(raw, expected):
    assert number_from_header(raw) == expected


def test_rate_limit_and_request_id_headers_are_found_in_any_case():
    headers = [
        (b"Anthropic-RateLimit-Tokens-Remaining", b"900"),
        (b"REQUEST-ID", b"req_1"),
        (b"anthropic-ratelimit-tokens-limit\xc0", b"5"),  # one byte more: another header
    ]
    limits, request_id = read_response_headers(PROVIDERS["anthropic"], headers)
    assert (limits, request_id) == ({"tokens_remaining": 900.0}, "req_1")
