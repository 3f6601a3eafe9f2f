"""The top-level scan of large bodies agrees with a full JSON decode, on awkward and hostile bodies, and its work stays linear."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ccproxy_core.accounting.attribution.sessions import session_and_user_from_body
from ccproxy_core.accounting.usage import request_model_and_stream
from ccproxy_core.forwarding import large_bodies
from ccproxy_core.forwarding.large_bodies import request_fields, scan_request, scan_top_level
from ccproxy_core.json_text import decode_json, without_long_strings

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


REPEATED_KEYS = [
    b'{"model": "first", "stream": true, "model": "last", "stream": false}',
    b'{"model": "named", "model": 1}',
    b'{"stream": true, "model": "m", "stream": "yes"}',
    b"{" + b'"model":1,' * 20_000 + b'"model":"real","stream":true}',
    b"{" + b'"model":"a","stream":true,' * 20_000 + b'"model":"",' + b'"stream":0}',
]


@pytest.mark.parametrize("raw", REPEATED_KEYS, ids=range(len(REPEATED_KEYS)))
def test_a_repeated_key_counts_as_its_last_copy_as_in_a_full_decode(raw):
    assert scan_top_level(raw) == request_model_and_stream(raw)


class CountedBody(bytes):
    """A body that counts the scan's steps over it: Python-level reads and finds, and bytes copied out."""

    steps = copied = 0

    def find(self, *args):
        self.steps += 1
        return super().find(*args)

    def __getitem__(self, key):
        if isinstance(key, slice):
            self.copied += len(range(*key.indices(len(self))))
        else:
            self.steps += 1
        return super().__getitem__(key)


def test_each_repeated_key_reads_only_its_own_value():
    body = CountedBody(b"{" + b'"model":1,' * 20_000 + b'"model":"real"}')
    assert scan_top_level(body) == ("real", False)
    assert body.copied < len(body)


def test_a_long_run_of_backslashes_is_counted_in_a_few_steps():
    body = CountedBody(b'{"model": "m", "text": "' + b"\\" * 200_000 + b'", "stream": true}')
    assert scan_top_level(body) == request_model_and_stream(bytes(body)) == ("m", True)
    assert body.steps < 100


def test_escaped_quotes_past_the_budget_end_the_scan(monkeypatch):
    monkeypatch.setattr(large_bodies, "MAX_SCANNED_TOKENS", 1_000)
    flood = b'\\"' * 100_000
    before = CountedBody(b'{"model": "m", "text": "' + flood + b'", "model": "later"}')
    assert scan_top_level(before) == (None, False)  # found before the budget was spent, but a later copy is unseen
    after = CountedBody(b'{"text": "' + flood + b'", "model": "later"}')
    assert scan_top_level(after) == (None, False)  # not searched further: unknown
    assert before.steps < 5_000 and after.steps < 5_000


def test_a_flood_of_escaped_quotes_is_not_searched_further():
    flood = b'\\"' * (large_bodies.MAX_SCANNED_TOKENS + 1)
    assert scan_top_level(b'{"model": "m", "text": "' + flood + b'"}') == (None, False)
    assert scan_top_level(b'{"text": "' + flood + b'", "model": "later"}') == (None, False)


def test_hostile_large_bodies_are_forwarded_and_recorded_with_the_model_a_decode_would_find(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder])
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
    ask = b'"max_tokens":10,"messages":[{"role":"user","content":"hi"}]'
    repeated = b"{" + ask + b',"model":1' * 200_000 + b',"model":"claude-haiku-4-5"}'
    flood = (
        b'{"system":"' + b'\\"' * 2 * large_bodies.MAX_SCANNED_TOKENS + b'",' + ask + b',"model":"claude-haiku-4-5"}'
    )
    for body in (repeated, flood):
        assert len(body) > large_bodies.LARGE_BODY_BYTES
        answer = httpx.post(proxy.url + "/v1/messages", content=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    records = recorder.wait_for_ends(2)
    assert [(record.model, record.status_code) for record in records] == [("claude-haiku-4-5", 200), (None, 200)]


def _emptied(value, longest):
    if isinstance(value, str):
        return "" if len(json.dumps(value)) - 2 > longest else value
    if isinstance(value, dict):
        return {_emptied(key, longest): _emptied(item, longest) for key, item in value.items()}
    if isinstance(value, list):
        return [_emptied(item, longest) for item in value]
    return value


@pytest.mark.parametrize("payload", BODIES)
def test_leaving_out_long_strings_changes_nothing_else(payload):
    padded = {"padding": ['long "quoted" \\ text \u00e9' * 40, "\\" * 99, '"' * 99], **payload}
    for text in (json.dumps(padded), json.dumps(padded, ensure_ascii=False)):
        assert without_long_strings(text, 1 << 20) == text
        assert decode_json(without_long_strings(text, 60)) == _emptied(padded, 60)
    assert without_long_strings('{"a": "unterminated' + "x" * 99, 10) == '{"a": "'  # still not JSON


def test_a_long_string_that_is_no_json_string_keeps_the_text_from_decoding():
    for bad in ("\\q", "\x01", "\\u12g4"):
        text = '{"type": "response.completed", "text": "' + "x" * 100 + bad + '", "usage": {"input_tokens": 1}}'
        assert decode_json(without_long_strings(text, 10)) is None  # as a full decode: not JSON


def test_a_key_written_with_escapes_counts_as_its_decoded_name():
    body = b'{"model": "gpt-4o-mini", "messages": [], "mod\\u0065l": "gpt-4o", "str\\u0065am": true}'
    assert scan_top_level(body) == request_model_and_stream(body) == ("gpt-4o", True)


CLAUDE_CODE_USER_ID = json.dumps({"device_id": "d" * 64, "account_uuid": "acc-1", "session_id": "sess-1"})
ATTRIBUTED = [
    b'{"metadata": {"user_id": "alice"}, "messages": [{"role": "user", "content": "hi", "user": "nested"}]}',
    b'{"metadata": {"user_id": ' + json.dumps(CLAUDE_CODE_USER_ID).encode() + b'}, "model": "claude-x"}',
    b'{"safety_identifier": "s-1", "user": "u-1", "metadata": {"user_id": "{\\"team\\": \\"blue\\"}"}}',
    b'{"metadata": "not an object", "user": 5, "safety_identifier": ""}',
    b'{"tools": [{"metadata": {"user_id": "deep"}}], "user": "top \\"quoted\\" \\u00e9 \\ud800"}',
    b'{"metadata": {"user_id": "first"}, "user": "a", "metadata": {"user_id": "last"}, "user": 1}',
    b'{"metadata": {"user_id": "caf\xc3\xa9 \\u202e"}, "safety_identifier": "s", "safety_identifier": "t"}',
]


@pytest.mark.parametrize("raw", ATTRIBUTED, ids=range(len(ATTRIBUTED)))
def test_the_scan_gives_attribution_what_a_full_decode_gives(raw):
    padded = b'{"padding": ["' + b"x" * 1000 + b'"],' + raw[1:]
    for body in (raw, padded, bytearray(padded)):
        payload, model, streaming = scan_request(body)
        assert (model, streaming) == request_model_and_stream(raw)
        for service_type in ("anthropic", "openai"):
            from_decode = session_and_user_from_body(json.loads(raw), service_type)
            assert session_and_user_from_body(payload, service_type) == from_decode
    assert session_and_user_from_body(scan_request(ATTRIBUTED[1])[0]) == ("sess-1", "acc-1")


def test_an_attribution_value_is_decoded_from_its_own_bytes_and_a_long_one_is_left_out():
    prompt = b', "messages": [{"role": "user", "content": "' + b"x" * 2_000_000 + b'"}]}'
    body = CountedBody(b'{"metadata": {"user_id": "alice"}, "user": "bob"' + prompt)
    assert scan_request(body) == ({"metadata": {"user_id": "alice"}, "user": "bob"}, None, False)
    assert body.copied <= 2 * 65536
    long_notes = b'{"metadata": {"user_id": "alice", "notes": "' + b"n" * 70_000 + b'"}, "user": "bob"}'
    assert scan_request(long_notes)[0] == {"user": "bob"}
    deep = b'{"metadata": {"user_id": "alice", "a": ' + b"[" * 30_000 + b"]" * 30_000 + b'}, "model": "m"}'
    assert scan_request(deep) == ({}, "m", False)


def _both_paths(raw: bytes) -> tuple[str | None, str | None]:
    """The model read from ``raw`` as it is (decoded) and padded past the size that is scanned instead."""
    padded = raw[:-1] + b',"pad":"' + b"x" * large_bodies.LARGE_BODY_BYTES + b'"}'
    return asyncio.run(request_fields(raw))[1], asyncio.run(request_fields(padded))[1]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"gpt-image-1-mini","prompt":"a fox","MODEL":"gpt-image-1"}',
        b'{"model":"gpt-image-1-mini","\\u004dodel":"gpt-image-1"}',
        b'{"model":"gpt-image-1-mini","n":NaN,"MODEL":"gpt-image-1","x":"\xff\x01"}',  # hostile values beside
        b'{"MODEL":"gpt-image-1","prompt":"a fox"}',  # none written "model": Python's decoder reads no model
        b'{"model":null,"Model":"gpt-image-1"}',
        b'{"model":"gpt-image-1-mini","MODEL":5}',  # Go refuses the number: no model it would serve
    ],
)
def test_a_model_key_in_other_letter_cases_that_readers_take_differently_leaves_the_model_unknown(raw):
    # Go's encoding/json matches keys in any case, the last one winning: it would serve gpt-image-1, five
    # times the price of the gpt-image-1-mini Python's decoder reads.
    assert request_model_and_stream(raw) == (None, False)
    assert _both_paths(raw) == (None, None)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Model":"gpt-image-1","model":"gpt-image-1-mini"}',  # the exact key last: Go takes it too
        b'{"model":"gpt-image-1-mini","MODEL":null}',  # Go leaves a field as it was for null
        b'{"MODEL":"gpt-image-1-mini","model":"gpt-image-1-mini","mOdel":"gpt-image-1-mini"}',
    ],
)
def test_a_model_key_in_other_letter_cases_that_every_reader_takes_alike_leaves_the_model_read(raw):
    assert _both_paths(raw) == ("gpt-image-1-mini", "gpt-image-1-mini")


def test_a_model_met_before_the_scan_budget_ran_out_stays_unknown():
    # Every decoder reads the last copy, past the point where the scan stopped looking.
    strings = b'"",' * large_bodies.MAX_SCANNED_TOKENS
    body = b'{"model":"gpt-image-1-mini","list":[' + strings[:-1] + b'],"model":"gpt-image-1"}'
    assert json.loads(body)["model"] == "gpt-image-1"
    assert scan_request(body)[1] is None
    fewer = b'{"model":"gpt-image-1-mini","list":[' + strings[: len(strings) // 2 - 1] + b'],"model":"gpt-image-1"}'
    assert scan_request(fewer)[1] == "gpt-image-1"


def test_other_keys_that_look_like_model_leave_it_read():
    raw = b'{"model":"gpt-image-1","models":"x","MODE":"y","Modell":"z"}'
    padded = raw[:-1] + b',"pad":"' + b"x" * large_bodies.LARGE_BODY_BYTES + b'"}'
    assert request_model_and_stream(raw) == scan_top_level(padded) == ("gpt-image-1", False)
