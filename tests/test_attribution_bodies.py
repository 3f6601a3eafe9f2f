"""End users and sessions read from request bodies through a real server, with the real SDKs:
``metadata.user_id`` values of every shape, and OpenAI's own end-user fields beside its metadata tags."""

from __future__ import annotations

import anthropic
import openai


def clients(proxy_url: str) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-test", max_retries=0, timeout=30)
    gpt = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="sk-test", max_retries=0, timeout=30)
    return claude, gpt


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
    prompt = "hi"
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
    records = recorder.wait_for_ends(3)
    assert [r.end_user for r in records] == ["hashed-user-8", "u-9", "only-tag"]
