"""End users and sessions read from request bodies through a real server, with the real SDKs: bodies
over 1 MiB (scanned, not decoded) attributed as small ones, ``metadata.user_id`` values of every shape,
and OpenAI's own end-user fields beside its metadata tags."""

from __future__ import annotations

import json

import anthropic
import openai

from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES

SESSION = "5d1f3c2a-8b7e-4f61-9a0c-2e4b6d8f0a13"
ACCOUNT = "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b"
CLAUDE_CODE_USER_ID = json.dumps({"device_id": "d" * 64, "account_uuid": ACCOUNT, "session_id": SESSION})
LARGE_PROMPT = "x" * (LARGE_BODY_BYTES + 100_000)  # a pasted file, say


def clients(proxy_url: str) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-test", max_retries=0, timeout=30)
    gpt = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="sk-test", max_retries=0, timeout=30)
    return claude, gpt


def send_each(proxy_url: str, prompt: str) -> None:
    """Each way an SDK names its end user, in a request whose prompt is ``prompt``."""
    claude, gpt = clients(proxy_url)
    messages = [{"role": "user", "content": prompt}]
    for user_id in ("alice", CLAUDE_CODE_USER_ID):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=5, metadata={"user_id": user_id}, messages=messages)
    gpt.chat.completions.create(model="gpt-4o", user="bob", safety_identifier="bob-safe", messages=messages)
    gpt.chat.completions.create(model="gpt-4o", user="dave", messages=messages)
    gpt.responses.create(model="gpt-5", safety_identifier="carol", input=prompt)


EXPECTED = [
    ("anthropic", None, "alice"),
    ("anthropic", SESSION, ACCOUNT),
    ("openai", None, "bob-safe"),
    ("openai", None, "dave"),
    ("openai", None, "carol"),
]


def test_a_body_over_1_mib_is_attributed_as_the_same_small_body(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder])
    send_each(proxy.url, "Summarise this file.")
    send_each(proxy.url, LARGE_PROMPT)
    records = recorder.wait_for_ends(2 * len(EXPECTED))
    small, large = records[: len(EXPECTED)], records[len(EXPECTED) :]
    assert all(record.request_bytes > LARGE_BODY_BYTES for record in large)
    assert [(r.service_type, r.session_id, r.end_user) for r in small] == EXPECTED
    assert [(r.service_type, r.session_id, r.end_user) for r in large] == EXPECTED
    assert [(r.model, r.status_code) for r in large] == [(r.model, r.status_code) for r in small]


def test_a_json_user_id_that_is_not_claude_codes_is_an_opaque_end_user(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder])
    claude, _gpt = clients(proxy.url)
    messages = [{"role": "user", "content": "hi"}]
    for user_id in ('{"user": "alice"}', '{"email": "bob@example.com"}'):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=5, metadata={"user_id": user_id}, messages=messages)
    records = recorder.wait_for_ends(2)
    assert [(r.session_id, r.end_user) for r in records] == [
        (None, '{"user": "alice"}'),
        (None, '{"email": "bob@example.com"}'),
    ]


def test_openai_end_user_fields_come_before_metadata_tags(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder])
    _claude, gpt = clients(proxy.url)
    for prompt in ("hi", LARGE_PROMPT):
        gpt.responses.create(
            model="gpt-5", input=prompt, safety_identifier="hashed-user-8", metadata={"user_id": '{"team":"blue"}'}
        )
        gpt.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": prompt}],
            user="u-9",
            metadata={"user_id": "tag-red"},
            store=True,
        )
        gpt.responses.create(model="gpt-5", input=prompt, metadata={"user_id": "only-tag"})
    records = recorder.wait_for_ends(6)
    assert [r.end_user for r in records] == ["hashed-user-8", "u-9", "only-tag"] * 2
