"""Budgets kept in step with a log store that other ccproxy instances write to as well.

Each instance adds the cost of its own requests as their records arrive. With a shared store
(ClickHouse, several instances behind one load balancer) the others' spend reaches it only
through the store, so every OBSERVABILITY__BUDGETS_SYNC_SECONDS each budget's spend is read
again: what the store holds for the period, plus what this instance added while the store
answered. A budget's spend only grows within its period, so a store that lags a moment behind
never lowers it. Between two reads the instances together may overshoot a blocking budget by
what the others spent in that interval (besides the requests in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ccproxy_budgets.ledger import SCOPE_FIELDS, BudgetState, Ledger
from ccproxy_core.plugin_host.log_store import LogFilters, LogStore, NameFilter

log = logging.getLogger("ccproxy.budgets")


async def stored_spend(store: LogStore, state: BudgetState) -> Decimal:
    """What the store holds for this budget's period, of the records its scope covers.

    Raises what the store raises when it cannot answer.
    """
    kind, _, target = state.settings.scope.partition(":")
    scope: dict[str, Any] = {SCOPE_FIELDS[kind]: NameFilter(include=(target,))} if kind in SCOPE_FIELDS else {}
    filters = LogFilters(start_time=state.period_start, end_time=datetime.now(UTC), **scope)
    analytics = await store.analytics(filters, "day")
    return Decimal(str(analytics["cost"]["total_usd"] or 0))


class StoreSync:
    """The background task that reads each budget's spend from a shared store, now and then.

    With ``until_read`` it reads only those budgets, each until the store has answered once: the
    budgets whose start-up read failed (the store was away), when nothing else would read them again.
    """

    def __init__(
        self, ledger: Ledger, store: LogStore, every_seconds: float, until_read: list[BudgetState] | None = None
    ) -> None:
        self.ledger, self.store, self.every_seconds = ledger, store, every_seconds
        self.until_read = until_read
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            if self.until_read is None:
                for state in self.ledger.budgets:
                    await self.sync(state)
                continue
            self.until_read = [state for state in self.until_read if not await self.sync(state)]
            if not self.until_read:
                log.info("budgets: the log store answered; every budget has its spend so far")
                return

    async def sync(self, state: BudgetState) -> bool:
        """Read one budget's spend from the store and take it when it is more than this instance counted;
        False when the store could not answer."""
        self.ledger.roll_over(state)
        period_start = state.period_start
        state.added_since_sync = Decimal(0)
        try:
            stored = await stored_spend(self.store, state)
        except Exception as exc:  # noqa: BLE001 - the store may be away a while: try again next time
            if not self._failing:
                log.warning("budgets: the shared log store could not say what was spent (%s); retrying", exc)
            self._failing = True
            return False
        self._failing = False
        if state.period_start == period_start:  # else a new period began meanwhile
            self.ledger.catch_up(state, stored + state.added_since_sync)
        return True
