"""Budget notices sent to a webhook by a background task, with retries, never on the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from ccproxy_budgets.ledger import usd_text

log = logging.getLogger("ccproxy.budgets")
ATTEMPTS = 4
FIRST_RETRY_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0
QUEUE_SIZE = 1000


def slack_body(notice: dict[str, Any]) -> dict[str, str]:
    """A Slack incoming-webhook body: one line of text."""
    verb = "is spent" if notice["threshold_percent"] >= 100 else f"passed {notice['threshold_percent']}%"
    return {
        "text": (
            f"ccproxy budget *{notice['budget']}* ({notice['scope']}, per {notice['period']}) {verb}: "
            f"{usd_text(notice['spent_usd'])} of {usd_text(notice['limit_usd'])} USD"
            + (
                " — requests are now refused"
                if notice["threshold_percent"] >= 100 and notice["action"] == "block"
                else ""
            )
        )
    }


class Notifier:
    """Queues notices without waiting and POSTs them one by one as JSON."""

    def __init__(self, url: str, body_format: str, first_retry_seconds: float = FIRST_RETRY_SECONDS) -> None:
        self.url, self.body_format, self.first_retry_seconds = url, body_format, first_retry_seconds
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.sent = self.failed = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ccproxy-budget-notifier")

    def notify(self, notice: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.failed += 1
            log.error("budget notice for %s dropped: %d notices already waiting", notice["budget"], QUEUE_SIZE)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Send what is queued (for at most ``grace_seconds``), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
            while True:
                notice = await self.queue.get()
                try:
                    await self._send(session, notice)
                finally:
                    self.queue.task_done()

    async def _send(self, session: aiohttp.ClientSession, notice: dict[str, Any]) -> None:
        body = slack_body(notice) if self.body_format == "slack" else notice
        delay = self.first_retry_seconds
        which = f"{notice['budget']} at {notice['threshold_percent']}%"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # A redirect is not followed: it could take the notice elsewhere (and a 302 makes it a GET).
                async with session.post(self.url, json=body, allow_redirects=False) as response:
                    if response.status < 300:
                        self.sent += 1
                        return
                    reason = f"HTTP {response.status}"
            except TimeoutError:
                reason = f"no answer within {TIMEOUT_SECONDS:g} s"
            except (aiohttp.ClientError, OSError) as exc:  # its text may hold the URL, a secret: not logged
                reason = type(exc).__name__ + (
                    f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
                )
            if attempt < ATTEMPTS:
                log.warning("budget notice for %s not delivered (%s); retry %d in %.1fs", which, reason, attempt, delay)
                await asyncio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("budget notice for %s dropped after %d attempts: %s", which, ATTEMPTS, reason)
