"""A client's key repeated in a field of its own choosing is masked there too, from the moment it arrives.

The request sends its key in ``x-api-key`` or ``Authorization`` and, by mistake or on purpose,
again as its session, end user, project, tag, User-Agent or request id: what request hooks
see, the record, the stored row and the metrics labels all hold ``***`` in its place.
"""

from __future__ import annotations

import json

import httpx
import pytest

from ccproxy_core.testing import wait_until

ANTHROPIC_KEY = "sk-ant-api03-REPEATED-0123456789abcdefghijklmnop"
OPENAI_KEY = "sk-proj-REPEATED-0123456789abcdefghijklmnopqrstu"
ATTRIBUTED = ("session_id", "end_user", "project", "client_name", "client_version")
CLIENT_FIELDS = ("user_agent", "client_request_id", *ATTRIBUTED)


def everywhere(key: str) -> dict[str, str]:
    return {
        "user-agent": f"{key}/{key}",
        "x-request-id": f"req-{key}",
        "x-ccproxy-session": f"s-{key}",
        "x-ccproxy-project": f"p-{key}",
        "x-ccproxy-tag-team": f"t-{key}",
    }


def assert_no_key(key: str, item) -> None:
    for name in CLIENT_FIELDS:
        value = getattr(item, name)
        assert value is None or key not in value, (name, value)
    assert all(key not in value for value in item.tags.values()), item.tags


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        (
            "/v1/messages",
            {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01", **everywhere(ANTHROPIC_KEY)},
            {"model": "claude-haiku-4-5", "max_tokens": 10, "metadata": {"user_id": ANTHROPIC_KEY}},
        ),
        (
            "/v1/chat/completions",
            {"authorization": f"Bearer {OPENAI_KEY}", **everywhere(OPENAI_KEY)},
            {"model": "gpt-4o-mini", "user": f"u-{OPENAI_KEY}"},
        ),
    ],
)
def test_a_key_repeated_in_the_clients_own_fields_is_masked_for_hooks_and_in_the_record(
    proxy, recorder, path, headers, body
):
    key = headers.get("x-api-key") or headers["authorization"].removeprefix("Bearer ")
    body = {**body, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(proxy.url + path, content=json.dumps(body), headers=headers, timeout=10)
    assert response.status_code == 200
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    assert_no_key(key, context)
    assert_no_key(key, record)
    assert (record.project, record.session_id, record.tags["team"]) == ("p-***", "s-***", "t-***")
    assert record.user_agent == "***/***" and record.client_request_id == "req-***"


def test_every_key_a_request_sends_is_masked_not_only_the_one_it_is_attributed_to(proxy, recorder):
    headers = {
        "x-api-key": ANTHROPIC_KEY,
        "authorization": f"Bearer {OPENAI_KEY}",
        "anthropic-version": "2023-06-01",
        **everywhere(OPENAI_KEY),
    }
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10).status_code == 200
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    assert_no_key(OPENAI_KEY, context)
    assert_no_key(OPENAI_KEY, record)


def test_a_key_repeated_in_a_field_never_reaches_the_store_or_the_metrics(proxy_factory, tmp_path):
    settings = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "metrics_endpoint_enabled": True}
    proxy = proxy_factory(observability=settings | {"log_flush_interval_seconds": 0.05})
    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01", **everywhere(ANTHROPIC_KEY)}
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10).status_code == 200
    wait_until(lambda: httpx.get(proxy.url + "/logs/query", timeout=10).json()["results"])
    rows = httpx.get(proxy.url + "/logs/query", timeout=10).json()["results"]
    assert len(rows) == 1 and rows[0]["project"] == "p-***"
    assert "REPEATED" not in json.dumps(rows) and "REPEATED" not in httpx.get(proxy.url + "/metrics").text


def test_the_operators_key_repeated_in_a_clients_field_is_masked_too(proxy_factory, recorder):
    # A client that sends no key is sent with the operator's (UPSTREAM__ANTHROPIC_API_KEY): that key,
    # in a field of the client's, must not be kept either.
    proxy = proxy_factory(plugins=[recorder], upstream={"anthropic_api_key": ANTHROPIC_KEY})
    headers = {"anthropic-version": "2023-06-01", **everywhere(ANTHROPIC_KEY)}
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=10).status_code == 200
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    assert_no_key(ANTHROPIC_KEY, context)
    assert_no_key(ANTHROPIC_KEY, record)
    assert (record.session_id, record.user_agent) == ("s-***", "***/***")


OTHER_KEY = "sk-proj-SOMEONE-ELSES-0123456789abcdefghijklmnopqrst"


def test_another_key_shaped_as_the_providers_are_is_masked_in_the_model_and_the_clients_fields(proxy_factory, recorder):
    # Not the request's own key, so only its shape gives it away: a key pasted as the model, or
    # as a session, must not be stored, shown in /metrics or handed to hooks either.
    settings = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "metrics_endpoint_enabled": True}
    proxy = proxy_factory(plugins=[recorder], observability=settings | {"log_flush_interval_seconds": 0.05})
    headers = {"authorization": "Bearer sk-test-own-key-0123456789", **everywhere(OTHER_KEY)}
    body = {"model": OTHER_KEY, "user": f"u-{OTHER_KEY}", "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    for item in (context, record):
        assert_no_key(OTHER_KEY, item)
        assert item.model == "sk-***" and item.session_id == "s-sk-***" and item.tags["team"] == "t-sk-***"
    wait_until(lambda: httpx.get(proxy.url + "/logs/query", timeout=10).json()["results"])
    rows = httpx.get(proxy.url + "/logs/query", timeout=10).json()["results"]
    assert "SOMEONE" not in json.dumps(rows) and "SOMEONE" not in httpx.get(proxy.url + "/metrics").text


def test_a_model_name_with_sk_inside_a_word_is_left_alone(proxy, recorder):
    body = {"model": "gpt-4o-task-model", "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-test"}, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert record.model == "gpt-4o-task-model"


def test_names_that_merely_hold_sk_are_kept_and_a_key_inside_a_word_is_not(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder])
    fine_tune = "ft:gpt-4o-mini-2024-07-18:acme:sk-triage:AbC12345"  # OpenAI names fine-tunes by a suffix
    headers = {
        "authorization": "Bearer sk-test-own-key-0123456789",
        "x-ccproxy-project": "eshop-sk-prod",
        "x-ccproxy-session": f"alice_{OTHER_KEY}",
        "x-ccproxy-tag-team": "run-sk-2025-01",
        "x-ccproxy-tag-app": "kiosk-proj-frontend",
        f"x-ccproxy-tag-{OTHER_KEY[:30]}": "named-by-a-key",
        "x-ccproxy-tag-sk-None-abcDEF12abcDEF12abcDEF12": "named-by-a-key",  # names arrive lowercased
    }
    body = {"model": fine_tune, "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    tags = {"team": "run-sk-2025-01", "app": "kiosk-proj-frontend"}
    assert (record.model, record.project, record.tags) == (fine_tune, "eshop-sk-prod", tags)
    assert record.session_id == "alice_sk-***"


def test_a_key_after_a_percent_escape_or_glued_to_a_word_is_masked(proxy_factory, recorder):
    # A query string and a header keep "%3D" and "%20" as sent: the key after them starts no word.
    proxy = proxy_factory(plugins=[recorder])
    headers = {
        "authorization": "Bearer sk-test-own-key-0123456789",
        "user-agent": f"mytool/1.0 (key%3D{OTHER_KEY})",
        "x-ccproxy-session": f"tok=Bearer%20{OTHER_KEY}",
        "x-ccproxy-project": f"p1{OTHER_KEY}",
    }
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + f"/v1/chat/completions?note=key%3D{OTHER_KEY}", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert (record.user_agent, record.session_id, record.project) == (
        "mytool/1.0 (key%3Dsk-***)",
        "tok=Bearer%20sk-***",
        "p1sk-***",
    )
    assert record.query == "note=key%3Dsk-***"


def test_a_key_shape_with_its_prefix_in_capitals_is_masked_too(proxy_factory, recorder):
    # The body after the prefix is the secret: before, "SK-ANT-api03-..." was kept whole.
    proxy = proxy_factory(plugins=[recorder])
    body_part = "api03-CAPITALS0123456789abcdefghij"
    headers = {
        "authorization": "Bearer sk-test-own-key-0123456789",
        "user-agent": f"mytool/1.0 SK-ANT-{body_part}",
        "x-ccproxy-project": f"Sk-Proj-{body_part}",
        "x-ccproxy-session": "SK-abcdefghijklmnopqrstuvwxyz0123",
    }
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    for item in (context, record):
        assert (item.user_agent, item.project, item.session_id) == ("mytool/1.0 sk-***", "sk-***", "sk-***")


def test_names_in_capitals_that_merely_hold_a_key_prefix_are_kept(proxy_factory, recorder):
    # "RISK-ADMIN-..." holds "SK-ADMIN-" inside a word: a name, not a key.
    proxy = proxy_factory(plugins=[recorder])
    headers = {
        "authorization": "Bearer sk-test-own-key-0123456789",
        "x-ccproxy-project": "RISK-ADMIN-dashboard-production-eu",
        "x-ccproxy-tag-team": "TASK-NONE-assigned-to-backlog-queue",
    }
    body = {
        "model": "gpt-4o-mini",
        "user": "DESK-OR-OFFICE-automation-pipeline",
        "messages": [{"role": "user", "content": "hi"}],
    }
    httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert (record.project, record.end_user, record.tags["team"]) == (
        "RISK-ADMIN-dashboard-production-eu",
        "DESK-OR-OFFICE-automation-pipeline",
        "TASK-NONE-assigned-to-backlog-queue",
    )


OAUTH_TOKEN = "sk-ant-oat01-REPEATED-0123456789abcdefghijklmnopqrstuvwxyzABCD"
ROUTER_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("path", "key", "credential"),
    [
        ("/v1/messages", ANTHROPIC_KEY, {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}),
        ("/v1/messages", OAUTH_TOKEN, {"authorization": f"Bearer {OAUTH_TOKEN}", "anthropic-version": "2023-06-01"}),
        ("/v1/chat/completions", OPENAI_KEY, {"authorization": f"Bearer {OPENAI_KEY}"}),
        ("/v1/chat/completions", ROUTER_KEY, {"authorization": f"Bearer {ROUTER_KEY}"}),
    ],
)
def test_a_keys_secret_part_sent_without_its_prefix_is_masked_too(proxy, recorder, path, key, credential):
    # "sk-ant-api03-", "sk-proj-", "sk-or-v1-" are the same for every key of their kind: what follows is the secret.
    secret = key.split("-", 3)[-1] if key.startswith(("sk-ant-", "sk-or-")) else key.removeprefix("sk-proj-")
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**credential, **everywhere(secret)}
    assert httpx.post(proxy.url + path + f"?note={secret}", json=body, headers=headers, timeout=10).status_code == 200
    [record] = recorder.wait_for_ends(1)
    [context] = recorder.starts
    assert_no_key(secret, context)
    assert_no_key(secret, record)
    assert (record.project, record.session_id, record.tags["team"]) == ("p-***", "s-***", "t-***")
    assert record.query == "note=***"


PLAIN_KEY = "Zq7xTeamGatewaySecret0123456789abcdefghij"  # no provider's shape: only the request's own key masks it


@pytest.mark.parametrize(
    "credentials",
    [
        [("authorization", f"Token {PLAIN_KEY}")],  # a gateway's scheme, not Bearer or Basic
        [("authorization", PLAIN_KEY)],  # no scheme at all
        [("authorization", f"Bearer {PLAIN_KEY} prod-key")],  # a label after it, as a .env line may carry
        [("authorization", f"Token {PLAIN_KEY} prod-key")],
        [("x-api-key", "sk-ant-api03-FIRST-0123456789abcdefghijklmnop"), ("x-api-key", PLAIN_KEY)],  # the second of two
    ],
    ids=["token-scheme", "no-scheme", "bearer-labelled", "token-labelled", "second-copy"],
)
def test_a_key_in_any_authorization_scheme_or_a_second_header_is_masked_everywhere(proxy, recorder, credentials):
    headers = [*credentials, ("anthropic-version", "2023-06-01"), *everywhere(PLAIN_KEY).items()]
    body = {"model": f"claude-haiku-4-5-{PLAIN_KEY}", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(f"{proxy.url}/v1/messages?q={PLAIN_KEY}", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert_no_key(PLAIN_KEY, record)
    assert PLAIN_KEY not in f"{record.query} {record.path} {record.model}", (record.query, record.model)
    assert record.project == "p-***" and "***" in (record.query or "")


@pytest.mark.parametrize(
    "authorization", ["Negotiate", 'Digest username="alice", realm="api", nonce="0123456789abcdef", response="beef"']
)
def test_a_scheme_alone_or_its_parameters_mask_no_word_of_the_clients_fields(proxy, recorder, authorization):
    headers = {
        "authorization": authorization,
        "anthropic-version": "2023-06-01",
        "x-ccproxy-project": "Negotiate",
        "user-agent": "my-tool/1.0 Negotiate",
        "x-ccproxy-tag-username-alice": "yes",
    }
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(f"{proxy.url}/v1/messages", json=body, headers=headers, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert (record.project, record.user_agent) == ("Negotiate", "my-tool/1.0 Negotiate")
    assert record.tags == {"username-alice": "yes"}
