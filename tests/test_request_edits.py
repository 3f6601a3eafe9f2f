"""The include-usage edit of a large request is made in a worker thread, the event loop left to other requests."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES
from ccproxy_core.forwarding.request_edits import prepared_body
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_settings


def test_a_large_body_is_edited_off_the_event_loop_and_a_small_one_on_it():
    threads: list[bool] = []

    def prepare(endpoint, body, opted_in):
        threads.append(threading.current_thread() is threading.main_thread())
        return bytes(body) + b" "

    provider = dataclasses.replace(PROVIDERS["openai"], prepare_body=prepare)
    opted_in = make_settings("http://127.0.0.1:1", upstream={"openai_stream_include_usage": True}).upstream
    small, large = b"{}", b"{" + b" " * LARGE_BODY_BYTES + b"}"
    assert asyncio.run(prepared_body(provider, "/v1/chat/completions", small, opted_in)) == small + b" "
    assert asyncio.run(prepared_body(provider, "/v1/chat/completions", large, opted_in)) == large + b" "
    assert threads == [True, False]
    left_alone = make_settings("http://127.0.0.1:1").upstream
    asyncio.run(prepared_body(provider, "/v1/chat/completions", large, left_alone))  # nothing to do: no thread
    assert threads == [True, False, True]
    anthropic = PROVIDERS["anthropic"]
    assert asyncio.run(prepared_body(anthropic, "/v1/messages", large, opted_in)) is large
