"""Request hooks that misbehave without raising: wrappers that return no results, hooks raising
their own ``CancelledError``, ``admit_request`` answers that cannot be used. Each is the plugin's
failure, logged and counted; the request and the other plugins go on."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from ccproxy_core import Admission, hookimpl
from ccproxy_core.plugin_host.dispatch import BLOCKING_HOOK_SECONDS, _guard_awaitable
from ccproxy_core.plugin_host.hook_failures import HookFailures
from ccproxy_core.plugin_host.plugins import get_plugin_manager, register_checked
from ccproxy_core.testing import make_settings, wait_until

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def send(proxy, **headers) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", json=BODY, headers={**HEADERS, **headers})


class ForgetfulWrappers:
    """Wrappers that forget to return their yield's results, a common slip."""

    @hookimpl(wrapper=True, specname="on_request_start")
    def time_start(self):
        yield

    @hookimpl(wrapper=True, specname="on_request_end")
    def time_end(self):
        yield


class RaisingCancelled:
    """Async hooks that raise ``CancelledError`` of their own, as when a task they awaited was cancelled."""

    @hookimpl
    async def on_request_start(self):
        raise asyncio.CancelledError

    @hookimpl
    async def on_request_end(self):
        raise asyncio.CancelledError


class AsyncRecorder:
    def __init__(self) -> None:
        self.statuses: list[int] = []

    @hookimpl
    async def on_request_end(self, record):
        self.statuses.append(record.status_code)


@pytest.mark.parametrize("faulty", [ForgetfulWrappers, RaisingCancelled])
def test_a_wrapper_returning_no_results_or_a_hook_raising_cancelled_is_a_hook_failure(
    proxy_factory, recorder, caplog, faulty
):
    later = AsyncRecorder()
    proxy = proxy_factory(plugins=[faulty(), recorder, later])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    response = send(proxy)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] > 0
    assert [record.status_code for record in recorder.wait_for_ends(1)] == [200]
    wait_until(lambda: later.statuses == [200])
    errors = proxy.app.state.hook_errors
    assert {hook for (_, hook) in errors} == {"on_request_start", "on_request_end"}
    named = {(r.plugin, r.hook) for r in caplog.records if getattr(r, "plugin", None)}
    assert {hook for _, hook in named} == {"on_request_start", "on_request_end"}


def test_a_real_cancellation_of_the_request_still_cancels_it():
    from collections import Counter

    errors: Counter = Counter()

    async def slow_hook():
        await asyncio.sleep(10)

    async def scenario():
        task = asyncio.create_task(_guard_awaitable(slow_hook(), HookFailures("slow", "on_request_end", errors)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert not errors


class Answering:
    """Answers ``admit_request`` with what it was given, from an ``async def`` or a ``def``."""

    def __init__(self, answer) -> None:
        self.answer = answer

    @hookimpl
    async def admit_request(self):
        return self.answer


BAD_ADMISSIONS = [
    {"refuse_status": 429},
    "no",
    Admission(refuse_status=200, message="not a refusal status"),
    Admission(headers=(("x-probe", 5),)),
    Admission(headers=(("x-probe", "caf\u00e9\u20ac"),)),
    Admission(headers=(("x-probe", "bad\r\ninjected: 1"),)),
    Admission(headers=(("x-probe\r\ninjected", "1"),)),
    # Before, a second Content-Length (or a Transfer-Encoding beside one) made every answer unreadable.
    Admission(headers=(("content-length", "3"),)),
    Admission(headers=(("Transfer-Encoding", "chunked"),)),
    Admission(headers=(("x-ccproxy-request-id", "forged"),)),
    Admission(headers=(("request-id", "req_forged"),)),
]


@pytest.mark.parametrize("answer", BAD_ADMISSIONS, ids=repr)
def test_an_unusable_admit_request_answer_is_the_plugins_failure_and_the_request_goes_on(
    proxy_factory, recorder, caplog, answer
):
    proxy = proxy_factory(plugins=[Answering(answer), recorder])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    response = send(proxy)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] > 0
    assert "x-probe" not in response.headers and "injected" not in response.headers
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
    assert [hook for (_, hook) in proxy.app.state.hook_errors.elements()] == ["admit_request"]
    assert any("its admit_request answer was ignored" in r.getMessage() for r in caplog.records)


def test_a_refusal_with_its_headers_given_as_a_dict_refuses(proxy_factory, recorder):
    # Before, the dict made the whole answer unusable: the refusal was dropped and the request forwarded.
    refusal = Admission(refuse_status=429, message="spent", headers={"x-team-budget": "0.00"})
    proxy = proxy_factory(plugins=[Answering(refusal), recorder])
    response = send(proxy)
    assert response.status_code == 429 and response.json()["error"]["message"] == "spent"
    assert response.headers["x-team-budget"] == "0.00"
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (429, "refused")
    assert (record.cost_usd, record.priced) == (0, True)  # before, unknown: counted among unpriced requests
    assert not proxy.app.state.hook_errors


class LateRefuser:
    """Swallows the cancellation of its time limit and refuses the request afterwards."""

    @hookimpl
    async def admit_request(self):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)
        return Admission(refuse_status=429, message="too late to count")


def test_an_answer_given_after_the_time_limit_is_ignored_even_when_the_hook_swallowed_its_cancellation(
    proxy_factory, recorder, caplog
):
    proxy = proxy_factory(plugins=[LateRefuser(), recorder])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    response = send(proxy)
    assert response.status_code == 200  # forwarded as if the plugin had said nothing
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 200
    assert [hook for (_, hook) in proxy.app.state.hook_errors.elements()] == ["admit_request"]
    assert any("did not finish within 1 s" in r.getMessage() for r in caplog.records)


class Scribbler:
    """Tries to change the record every plugin shares, first of all of them."""

    @hookimpl(tryfirst=True)
    def on_request_end(self, record):
        record.tags["team"] = "changed"


class RateScribbler:
    @hookimpl(tryfirst=True)
    def on_request_end(self, record):
        record.rate_limits.clear()


@pytest.mark.parametrize("scribbler", [Scribbler, RateScribbler])
def test_a_plugin_cannot_change_the_tags_or_rate_limits_the_others_see(proxy_factory, recorder, scribbler):
    proxy = proxy_factory(plugins=[scribbler(), recorder])
    assert send(proxy, **{"x-ccproxy-tag-team": "ml"}).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert record.tags == {"team": "ml"} and record.rate_limits
    assert [hook for (_, hook) in proxy.app.state.hook_errors.elements()] == ["on_request_end"]


class FailsEverywhere:
    @hookimpl
    def on_request_start(self):
        raise RuntimeError("start")

    @hookimpl
    async def admit_request(self):
        raise RuntimeError("admit")

    @hookimpl
    def on_request_end(self):
        raise RuntimeError("end")


def five_requests_through(proxy_factory, caplog, plugin, failures: int):
    """A proxy with ``plugin``, after five requests and the ``failures`` they cost the plugin."""
    proxy = proxy_factory(plugins=[plugin])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    for _ in range(5):
        assert send(proxy).status_code == 200
    wait_until(lambda: sum(proxy.app.state.hook_errors.values()) == failures)
    return proxy


def test_a_plugin_failing_on_every_request_is_counted_exactly_and_logged_once_an_interval(proxy_factory, caplog):
    proxy = five_requests_through(proxy_factory, caplog, FailsEverywhere(), failures=15)
    assert sorted(proxy.app.state.hook_errors.values()) == [5, 5, 5]
    assert sorted(r.hook for r in caplog.records if getattr(r, "plugin", None)) == [
        "admit_request",
        "on_request_end",
        "on_request_start",
    ]


class FailsInTurn:
    """One hook failing three different ways, then the first way again and again."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def on_request_start(self):
        self.calls += 1
        if self.calls == 2:
            time.sleep(BLOCKING_HOOK_SECONDS * 2)
        elif self.calls == 3:
            sys.exit(3)
        else:
            raise KeyboardInterrupt  # RAISES_AT


RAISES_AT = next(n for n, line in enumerate(Path(__file__).read_text().splitlines(), 1) if line.endswith("# RAISES_AT"))


class Nameless(type):
    def __getattribute__(cls, name):
        raise RuntimeError("no attribute of this class may be read")


class Unreadable(Exception, metaclass=Nameless):
    """An exception whose class raises on every attribute read."""


class RaisesTheUnreadable:
    @hookimpl
    def on_request_start(self):
        raise Unreadable


def test_an_exception_whose_class_cannot_be_read_fails_only_its_plugin(proxy_factory, recorder):
    # Before, reading its kind raised out of the guard: every request failed with ccproxy's own 500.
    proxy = proxy_factory(plugins=[RaisesTheUnreadable(), recorder])
    assert [send(proxy).status_code for _ in range(3)] == [200, 200, 200]
    assert [record.status_code for record in recorder.wait_for_ends(3)] == [200, 200, 200]
    assert sum(proxy.app.state.hook_errors.values()) == 3


def test_failures_of_plugins_registered_and_unregistered_are_not_kept():
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"))
    for _ in range(50):
        plugin = FailsInTurn()
        register_checked(pm, plugin)
        pm.unregister(plugin)
    assert pm.hook_failures == {}


def test_each_way_a_hook_fails_is_logged_and_failures_held_back_are_told_at_shutdown(proxy_factory, caplog):
    # Before, one rate limit per plugin and hook: the stall, whose line names the fix, and sys.exit were
    # counted but never logged, and failures held back were never told of once the burst stopped.
    proxy = five_requests_through(proxy_factory, caplog, FailsInTurn(), failures=5)
    [(name, hook)] = proxy.app.state.hook_errors
    lines = [r for r in caplog.records if getattr(r, "plugin", None) == name]
    assert [r.exc_info[0] if r.exc_info else None for r in lines] == [KeyboardInterrupt, None, SystemExit]
    assert "held the event loop" in lines[1].getMessage()
    proxy.stop()
    told = [r.getMessage() for r in caplog.records if "not logged one by one" in r.getMessage()]
    assert told == [
        f"plugin {name} failed in {hook}: KeyboardInterrupt at {__file__}:{RAISES_AT} (2 of them not logged one by one)"
    ]
