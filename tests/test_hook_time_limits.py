"""An ``async def`` request hook that never finishes is cut off at its limit: the request goes on, once recorded."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host import hook_limits
from ccproxy_core.testing import wait_until
from tests.test_plugin_contract import BODY, HEADERS, send

LIMIT = 0.3


@pytest.fixture(autouse=True)
def short_limits(monkeypatch):
    for hook in hook_limits.HOOK_SECONDS:
        monkeypatch.setitem(hook_limits.HOOK_SECONDS, hook, LIMIT)


class Hangs:
    """Its ``hook`` awaits what never comes (a lost connection, a forgotten event)."""

    __name__ = "hangs"

    def __init__(self, hook: str) -> None:
        self.hook, self.entered, self.cancelled = hook, 0, 0

    async def _hang(self) -> None:
        self.entered += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    @hookimpl
    async def on_request_start(self, context):
        if self.hook == "on_request_start":
            await self._hang()

    @hookimpl
    async def admit_request(self, context):
        if self.hook == "admit_request":
            await self._hang()

    @hookimpl
    async def on_request_end(self, record):
        if self.hook == "on_request_end":
            await self._hang()


class ExitsAfterWaiting:
    """Waits a little in ``hook``, then raises ``SystemExit``: counted, as when it raises at once."""

    __name__ = "exits"

    def __init__(self, hook: str) -> None:
        self.hook = hook

    async def _exit(self) -> None:
        await asyncio.sleep(0.01)
        raise SystemExit(3)

    @hookimpl
    async def on_request_start(self, context):
        if self.hook == "on_request_start":
            await self._exit()

    @hookimpl
    async def admit_request(self, context):
        if self.hook == "admit_request":
            await self._exit()

    @hookimpl
    async def on_request_end(self, record):
        if self.hook == "on_request_end":
            await self._exit()


class TakesAWhile:
    """Suspends in every hook, briefly, and finishes: nothing to cut off."""

    __name__ = "takes_a_while"

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    async def on_request_start(self, context):
        await asyncio.sleep(0.01)
        self.calls.append("on_request_start")

    @hookimpl
    async def admit_request(self, context):
        await asyncio.sleep(0.01)
        self.calls.append("admit_request")

    @hookimpl
    async def on_request_end(self, record):
        await asyncio.sleep(0.01)
        self.calls.append("on_request_end")


@pytest.mark.parametrize("hook", ["on_request_start", "admit_request", "on_request_end"])
def test_a_hook_that_never_finishes_is_cancelled_counted_and_named_and_the_request_goes_on(
    proxy_factory, recorder, caplog, hook
):
    # Before, a hung admit_request or on_request_start held every client until its own timeout, and a hung
    # on_request_end kept each request's task (and memory) for good: the record never reached the plugins after it.
    hangs, patient = Hangs(hook), TakesAWhile()
    # The last registered is called first: "hangs" holds up the recorder when it hangs.
    proxy = proxy_factory(plugins=[recorder, patient, ExitsAfterWaiting(hook), hangs])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    began = time.monotonic()
    response = send(proxy)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] > 0
    assert time.monotonic() - began < LIMIT + 1.5
    [record] = recorder.wait_for_ends(1, timeout=LIMIT + 3)
    assert record.status_code == 200 and record.error_type is None
    wait_until(lambda: hangs.cancelled == 1)
    # Each failure is counted as its hook ends, which on a busy machine may come after the record.
    wait_until(lambda: dict(proxy.app.state.hook_errors) == {("hangs", hook): 1, ("exits", hook): 1})
    [line] = [r.getMessage() for r in caplog.records if getattr(r, "plugin", None) == "hangs"]
    assert line == (
        f"plugin hangs: its {hook} did not finish within {LIMIT:g} s; it was cancelled and the request went on "
        "without it"
    )
    wait_until(lambda: len(patient.calls) == 3)  # not cut off, not counted
    assert patient.calls == ["on_request_start", "admit_request", "on_request_end"]


class TimesItsOwnWait:
    """Waits under an ``asyncio.timeout`` of its own, which runs out: it cancels the task the hook is in."""

    __name__ = "own_timeout"

    def __init__(self) -> None:
        self.timed_out = 0

    @hookimpl
    async def admit_request(self, context):
        try:
            async with asyncio.timeout(LIMIT / 3):
                await asyncio.Event().wait()
        except TimeoutError:
            self.timed_out += 1


def test_a_hooks_own_timeout_ends_its_wait_not_the_request(proxy_factory, recorder):
    # The hook goes on in the task it started in: its asyncio.timeout cancels that task's wait, not a
    # task it never saw (which, run elsewhere, would have been the request itself: a 503).
    own = TimesItsOwnWait()
    proxy = proxy_factory(plugins=[recorder, own])
    response = httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": True}, headers=HEADERS)
    assert response.status_code == 200 and b"message_stop" in response.content
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, own.timed_out) == (200, None, 1)
    assert not proxy.app.state.hook_errors
