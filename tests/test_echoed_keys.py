"""Keys a provider echoes, or a client misplaces, stay out of records and log lines whatever their shape:
the operator's configured keys (sent or not) and a key in the query string, as Azure's ``?api-key=``."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from ccproxy_core.key_masking import SHORTEST_MASKED_KEY, query_secrets, without_key_pieces

from .raw_upstream import json_answer, raw_upstream

OPERATOR_KEY = "OPERATORPLAINKEY0123456789"  # not shaped like any provider's key: only an exact match finds it
QUERY_KEY = "QUERYPLAINKEY9876543210"
OPENAI_KEY = "OPENAIPLAINKEY5555666677"
REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"anthropic-version": "2023-06-01"}


def message(service_tier: str, model: str | None = "claude-haiku-4-5") -> bytes:
    usage = {"input_tokens": 10, "output_tokens": 5, "service_tier": service_tier}
    body = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "stop_reason": "end_turn"}
    return json.dumps({**body, "usage": usage} | ({"model": model} if model else {})).encode()


ANSWERS = {
    # A careless gateway reports the key it was sent as the tier it served at.
    "tier": json_answer(b"200 OK", message(OPERATOR_KEY)),
    "error": json_answer(
        b"401 Unauthorized",
        json.dumps(
            {"type": "error", "error": {"type": "authentication_error", "message": f"key {QUERY_KEY} is not valid"}}
        ).encode(),
        b"request-id: req_" + QUERY_KEY.encode() + b"\r\n",
    ),
}


def test_a_configured_key_reported_as_a_tier_stays_out_of_the_unpriced_tier_warning(proxy_factory, recorder, caplog):
    caplog.set_level(logging.WARNING, logger="ccproxy_core.accounting.cost")
    with raw_upstream({"tier": ANSWERS["tier"]}) as upstream:
        proxy = proxy_factory(
            upstream_url=upstream.url, plugins=[recorder], upstream={"anthropic_api_key": OPERATOR_KEY}
        )
        answer = httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "tier"})
        [record] = recorder.wait_for_ends(1)
    assert answer.status_code == 200 and record.service_tier == "***"
    warned = [r.getMessage() for r in caplog.records if "served at service tier" in r.getMessage()]
    # Before: "... served at service tier 'OPERATORPLAINKEY0123456789' ...", at WARNING, on stderr.
    assert warned and all(OPERATOR_KEY not in line and "'***'" in line for line in warned)


def test_a_key_in_the_query_string_echoed_by_the_provider_is_masked_in_the_record(proxy_factory, recorder):
    with raw_upstream({"error": ANSWERS["error"]}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        for query in (f"key={QUERY_KEY}", f"ap%69_key={QUERY_KEY}"):  # a name percent-encoded hides its word
            url = f"{proxy.url}/v1/messages?{query}"
            headers = {**HEADERS, "x-api-key": "sk-ant-client-key-000", "x-raw": "error"}
            assert httpx.post(url, json=REQUEST, headers=headers).status_code == 401
        records = recorder.wait_for_ends(2)
    for record in records:
        # Before: "key *** QUERYPLAINKEY9876543210 is not valid", and the request id "req_QUERYPLAINKEY...".
        shown = json.dumps(record.to_dict(), default=str)
        assert QUERY_KEY not in shown and record.upstream_request_id == "req_***"


def test_a_configured_key_not_sent_stays_out_of_the_unknown_model_warning(proxy_factory, recorder, caplog):
    caplog.set_level(logging.WARNING, logger="ccproxy_core.accounting.cost")
    # The answer names the model asked for, as a provider does: it is the one priced, and warned about.
    with raw_upstream({"tier": json_answer(b"200 OK", message("standard", model=f"claude-{OPENAI_KEY}"))}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], upstream={"openai_api_key": OPENAI_KEY})
        body = {**REQUEST, "model": f"claude-{OPENAI_KEY}"}
        headers = {**HEADERS, "x-api-key": "sk-ant-client-key-000", "x-raw": "tier"}
        assert httpx.post(proxy.url + "/v1/messages", json=body, headers=headers).status_code == 200
        recorder.wait_for_ends(1)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "No price known for model" in logged and OPENAI_KEY not in logged


def test_query_secrets_are_the_decoded_values_of_secret_looking_names():
    raw = b"beta=true&api-key=" + QUERY_KEY.encode() + b"&%61pi_%6Bey=ab%2Bcdefghij&token=short&max_tokens=123456789"
    assert query_secrets(raw, SHORTEST_MASKED_KEY) == (QUERY_KEY, "ab%2Bcdefghij", "ab+cdefghij")
    assert query_secrets(b"beta=true", SHORTEST_MASKED_KEY) == ()


def test_a_query_key_echoed_as_it_was_sent_percent_encoded_is_masked(proxy_factory, recorder):
    sent = "Ab%2Bcd%3DEfgh12345"  # as the client wrote it in its URL; decoded, "Ab+cd=Efgh12345"
    body = {"error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}}
    with raw_upstream({"": json_answer(b"401 Unauthorized", json.dumps(body).encode())}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        url = f"{proxy.url}/v1/chat/completions?key={sent}"
        assert httpx.post(url, json={"model": "gpt-4o", "messages": []}).status_code == 401
        [record] = recorder.wait_for_ends(1)
    assert record.error_message is not None and "Efgh12345" not in record.error_message


def test_query_secrets_of_hostile_queries_are_bounded_text_and_never_fail():
    hostile = b"key=\xff\xfe" + b"A" * 20 + b"&token=%00%0d%0aNaN-" + b"B" * 10 + b"&" * 100_000 + b"=&==&%zz"
    found = query_secrets(hostile, SHORTEST_MASKED_KEY)
    assert "\ufffd\ufffd" + "A" * 20 in found  # bytes that are not UTF-8 read as the record reads them
    assert "\x00\r\nNaN-" + "B" * 10 in found  # control characters decoded, as a provider may echo them
    assert all(len(value) >= SHORTEST_MASKED_KEY for value in found)


BEARER_KEY = "gwBearer-Tq4Lz8Wm2Rx7Kc5Yp"
PIECES = (BEARER_KEY[:-3] + "...", "..." + BEARER_KEY[3:], BEARER_KEY.upper(), BEARER_KEY.lower(), BEARER_KEY[9:21])
PIECES_ERROR = json.dumps(
    {"error": {"message": "Incorrect API key provided: " + " or ".join(PIECES), "type": f"bad_{BEARER_KEY.upper()}"}}
).encode()


def test_a_provider_error_quoting_the_key_cut_short_or_in_other_capitals_keeps_no_piece_of_it(proxy_factory, recorder):
    with raw_upstream({"pieces": json_answer(b"401 Unauthorized", PIECES_ERROR)}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {"authorization": f"Bearer {BEARER_KEY}", "x-raw": "pieces"}
        answer = httpx.post(proxy.url + "/v1/chat/completions", json={"model": "gpt-5"}, headers=headers)
        [record] = recorder.wait_for_ends(1)
    assert answer.status_code == 401 and answer.content == PIECES_ERROR  # the client's answer is the provider's
    # Before: "Incorrect API key provided: gwBearer-Tq4Lz8Wm2R... or ...earer-Tq4Lz8Wm2Rx7Kc5Yp or GWBEARER-...".
    secret = BEARER_KEY.lower()
    for text in (record.error_message, record.error_type):
        lowered = text.lower()
        runs = [lowered[i : i + SHORTEST_MASKED_KEY] for i in range(len(lowered) - SHORTEST_MASKED_KEY + 1)]
        assert not [run for run in runs if run in secret], text
    assert record.error_message == "Incorrect API key provided: ***... or ...*** or *** or *** or ***"


ANTHROPIC_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-QQQQ"


@pytest.mark.parametrize(
    ("keys", "text", "kept"),
    [
        # A character whose lower case is two ("\u0130") once turned the search off for the whole text.
        ((ANTHROPIC_KEY,), "key ...VWXYZ0123456789-QQQQ (\u0130) and AbCdEfGhIjKl", "key ...*** (\u0130) and ***"),
        # Two keys' pieces overlapping: once, the words after the mask were cut too.
        (
            ("sk-ant-api03-SHAREDPREFIX0123456789abcdefXYZ", "sk-ant-api03-SHAREDPREFIX0123456789zzzzzzzzzz"),
            "key ending SHAREDPREFIX0123 is invalid, see the docs",
            "key ending *** is invalid, see the docs",
        ),
        # A stretch of the key in lower case letters alone is as much the key's as the rest.
        (("sk-ant-api03-X1abcdefghijklmnopY2zzzzQQ",), "cut X1abcdefghijklmnop, or hijklmnop", "cut ***, or ***"),
        # Placeholders and plain keys share words with error text: masked whole only, never in pieces.
        (("sk-no-key-required",), "messages: Field required", "messages: Field required"),
        (("test-key-12345678",), "Invalid test-key provided; order 12345678 failed", None),
        (("this-is-our-team-placeholder-key",), "the team placeholder is set", None),
    ],
)
def test_key_pieces_are_masked_where_they_look_random_and_words_are_kept(keys, text, kept):
    assert without_key_pieces(keys, text) == (text if kept is None else kept)


SK_OPERATOR_KEY = "sk-ant-api03-Op1Xq7Zr2Lm9Wd4Tn8Bv3Hk6Jp0Fs5Gy1Ce7Ua2Ni4Ob9Mx-AAAAAA"


@pytest.mark.parametrize("echoed", [SK_OPERATOR_KEY.upper(), SK_OPERATOR_KEY[20:34]])
def test_the_operator_s_key_echoed_as_the_model_in_capitals_or_in_part_stays_out_of_the_warning(
    proxy_factory, recorder, caplog, echoed
):
    # Before: "No price known for model 'SK-ANT-API03-OP1XQ7ZR2...'", the whole key, at WARNING.
    caplog.set_level(logging.WARNING, logger="ccproxy_core.accounting.cost")
    with raw_upstream({"echo": json_answer(b"200 OK", message("standard", model=echoed))}) as upstream:
        proxy = proxy_factory(
            upstream_url=upstream.url, plugins=[recorder], upstream={"anthropic_api_key": SK_OPERATOR_KEY}
        )
        assert httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "echo"}).is_success
        recorder.wait_for_ends(1)
    logged = "\n".join(r.getMessage() for r in caplog.records if "No price known" in r.getMessage())
    assert logged and without_key_pieces((SK_OPERATOR_KEY,), logged) == logged  # no piece of it left


def test_a_configured_key_made_of_words_leaves_the_reported_model_whole(proxy_factory, recorder):
    # A key an operator chose (a local gateway's) shares runs of characters with model names: pieces of it
    # must not be looked for in the model a provider reports, or every record would say "***20250929".
    served = "claude-sonnet-4-5-20250929"
    with raw_upstream({"served": json_answer(b"200 OK", message("standard", model=served))}) as upstream:
        proxy = proxy_factory(
            upstream_url=upstream.url,
            plugins=[recorder],
            upstream={"anthropic_api_key": "sk-team-claude-sonnet-4-5-Prod"},
        )
        headers = {**HEADERS, "x-api-key": "sk-ant-client-key-000", "x-raw": "served"}
        assert httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    assert (record.response_model, record.service_tier) == (served, "standard")


def test_a_clients_key_made_of_words_leaves_the_model_it_shares_words_with_whole(proxy_factory, recorder):
    # The key's rest after "sk-team-" begins with the model's name: it is no secret part to look for alone.
    with raw_upstream({"served": json_answer(b"200 OK", message("standard", model="claude-sonnet-4-5"))}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**HEADERS, "x-api-key": "sk-team-claude-sonnet-4-5-Prod", "x-raw": "served"}
        request = {**REQUEST, "model": "claude-sonnet-4-5"}
        assert httpx.post(proxy.url + "/v1/messages", json=request, headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    assert (record.model, record.response_model) == ("claude-sonnet-4-5", "claude-sonnet-4-5")


def test_a_key_echoed_in_a_batch_result_s_model_stays_out_of_the_warning(proxy_factory, recorder, caplog):
    # Before, batch results were priced without the request's keys: "No price known for model 'claude-3f9a...'".
    client_key = "3f9a1c7e5b2d4f608a9c1e3b5d7f9a2c"  # an Azure-style key, no provider's shape
    result = {"type": "succeeded", "message": json.loads(message("batch", model=f"claude-{client_key}"))}
    line = json.dumps({"custom_id": "r1", "result": result}).encode() + b"\n"
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/binary\r\ncontent-length: %d\r\n\r\n" % len(line) + line
    caplog.set_level(logging.WARNING, logger="ccproxy_core.accounting.cost")
    with raw_upstream({"results": answer}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**HEADERS, "x-api-key": client_key, "x-raw": "results"}
        assert httpx.get(proxy.url + "/v1/messages/batches/msgbatch_1/results", headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    logged = "\n".join(r.getMessage() for r in caplog.records if "No price known" in r.getMessage())
    assert logged and client_key not in logged and client_key not in json.dumps(record.to_dict(), default=str)


def test_the_request_s_key_echoed_whole_in_other_capitals_as_the_model_or_tier_is_masked_in_the_record(
    proxy_factory, recorder
):
    client_key = "Zq8vR2mN5tY7wK3pL9xB4cF6hJ1dS0gA"  # no provider's shape: found as the request's own
    answer = json_answer(b"200 OK", message(client_key.upper(), model="claude-" + client_key.lower()))
    with raw_upstream({"echo": answer}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**HEADERS, "x-api-key": client_key, "x-raw": "echo"}
        assert httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    # Before: stored as sent, the whole key in lower case and in capitals.
    assert (record.response_model, record.service_tier) == ("claude-***", "***")


@pytest.mark.parametrize("configured", [False, True], ids=["client-key", "operator-key"])
def test_a_long_key_echoed_where_the_record_cuts_the_value_leaves_no_start_of_it(proxy_factory, recorder, configured):
    # A token of no provider's shape (an OAuth or gateway token), longer than every cap its echoes meet.
    key = "tok_" + "Zq8vR2mN5tY7wK3pL9xB4cF6hJ1dS0gA" * 12
    body = json.loads(message(key))
    body["stop_reason"] = key
    answer = json_answer(b"200 OK", json.dumps(body).encode(), b"request-id: " + key.encode() + b"\r\n")
    with raw_upstream({"echo": answer}) as upstream:
        settings = {"upstream": {"anthropic_api_key": key}} if configured else {}
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder], **settings)
        headers = {**HEADERS, "x-raw": "echo"} | ({} if configured else {"x-api-key": key})
        assert httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    # Before: the first 31 characters of the key as the tier and stop reason, the first 127 as the request id.
    assert (record.service_tier, record.finish_reason, record.upstream_request_id) == ("***…", "***…", "***…")
    assert key[:12] not in json.dumps(record.to_dict())


def test_a_long_key_echoed_in_capitals_where_the_record_cuts_the_value_leaves_no_start_of_it(proxy_factory, recorder):
    key = "gwLiveKey_7hQ2mZ9xV4bN8cR1tY6uP3sD5fG0jK2lA9"  # a gateway's token, of no provider's shape
    body = json.loads(message("premium-" + key.upper()))
    body["usage"]["speed"] = key.upper()
    with raw_upstream({"echo": json_answer(b"200 OK", json.dumps(body).encode())}) as upstream:
        proxy = proxy_factory(upstream_url=upstream.url, plugins=[recorder])
        headers = {**HEADERS, "x-raw": "echo", "x-api-key": key}
        assert httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers=headers).is_success
        [record] = recorder.wait_for_ends(1)
    # Before: "premium-GWLIVEKEY_7HQ2MZ9XV4BN8…" and "GWLIVEKEY_7HQ2MZ9XV4BN8CR1TY6UP…".
    assert (record.service_tier, record.speed) == ("premium-***…", "***…")
