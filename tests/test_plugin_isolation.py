"""Isolation: whatever a plugin's request hook raises or however long it blocks, the request and the other plugins go on."""

from __future__ import annotations

import logging
import re
import time

import httpx

from ccproxy_core import hookimpl
from ccproxy_core.testing import wait_until
from tests.test_plugin_contract import BODY, HEADERS, send


class YieldsTwiceThenExits:
    @hookimpl(wrapper=True)
    def on_request_end(self, record):
        try:
            yield
            yield
        finally:
            raise SystemExit(3)


def test_a_wrapper_that_raises_as_it_is_closed_is_counted_not_raised(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder, YieldsTwiceThenExits()])
    assert send(proxy).status_code == 200
    recorder.wait_for_ends(1)
    wait_until(lambda: sum(proxy.app.state.hook_errors.values()) == 1)


class Raising:
    def __init__(self) -> None:
        self.after_yield = 0

    @hookimpl
    async def on_request_start(self, context):
        raise RuntimeError("async boom")

    @hookimpl(wrapper=True)
    def on_request_end(self, record):
        yield
        self.after_yield += 1
        raise RuntimeError("wrapper boom after its yield")


def test_a_raising_implementation_or_wrapper_is_logged_counted_and_isolated(proxy_factory, recorder, caplog):
    raising = Raising()
    proxy = proxy_factory(plugins=[raising, recorder])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    response = send(proxy)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] > 0
    recorder.wait_for_ends(1)
    wait_until(lambda: raising.after_yield == 1)
    errors = proxy.app.state.hook_errors
    assert sorted(hook for (plugin, hook) in errors) == ["on_request_end", "on_request_start"]
    raised = [r for r in caplog.records if getattr(r, "plugin", None)]
    assert {(r.hook, str(r.exc_info[1])) for r in raised} == {
        ("on_request_start", "async boom"),
        ("on_request_end", "wrapper boom after its yield"),
    }
    assert len(recorder.starts) == 1  # the others still ran


class Exiting:
    """Ends the process from its hooks, as a plugin calling ``sys.exit()`` or hit by Ctrl-C would."""

    @hookimpl
    def on_request_start(self, context):
        raise SystemExit(3)

    @hookimpl
    async def on_request_end(self, record):
        raise KeyboardInterrupt


def test_a_hook_raising_system_exit_or_keyboard_interrupt_is_counted_and_the_record_still_reaches_the_others(
    proxy_factory, recorder
):
    # Before, either one escaped the guard: the request got a bare 500, or its record never reached the store.
    proxy = proxy_factory(plugins=[recorder, Exiting()])
    for streamed in (False, True):
        response = httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": streamed}, headers=HEADERS)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream" if streamed else "application/json"
        )
    [first, second] = recorder.wait_for_ends(2)
    assert (first.status_code, second.status_code) == (200, 200) and first.tokens_output and second.tokens_output
    wait_until(lambda: sum(proxy.app.state.hook_errors.values()) == 4)
    assert {hook for (_, hook) in proxy.app.state.hook_errors} == {"on_request_start", "on_request_end"}


class Blocking:
    """Does its slow work right in a plain ``def`` hook, as a plugin writing to a file or a socket might."""

    @hookimpl
    def on_request_end(self, record):
        time.sleep(0.25)


def test_a_plain_hook_that_holds_the_event_loop_is_named_and_counted(proxy_factory, recorder, caplog):
    proxy = proxy_factory(plugins=[recorder, Blocking()])
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    assert send(proxy).status_code == 200
    recorder.wait_for_ends(1)
    wait_until(lambda: sum(proxy.app.state.hook_errors.values()) == 1)
    [line] = [r.getMessage() for r in caplog.records if getattr(r, "plugin", None)]
    held = re.search(r"its on_request_end held the event loop for (\d+) ms", line)
    assert held and int(held.group(1)) >= 200 and "make it async def" in line  # longer on a busy machine


class Rerouting:
    """Writes the request's own facts, which plugins must not: provider, model, kind, path."""

    @hookimpl
    def on_request_start(self, context):
        context.service_type, context.model, context.streaming = "openai", "gpt-4o", False

    @hookimpl
    async def admit_request(self, context):
        context.path = context.endpoint = "/v1/chat/completions"
        context.state["rerouting"] = "kept"  # state is the plugin's own


def test_a_plugin_that_rewrites_the_requests_facts_neither_reroutes_it_nor_falsifies_its_record(
    proxy_factory, recorder, caplog
):
    # Before, the Anthropic request and its key went to the OpenAI base URL (here nothing listens), and a
    # complete stream read as another provider's was recorded as cut short, without its tokens.
    proxy = proxy_factory(plugins=[Rerouting(), recorder], upstream={"openai_base_url": "http://127.0.0.1:9"})
    caplog.set_level(logging.WARNING, logger="ccproxy.plugins")
    with httpx.stream("POST", proxy.url + "/v1/messages", json={**BODY, "stream": True}, headers=HEADERS) as answer:
        events = answer.read().decode()
    assert answer.status_code == 200 and "message_stop" in events
    (record,) = recorder.wait_for_ends(1)
    assert (record.service_type, record.model, record.streaming) == ("anthropic", BODY["model"], True)
    assert (record.path, record.endpoint, record.error_type) == ("/v1/messages", "/v1/messages", None)
    assert record.tokens_output and record.cost_usd and record.priced
    assert recorder.starts[0].state["rerouting"] == "kept"
    lines = [r.getMessage() for r in caplog.records if "put it back" in r.getMessage()]
    assert len(lines) == 1, lines  # the admit_request one came within 10 s: held back
    assert f"on_request_start changed service_type, model, streaming of request {record.request_id}" in lines[0]


class AlwaysEqual(str):
    """Text that says it equals anything: a fact changed to it must not pass for unchanged."""

    __hash__ = str.__hash__

    def __eq__(self, other):
        return True


class Scrambling:
    @hookimpl
    def on_request_start(self, context):
        context.service_type = AlwaysEqual("openai")
        context.tags, context.project, context.end_user = "not a dict", 12345, "kept-user"


def test_a_fact_changed_to_a_lying_value_or_attribution_a_record_cannot_hold_is_put_back(
    proxy_factory, recorder, caplog
):
    # Before, the lying value went unnoticed (the request went to the OpenAI base URL), and tags that
    # were not a dict lost the request's record when it was built.
    scrambling = Scrambling()
    proxy = proxy_factory(plugins=[scrambling, recorder], upstream={"openai_base_url": "http://127.0.0.1:9"})
    caplog.set_level(logging.WARNING, logger="ccproxy.plugins")
    tagged = {**HEADERS, "x-ccproxy-tag-team": "payments"}
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=tagged).status_code == 200
    (record,) = recorder.wait_for_ends(1)
    assert type(record.service_type) is str and record.service_type == "anthropic"
    assert (dict(record.tags), record.project, record.end_user) == ({"team": "payments"}, None, "kept-user")
    (line,) = [r.getMessage() for r in caplog.records if "put it back" in r.getMessage()]
    assert "on_request_start changed service_type, project, tags of request" in line
    named = {proxy.app.state.ccproxy.plugin_manager.get_name(plugin) for plugin in (scrambling, recorder)}
    suspects = line.removeprefix("a plugin's (").split(") on_request_start")[0]
    assert set(suspects.split(" or ")) == named  # the plugins that may have: those not ccproxy's own


class Attributing:
    """Writes attribution, as plugins may: a project, then (wrongly) a tag that is not text."""

    @hookimpl
    def on_request_start(self, context):
        context.project = "from-plugin"

    @hookimpl
    def admit_request(self, context):
        context.tags["count"] = 1


def test_attribution_a_plugin_writes_is_kept_and_a_wrong_tag_gives_back_the_clients_own(
    proxy_factory, recorder, caplog
):
    # Before, a tag changed in place to a number emptied the tags (the client's included), and a
    # plugin's own project was reported as a change put back, hiding the warnings that mattered.
    proxy = proxy_factory(plugins=[Attributing(), recorder])
    caplog.set_level(logging.WARNING, logger="ccproxy.plugins")
    tagged = {**HEADERS, "x-ccproxy-tag-team": "payments"}
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=tagged).status_code == 200
    (record,) = recorder.wait_for_ends(1)
    assert (record.project, dict(record.tags)) == ("from-plugin", {"team": "payments"})
    (line,) = [r.getMessage() for r in caplog.records if "put it back" in r.getMessage()]
    assert "admit_request changed tags of request" in line


class Forging:
    """Writes the client's address and agent, and replaces the state every plugin keeps its data in."""

    @hookimpl
    def on_request_start(self, context):
        context.client_ip, context.user_agent, context.state = "6.6.6.6", "forged-agent", None


def test_the_clients_address_agent_and_the_state_dict_are_facts_too(proxy_factory, recorder):
    # Before, the forged address and agent were recorded, and the metrics plugin, finding no state,
    # failed at the request's end and counted it in flight for ever.
    proxy = proxy_factory(plugins=[Forging(), recorder], observability={"metrics_endpoint_enabled": True})
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=HEADERS).status_code == 200
    (record,) = recorder.wait_for_ends(1)
    assert (record.client_ip, record.user_agent) == ("127.0.0.1", f"python-httpx/{httpx.__version__}")
    # A plugin called after it in the same hook may meet the missing state; later hooks find it back.
    assert ("metrics", "on_request_end") not in proxy.app.state.hook_errors
    metrics = httpx.get(proxy.url + "/metrics").text
    assert "ccproxy_active_requests 0.0" in metrics
