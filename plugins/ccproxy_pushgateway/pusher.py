"""Pushing the metrics registry to a Pushgateway, off the request path.

The push is blocking HTTP (urllib inside prometheus_client), so it runs in a thread of its
own, a daemon that never keeps the process from exiting, and its connection is shut down at
its deadline (:mod:`.deadline`); the event loop that serves clients only waits on a future.
A gateway that is down or slow costs one failed push per interval and a few log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

from ccproxy_core.plugin_host.background import run_in_background_thread
from ccproxy_core.safe_values import safe_error_text
from ccproxy_pushgateway.target import PushTarget

logger = logging.getLogger("ccproxy.pushgateway")

# Failures are reported at the 1st, 2nd, 4th, 8th ... in a row, then every 64th:
# a gateway that stays down for a day costs a few dozen log lines, not thousands.
MAX_FAILURES_BETWEEN_REPORTS = 64
# A push that takes longer than this is abandoned; it never waits past the interval
# by much, and never less than a second (so a short interval still tolerates a slow network).
MAX_PUSH_TIMEOUT_SECONDS = 10.0
MIN_PUSH_TIMEOUT_SECONDS = 1.0
STOP_MARGIN_SECONDS = 1.0
"""Of the plugin's share of the shutdown, what the last push leaves for the waits' grace and the failure's log line."""
DEADLINE_GRACE_SECONDS = 0.5
"""How long past its deadline a push is still waited for: its connection is shut at the deadline,
and the push ends a moment later with its own reason. Waiting only to the deadline, the next push,
due at that moment when the interval is the timeout, found it still under way and was lost too."""


def push_timeout(interval_seconds: float) -> float:
    """How long one push may take before it counts as failed."""
    return min(MAX_PUSH_TIMEOUT_SECONDS, max(MIN_PUSH_TIMEOUT_SECONDS, interval_seconds))


MAX_REASON_CHARS = 500
"""Longest failure reason logged (the gateway's reply is quoted in it)."""


@dataclass(frozen=True, slots=True)
class PushMetrics:
    """The pusher's own health, exposed in the registry it pushes."""

    failures: Counter
    successes: Counter
    last_success: Gauge
    interval: Gauge


def create_push_metrics(registry: CollectorRegistry) -> PushMetrics:
    """Create the pusher's families in ``registry``."""
    return PushMetrics(
        failures=Counter(
            "ccproxy_pushgateway_push_failures_total",
            "Pushes to the Pushgateway that failed or timed out.",
            registry=registry,
        ),
        successes=Counter(
            "ccproxy_pushgateway_pushes_total",
            "Pushes the Pushgateway accepted.",
            registry=registry,
        ),
        last_success=Gauge(
            "ccproxy_pushgateway_last_success_timestamp_seconds",
            "Unix time of the last push the Pushgateway accepted (0 before the first).",
            registry=registry,
        ),
        interval=Gauge(
            "ccproxy_pushgateway_interval_seconds",
            "Seconds between pushes: how old a live instance's last push can be (alerts tell a gone one by it).",
            registry=registry,
        ),
    )


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What to push, where, and how often."""

    registry: CollectorRegistry
    target: PushTarget
    job: str
    grouping_key: dict[str, str]
    interval_seconds: float

    @property
    def timeout_seconds(self) -> float:
        """How long one push may take."""
        return push_timeout(self.interval_seconds)


class Pusher:
    """Pushes on an interval in a background task, and once more when stopped."""

    def __init__(self, plan: PushPlan, metrics: PushMetrics, serving: asyncio.Event | None = None) -> None:
        self.plan = plan
        self.metrics = metrics
        metrics.interval.set(plan.interval_seconds)
        self._serving = serving
        """Set once the server serves (``Ccproxy.started``): a process that never did pushes nothing, so
        the gateway keeps no group of an instance that never ran. ``None``: push from the start."""
        self.consecutive_failures = 0
        self._next_report_at = 1
        self._in_flight: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the interval loop in the running event loop."""
        plan = self.plan
        logger.info(
            "pushing metrics to %s every %gs as job=%s %s",
            plan.target.display_url,
            plan.interval_seconds,
            plan.job,
            " ".join(f"{key}={value}" for key, value in plan.grouping_key.items()),
        )
        self._task = asyncio.create_task(self._run(), name="ccproxy-pushgateway")

    async def stop(self, within: float | None = None) -> bool:
        """Stop the loop, then push one last time, all ``within`` seconds when given (the plugin's share of
        ccproxy's shutdown: past it the plugin is left behind, and a failed last push would go unsaid);
        True when that push landed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._serving is not None and not self._serving.is_set():
            return False  # ccproxy stops without having served (a plugin failed to start)
        timeout = self.plan.timeout_seconds
        if within is not None:  # half for a push already on its way, half for the last one
            timeout = min(timeout, max(0.0, within - STOP_MARGIN_SECONDS) / 2)
        if self._in_flight is not None and not self._in_flight.done():
            # Let a push already on its way finish first, so the final one is the last to land.
            await asyncio.wait({self._in_flight}, timeout=timeout)
        return await self.push_once(final=True, within=timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.plan.interval_seconds
        if self._serving is not None:
            await self._serving.wait()
        # The first push waits an interval: it replaces the group a restarted process left, whose final push
        # holds the requests no earlier push carried, and a gateway read in the meantime still shows them.
        next_push_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_push_at - loop.time()))
            await self.push_once()
            next_push_at += interval
            if next_push_at < loop.time():  # a slow push: skip the missed slots instead of bursting
                next_push_at = loop.time() + interval

    async def push_once(self, *, final: bool = False, within: float | None = None) -> bool:
        """Push the registry now, in a worker thread, within ``within`` seconds (the plan's timeout by
        default); True on success."""
        if self._in_flight is not None and not self._in_flight.done():
            self._record_failure("the previous push is still waiting for an answer", final)
            return False
        in_flight = asyncio.ensure_future(run_in_background_thread("ccproxy-pushgateway-push", self._push_blocking))
        in_flight.add_done_callback(_consume_outcome)
        self._in_flight = in_flight
        timeout = self.plan.timeout_seconds if within is None else within
        # asyncio.wait, not wait_for: it never cancels the push (a thread cannot be stopped
        # anyway), and in Python 3.11 wait_for can swallow a cancellation that races with
        # the result, which would leave the loop running after stop().
        done, _ = await asyncio.wait({in_flight}, timeout=timeout + DEADLINE_GRACE_SECONDS)
        if not done:
            self._record_failure(f"no answer within {timeout:g}s", final)
            return False
        error = in_flight.exception()
        if error is not None:
            self._record_failure(f"{type(error).__name__}: {error}", final)
            return False
        self._record_success()
        return True

    def _push_blocking(self) -> None:
        plan = self.plan
        push_to_gateway(
            plan.target.url,
            job=plan.job,
            registry=plan.registry,
            grouping_key=plan.grouping_key,
            timeout=plan.timeout_seconds,
            handler=plan.target.handler(),
        )

    def _record_success(self) -> None:
        self.metrics.successes.inc()
        self.metrics.last_success.set(time.time())
        if self.consecutive_failures:
            logger.info(
                "pushes to %s resumed after %d failed attempt(s)",
                self.plan.target.display_url,
                self.consecutive_failures,
            )
        self.consecutive_failures = 0
        self._next_report_at = 1

    def _record_failure(self, reason: str, final: bool) -> None:
        reason = safe_error_text(reason, MAX_REASON_CHARS)  # a gateway's reply may hold anything
        self.metrics.failures.inc()
        self.consecutive_failures += 1
        failures = self.consecutive_failures
        display_url = self.plan.target.display_url
        if final:
            logger.warning("final push to %s on shutdown failed: %s", display_url, reason)
            return
        if failures < self._next_report_at:
            return
        self._next_report_at = failures + min(failures, MAX_FAILURES_BETWEEN_REPORTS)
        logger.warning(
            "push to %s failed: %s (%d failure(s) in a row; still trying every %gs, next report at failure %d)",
            display_url,
            reason,
            failures,
            self.plan.interval_seconds,
            self._next_report_at,
        )


def _consume_outcome(future: asyncio.Future[None]) -> None:
    # An abandoned (timed-out) push may fail later; retrieve its error so asyncio does not warn.
    if not future.cancelled():
        future.exception()
