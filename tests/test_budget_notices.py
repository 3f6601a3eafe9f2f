"""Budget notices: what a Slack notice says, and what the log says of one not delivered."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ccproxy_budgets import notifier
from ccproxy_budgets.notifier import slack_body


def test_a_slack_notice_of_a_small_budget_shows_its_amounts():
    notice = {"budget": "b", "scope": "all", "period": "day", "threshold_percent": 50, "action": "block"}
    text = slack_body({**notice, "spent_usd": 0.006, "limit_usd": 0.012})["text"]
    assert text.endswith("passed 50%: 0.006 of 0.012 USD")  # not "0.01 of 0.01"


async def test_an_undelivered_notice_is_logged_by_its_budget_and_threshold(caplog, monkeypatch):
    async def silent(request):
        await asyncio.sleep(0.5)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", silent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    monkeypatch.setattr(notifier, "TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(notifier, "ATTEMPTS", 2)
    sender = notifier.Notifier(f"http://127.0.0.1:{port}/hook", "json", first_retry_seconds=0.01)
    caplog.set_level(logging.WARNING, logger="ccproxy.budgets")
    try:
        sender.start()
        sender.notify({"budget": "team-daily", "threshold_percent": 80})
        await sender.stop(grace_seconds=2)
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records]
    # Before: "budget notice for team-daily not delivered (TimeoutError: )", naming no threshold.
    assert lines == [
        "budget notice for team-daily at 80% not delivered (no answer within 0.05 s); retry 1 in 0.0s",
        "budget notice for team-daily at 80% dropped after 2 attempts: no answer within 0.05 s",
    ]


async def test_a_webhook_that_redirects_is_not_followed_and_its_url_never_logged(caplog, monkeypatch):
    async def loop_back(request):
        raise web.HTTPTemporaryRedirect(location=str(request.url))

    app = web.Application()
    app.router.add_post("/hook", loop_back)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    monkeypatch.setattr(notifier, "ATTEMPTS", 2)
    secret_url = f"http://127.0.0.1:{port}/hook?token=SLACK-SECRET-PATH"
    sender = notifier.Notifier(secret_url, "json", first_retry_seconds=0.01)
    caplog.set_level(logging.WARNING, logger="ccproxy.budgets")
    try:
        sender.start()
        sender.notify({"budget": "team-daily", "threshold_percent": 50})
        await sender.stop(grace_seconds=2)
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records]
    # Before: followed until TooManyRedirects, whose text (logged) held the URL and its token.
    assert lines[-1] == "budget notice for team-daily at 50% dropped after 2 attempts: HTTP 307"
    assert not any("SLACK-SECRET-PATH" in line for line in lines)
