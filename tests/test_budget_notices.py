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


async def log_lines_of_one_notice(handler, url_tail: str, notice: dict, caplog) -> list[str]:
    """Serve ``handler`` at /hook, send it ``notice`` (its URL ending in ``url_tail``), and return the log lines."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    sender = notifier.Notifier(f"http://127.0.0.1:{port}/hook{url_tail}", "json", first_retry_seconds=0.01)
    caplog.set_level(logging.WARNING, logger="ccproxy.budgets")
    try:
        sender.start()
        sender.notify(notice)
        await sender.stop(grace_seconds=2)
    finally:
        await runner.cleanup()
    return [r.getMessage() for r in caplog.records]


async def test_an_undelivered_notice_is_logged_by_its_budget_and_threshold(caplog, monkeypatch):
    async def silent(request):
        await asyncio.sleep(0.5)
        return web.Response()

    monkeypatch.setattr(notifier, "TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(notifier, "ATTEMPTS", 2)
    lines = await log_lines_of_one_notice(silent, "", {"budget": "team-daily", "threshold_percent": 80}, caplog)
    # Before: "budget notice for team-daily not delivered (TimeoutError: )", naming no threshold.
    assert lines == [
        "budget notice for team-daily at 80% not delivered (no answer within 0.05 s); retry 1 in 0.0s",
        "budget notice for team-daily at 80% dropped after 2 attempts: no answer within 0.05 s",
    ]


async def test_a_webhook_that_redirects_is_not_followed_and_its_url_never_logged(caplog, monkeypatch):
    async def loop_back(request):
        raise web.HTTPTemporaryRedirect(location=str(request.url))

    monkeypatch.setattr(notifier, "ATTEMPTS", 2)
    notice = {"budget": "team-daily", "threshold_percent": 50}
    lines = await log_lines_of_one_notice(loop_back, "?token=SLACK-SECRET-PATH", notice, caplog)
    # Before: followed until TooManyRedirects, whose text (logged) held the URL and its token.
    assert lines[-1] == "budget notice for team-daily at 50% dropped after 2 attempts: HTTP 307"
    assert not any("SLACK-SECRET-PATH" in line for line in lines)
