"""Attribution at its edges: keys in tag names and at a value's cut, the operator's names, odd bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from ccproxy_core.accounting.attribution import Attributor, key_fingerprint
from ccproxy_core.accounting.attribution.clean import clean_text
from ccproxy_core.plugin_host.key_groups import configured_key_names
from ccproxy_core.runtime.attribution_settings import AttributionSettings

AZURE_KEY = "0123456789abcdef0123456789abcdef"  # Azure's keys are 32 hex digits: no provider's shape
OTHER_KEY = "sk-ant-api03-SOMEONE-ELSES-0123456789abcdefghijklmnop"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_tag_named_by_the_requests_own_key_is_left_out(proxy, recorder):
    headers = {
        "api-key": AZURE_KEY,
        f"x-ccproxy-tag-{AZURE_KEY}": "v",
        f"x-ccproxy-tag-team-{AZURE_KEY[4:20]}": "v",  # a run of the key inside a longer name
        "x-ccproxy-tag-team": "payments",
    }
    response = httpx.post(proxy.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert record.tags == {"team": "payments"}
    assert record.api_key_id == key_fingerprint(AZURE_KEY)


def test_a_foreign_key_cut_at_a_values_cap_leaves_no_part_of_itself(proxy, recorder):
    body = {**CHAT, "safety_identifier": "z" * 110 + OTHER_KEY}
    headers = {
        "authorization": "Bearer sk-proj-own-0123456789abcdefghijklmn",
        "x-ccproxy-session": "s" * 120 + OTHER_KEY,
    }
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert record.end_user == "z" * 110 + "sk-***"
    assert record.session_id == "s" * 120 + "sk-***"
    for value in (record.end_user, record.session_id):
        assert "api03" not in value and len(value) <= 128


def test_the_operators_key_names_and_projects_are_made_safe_as_a_clients_are():
    fingerprint = key_fingerprint("sk-alice-0123456789")
    settings = AttributionSettings(keys={fingerprint: {"name": "ali\u202ece\x07", "project": 'cfg\x01"proj'}})
    raw = [(b"x-api-key", b"sk-alice-0123456789")]
    dims = Attributor(settings).read(raw, None, None)
    assert (dims.api_key_name, dims.project) == ("ali\\u202ece\\x07", 'cfg\\x01"proj')


def test_a_key_pasted_as_a_keys_name_is_masked_wherever_the_name_is_shown():
    fingerprint = key_fingerprint("sk-alice-0123456789")
    settings = AttributionSettings(keys={fingerprint: {"name": OTHER_KEY, "project": OTHER_KEY}})
    dims = Attributor(settings).read([(b"x-api-key", b"sk-alice-0123456789")], None, None)
    # Before: the name was stored, listed and grouped by in full (the project was masked).
    assert (dims.api_key_name, dims.project) == ("sk-***", "sk-***")
    assert configured_key_names(settings) == {fingerprint: "sk-***"}


@pytest.mark.parametrize(
    "name", ["desk-admin-console-production-eu", "task-ant-colony-simulation-v2", "risk-or-compliance-reporting-bot"]
)
def test_a_name_that_only_holds_a_keys_prefix_inside_a_word_is_kept(name):
    fingerprint = key_fingerprint("sk-alice-0123456789")
    settings = AttributionSettings(keys={fingerprint: {"name": name, "project": name}})
    dims = Attributor(settings).read([(b"x-api-key", b"sk-alice-0123456789")], None, None)
    assert (dims.api_key_name, dims.project) == (name, name)  # before: "desk-***", two keys named alike


def test_a_long_plain_key_name_is_cut_like_a_clients_value_and_named_alike_in_reads():
    fingerprint = key_fingerprint("sk-alice-0123456789")
    settings = AttributionSettings(keys={fingerprint: "n" * 200 + "\u202e"})
    dims = Attributor(settings).read([(b"x-api-key", b"sk-alice-0123456789")], None, None)
    assert dims.api_key_name == "n" * 128
    assert configured_key_names(settings) == {fingerprint: "n" * 128}  # the name analytics and reports show


@pytest.mark.parametrize(
    "value",
    [
        "\x01" * 26 + " " + OTHER_KEY,  # escaping lengthens the text: the key reaches the cut only then
        "\u200b" * 17 + " " + OTHER_KEY,
        " ".join(["sk-proj-" + "Q" * 62] * 5) + " xxxxxx" + OTHER_KEY,  # masking shortens it: more comes in
    ],
)
def test_no_part_of_a_key_is_left_at_the_cut_however_the_text_moves(value):
    cleaned = clean_text(value, 128)
    assert cleaned.endswith("sk-***") and "api03" not in cleaned and len(cleaned) <= 128


@pytest.mark.parametrize(
    ("key", "names", "kept"),
    [
        ("localkey99", ["localkey99"], []),  # a short key is a key all the same
        (AZURE_KEY, [AZURE_KEY[:11], AZURE_KEY[11:22], AZURE_KEY[22:]], []),  # split over three names
        ("sk-ant-api03-" + "S3cr3t" * 10, ["sk-ant-api03-team", "team"], ["sk-ant-api03-team", "team"]),
    ],
)
def test_tag_names_holding_part_of_the_requests_key_are_left_out(proxy, recorder, key, names, kept):
    headers = {"api-key": key, **{f"x-ccproxy-tag-{name}": "v" for name in names}}
    httpx.post(proxy.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert sorted(record.tags) == sorted(kept)


def test_claude_codes_user_id_forms_name_a_session_only_on_an_anthropic_request():
    legacy = "user_abc123_account_acc-legacy-2_session_sess-leg-2"
    body = {"model": "gpt-4o-mini", "metadata": {"user_id": legacy}}
    openai = Attributor().read([], body, None, "openai")
    assert (openai.session_id, openai.end_user) == (None, legacy)
    anthropic = Attributor().read([], {**body, "model": "claude-haiku-4-5"}, None, "anthropic")
    assert (anthropic.session_id, anthropic.end_user) == ("sess-leg-2", "acc-legacy-2")


def test_a_small_body_with_bytes_that_are_not_utf8_keeps_its_model_and_end_user(proxy, recorder):
    body = json.dumps({**CHAT, "user": "abXYcd"}).encode().replace(b"XY", b"\xff\xfe")
    # The mock refuses what is not JSON, as a provider would; the record still says what was asked for.
    response = httpx.post(
        proxy.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}, timeout=10
    )
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == response.status_code
    assert (record.model, record.end_user) == ("gpt-4o-mini", "ab\ufffd\ufffdcd")


def test_an_openai_request_is_attributed_to_the_bearer_key_openai_bills():
    # OpenAI reads only Authorization: a client's own x-api-key beside it must not take its spend
    # (and its key budget) away from the key billed.
    raw = [(b"authorization", b"Bearer sk-proj-billed-0123456789"), (b"x-api-key", b"junk-not-a-key")]
    openai = Attributor().read(raw, None, None, "openai")
    assert openai.api_key_id == key_fingerprint("sk-proj-billed-0123456789")  # before: junk-not-a-key's
    anthropic = Attributor().read(raw, None, None, "anthropic")
    assert anthropic.api_key_id == key_fingerprint("junk-not-a-key")  # Anthropic reads x-api-key first
    azure = Attributor().read([(b"api-key", b"azure-key-0123456789")], None, None, "openai")
    assert azure.api_key_id == key_fingerprint("azure-key-0123456789")  # Azure OpenAI bills its api-key


@pytest.mark.parametrize(
    ("service_type", "billed", "ignored"),
    [
        ("openai", (b"authorization", b"Bearer sk-proj-billed-0123456789"), (b"api-key", b"anything-else")),
        ("anthropic", (b"authorization", b"Bearer sk-ant-oat01-billed-0123456789"), (b"api-key", b"junk1")),
        ("anthropic", (b"authorization", b"Bearer sk-ant-oat01-billed-0123456789"), (b"x-goog-api-key", b"junk2")),
        ("anthropic", (b"x-api-key", b"sk-ant-api03-billed-0123456789"), (b"api-key", b"junk3")),
        # A browser's Realtime socket sends its key as a subprotocol: an x-api-key beside it took the spend.
        (
            "openai",
            (b"sec-websocket-protocol", b"realtime, openai-insecure-api-key.sk-proj-billed-0123456789"),
            (b"x-api-key", b"sk-proj-other-0123456789"),
        ),
        ("openai", (b"authorization", b"Bearer\tsk-proj-billed-0123456789"), (b"x-api-key", b"junk4")),
    ],
)
def test_a_key_in_a_header_the_provider_ignores_does_not_take_the_spend(service_type, billed, ignored):
    # Before, an extra api-key header moved the spend off the key billed, and out of that key's budget.
    found = Attributor().read([billed, ignored], None, None, service_type)
    key = billed[1].decode().removeprefix("Bearer").strip().removeprefix("realtime, openai-insecure-api-key.")
    assert found.api_key_id == key_fingerprint(key)


def test_a_request_sent_with_the_operators_key_is_attributed_to_it():
    # ccproxy sends the configured key for a client that sends none: that key is billed. Before: no key.
    attributor = Attributor(sent_for={"openai": "sk-proj-operator-0123456789"})
    keyless = attributor.read([(b"content-type", b"application/json")], None, None, "openai")
    assert keyless.api_key_id == key_fingerprint("sk-proj-operator-0123456789")
    assert attributor.read([], None, None, "anthropic").api_key_id is None  # no key configured for Anthropic
    own = attributor.read([(b"authorization", b"Basic dXNlcjpwYXNz")], None, None, "openai")
    assert own.api_key_id is None  # the client sent a credential of its own: the operator's is not sent
