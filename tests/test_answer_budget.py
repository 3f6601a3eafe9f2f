"""Whole answers held to read their usage share one budget: an answer that finds no room is passed
on as it arrives (its usage unread), so many large answers at once cannot take memory without bound."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from ccproxy_core.forwarding.answer_reading import AnswerBudget, read_answer_chunks
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_record

from .metrics_records import make_context


def answer(*chunks: bytes):
    async def iter_any():
        for chunk in chunks:
            yield chunk

    return SimpleNamespace(content=SimpleNamespace(iter_any=iter_any), content_length=None, status=200)


def exchange() -> Exchange:
    return Exchange(context=make_context(make_record()), provider=PROVIDERS["anthropic"])


def test_answers_held_together_stay_within_the_budget_and_give_it_back():
    budget = AnswerBudget(total_bytes=10_000, one_answer_bytes=6_000)
    first, second = exchange(), exchange()
    chunks, whole = asyncio.run(read_answer_chunks(first, answer(b"a" * 3_000, b"b" * 3_000), 6_000, budget))
    assert whole and first.held_answer_bytes == 6_000 and budget.available == 4_000
    # The second does not fit beside the first: passed on as it comes, after the chunk that did not fit.
    chunks, whole = asyncio.run(read_answer_chunks(second, answer(b"c" * 3_000, b"d" * 3_000), 6_000, budget))
    assert not whole and chunks == [b"c" * 3_000, b"d" * 3_000] and budget.passed_on == 1
    budget.give_back(first)
    budget.give_back(second)
    assert budget.available == 10_000 and first.held_answer_bytes == second.held_answer_bytes == 0


def test_the_budget_always_has_room_for_one_answer_of_the_largest_size_read():
    budget = AnswerBudget(total_bytes=1_024, one_answer_bytes=64_000)
    _chunks, whole = asyncio.run(read_answer_chunks(exchange(), answer(b"x" * 60_000), 64_000, budget))
    assert whole


def test_every_answer_gives_its_bytes_back_through_a_real_proxy(proxy, recorder):
    # A leak would, in time, leave every answer unread and unpriced.
    import anthropic
    import httpx

    budget = proxy.app.state.proxy.answer_budget
    room = budget.available
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    for faults in ({}, {"x-mock-status": "429"}, {"x-mock-status": "500"}):
        try:
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=messages, extra_headers=faults)
        except anthropic.APIStatusError:
            pass
    httpx.get(proxy.url + "/v1/models", headers={"x-api-key": "k"})
    records = recorder.wait_for_ends(4)
    [answered] = [record for record in records if record.endpoint == "/v1/messages" and record.status_code == 200]
    assert answered.tokens_input is not None  # read whole, from the budget
    assert budget.available == room and budget.passed_on == 0
