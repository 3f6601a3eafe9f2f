"""What each budget has spent in its current period, and the decision for a request it covers.

Decisions are made from memory on the request path. Spend is added when a request's record
arrives, so requests admitted while a blocking budget still had room may together overshoot
it by at most the cost of the requests in flight at that moment. Amounts are summed as
decimals, as the records hold them: three requests of 0.018 reach a limit of 0.054 exactly.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ccproxy_budgets.periods import period_bounds
from ccproxy_core.forwarding.route_table import UNMATCHED
from ccproxy_core.plugin_host.admission import Admission
from ccproxy_core.providers import FREE_ENDPOINTS, NO_NEW_SPEND
from ccproxy_core.runtime.settings import BudgetSettings

log = logging.getLogger("ccproxy.budgets")
THRESHOLDS = (Decimal("0.5"), Decimal("0.8"), Decimal("1"))
"""Shares of the limit at which a notice is sent, once per period each."""
SCOPE_FIELDS = {"project": "project", "api_key": "api_key_id", "session": "session_id", "model": "model"}


@dataclass
class BudgetState:
    """One budget and its spend in the current period."""

    settings: BudgetSettings
    period_start: datetime
    period_end: datetime
    spent: Decimal = Decimal(0)
    refused: int = 0
    notified: set[Decimal] = field(default_factory=set)
    added_since_sync: Decimal = Decimal(0)
    """This instance's spend since the shared store was last asked (see :mod:`.store_sync`)."""
    left_behind: tuple[datetime, Decimal, set[Decimal]] | None = None
    """The start, spend and notices of the period before this one, should the clock step back into it."""
    limit: Decimal = field(init=False)
    """``limit_usd`` as the decimal it was written as (0.054, not the float just below it)."""

    def __post_init__(self) -> None:
        self.limit = Decimal(str(self.settings.limit_usd))

    @property
    def left(self) -> Decimal:
        return max(Decimal(0), self.limit - self.spent)

    def covers(self, request: Any) -> bool:
        """Whether a request (its context or its record) falls under this budget's scope."""
        scope = self.settings.scope
        if scope == "all":
            return True
        kind, _, target = scope.partition(":")
        return getattr(request, SCOPE_FIELDS[kind], None) == target

    def spent_at(self, now: datetime) -> Decimal:
        """What is spent in the period holding ``now``: nothing yet once the recorded period has ended.

        Only reads, so it may run on another thread than the event loop that rolls the period over.
        """
        return Decimal(0) if now >= self.period_end else self.spent

    def add_to_period_left(self, began: datetime, amount: Decimal) -> tuple[datetime, datetime] | None:
        """Count ``amount`` in the period left behind, when ``began`` falls in it; that period's bounds if so."""
        behind = self.left_behind
        if behind is None:
            return None
        start, end = period_bounds(began, self.settings.period, self.settings.timezone)
        if start != behind[0]:
            return None
        self.left_behind = (start, behind[1] + amount, behind[2])
        return start, end

    def roll_over(self, now: datetime) -> bool:
        """Move to the period holding ``now``: the next one, or back to the one before when the wall clock
        stepped back (set right by NTP, say), with what it had spent: requests of that period count there.
        True when it moved."""
        if self.period_start <= now < self.period_end:
            return False
        start, end = period_bounds(now, self.settings.period, self.settings.timezone)
        behind, self.left_behind = self.left_behind, (self.period_start, self.spent, self.notified)
        if behind is not None and behind[0] == start:
            self.spent, self.notified = behind[1], behind[2]
        else:
            self.spent, self.notified = Decimal(0), set()
        self.period_start, self.period_end, self.added_since_sync = start, end, Decimal(0)
        return True


Notice = dict[str, Any]


class Ledger:
    """Every budget's state; ``notify`` is called (on the event loop, without waiting) with each notice."""

    def __init__(
        self,
        budgets: list[BudgetSettings],
        notify: Callable[[Notice], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        now = clock()
        self.clock, self.notify = clock, notify
        self.budgets = [BudgetState(budget, *period_bounds(now, budget.period, budget.timezone)) for budget in budgets]

    def start_from(self, state: BudgetState, spent: Decimal) -> None:
        """Spend already stored for the current period; thresholds passed before are not announced again."""
        state.spent = spent
        state.notified = {share for share in THRESHOLDS if spent >= share * state.limit}

    def roll_over(self, state: BudgetState) -> None:
        """Start the budget's next period if its current one has ended."""
        if state.roll_over(self.clock()):
            self._announce(state)  # a period stepped back into may have passed a threshold meanwhile

    def catch_up(self, state: BudgetState, spent: Decimal) -> None:
        """What a shared store says was spent, when more than counted here (other instances spent it)."""
        if spent > state.spent:
            state.spent = spent
            self._announce(state)

    def admit(self, context: Any) -> Admission | None:
        """Refuse when a covering blocking budget is spent; otherwise say what is left of each."""
        now = self.clock()
        covering = [state for state in self.budgets if state.covers(context)]
        if not covering:
            return None
        for state in covering:
            if state.roll_over(now):
                self._announce(state)
        # Rounded down: a header must never say more is left than is (0.00195 reads 0.0019, not 0.0020).
        left = ", ".join(
            f"{state.settings.name}={state.left.quantize(_HEADER_STEP, rounding=ROUND_DOWN)}" for state in covering
        )
        headers = [("x-ccproxy-budget-remaining-usd", left)]
        spent = next(
            (state for state in covering if state.settings.action == "block" and state.spent >= state.limit),
            None,
        )
        if spent is None or _starts_no_spend(context):
            return Admission(headers=tuple(headers))
        spent.refused += 1
        retry_after = max(1, math.ceil((spent.period_end - now).total_seconds()))
        # retry-after for clients that wait; x-should-retry: false so the SDKs raise at once instead of
        # sleeping until the period ends (the Anthropic SDK obeys any retry-after) and spending in the next.
        headers += [("retry-after", str(retry_after)), ("x-should-retry", "false")]
        message = (
            f"ccproxy budget {spent.settings.name} has spent {usd_text(spent.spent)} of its "
            f"{usd_text(spent.limit)} USD for this {spent.settings.period}; "
            f"requests are refused until {spent.period_end.isoformat()}"
        )
        return Admission(refuse_status=429, error_type="budget_exceeded", message=message, headers=tuple(headers))

    def add(self, record: Any) -> None:
        """Count a finished request's cost in every budget covering it; announce crossed thresholds.

        A request counts in the period it began in (its record's ``timestamp``), as the stored spend,
        ``/logs/analytics`` and ``ccproxy report`` count it: a stream that began before midnight
        and ended after it is yesterday's, and a restart does not move it.
        """
        cost = record.cost_usd
        if not cost:
            return
        now = self.clock()
        amount = cost if isinstance(cost, Decimal) else Decimal(str(cost))
        for state in self.budgets:
            if not state.covers(record):
                continue
            if state.roll_over(now):
                self._announce(state)
            if not state.period_start <= record.timestamp < state.period_end:
                # Another period's: the one just left (a stream that ended after midnight), which keeps its
                # spend should the clock step back into it (set right by NTP), and its notices are due
                if (bounds := state.add_to_period_left(record.timestamp, amount)) is not None:
                    assert state.left_behind is not None
                    self._announce(state, bounds, *state.left_behind[1:])
                continue
            state.spent += amount
            state.added_since_sync += amount
            self._announce(state)

    def _announce(
        self,
        state: BudgetState,
        bounds: tuple[datetime, datetime] | None = None,
        spent: Decimal | None = None,
        notified: set[Decimal] | None = None,
    ) -> None:
        """Notices of the thresholds the current period's spend crossed, or those of the period ``bounds``."""
        current = bounds is None
        start, end = (state.period_start, state.period_end) if bounds is None else bounds
        spent = state.spent if spent is None else spent
        notified = state.notified if notified is None else notified
        limit = state.limit
        crossed = [share for share in THRESHOLDS if spent >= share * limit and share not in notified]
        if not crossed:
            return
        notified.update(crossed)
        if 1.0 in crossed:
            name, period = state.settings.name, state.settings.period
            if current:
                when, why = (
                    f"this {period}",
                    "requests now refused" if state.settings.action == "block" else "warning only",
                )
            elif start > self.clock():
                when, why = (
                    f"in the {period} from {start.isoformat()}",
                    "a request of it ended after the clock was set back",
                )
            else:
                when, why = f"in the past {period}", f"a request that began before {end.isoformat()} ended after it"
            log.warning("budget %s is spent: %s of %s USD %s (%s)", name, usd_text(spent), usd_text(limit), when, why)
        for share in crossed:
            self.notify(
                {
                    "budget": state.settings.name,
                    "scope": state.settings.scope,
                    "period": state.settings.period,
                    "threshold_percent": round(share * 100),
                    "spent_usd": float(round(spent, 6)),
                    "limit_usd": state.settings.limit_usd,
                    "action": state.settings.action,
                    "period_start": start.isoformat(),
                    "period_end": end.isoformat(),
                }
            )


_NEVER_BILLED = FREE_ENDPOINTS | {UNMATCHED}
"""Endpoints a spent budget lets through: free calls, and paths that are never forwarded (they get their 404)."""
_HEADER_STEP = Decimal("0.0001")
"""The remaining-USD header's precision: a ten-thousandth of a dollar."""


def _starts_no_spend(context: Any) -> bool:
    """A free call, one never forwarded, or one that manages, cancels or reads what was started before."""
    endpoint = getattr(context, "endpoint", None)
    method = getattr(context, "method", None)
    if endpoint in _NEVER_BILLED or ("GET" if method == "HEAD" else method, endpoint) in NO_NEW_SPEND:
        return True
    # A path ccproxy has no name for (fine-tuning jobs, Assistants runs): reading, deleting and cancelling
    # start nothing, and a refused cancel would keep a running job billing.
    if isinstance(endpoint, str) and endpoint.endswith("*"):
        return method in _READ_OR_DELETE or (
            method == "POST" and _CANCEL.search(getattr(context, "path", "")) is not None
        )
    return False


_READ_OR_DELETE = frozenset({"GET", "HEAD", "DELETE"})
_CANCEL = re.compile(r"/cancel/?$")


def usd_text(amount: Any) -> str:
    """Dollars with cents, and the digits below a cent up to a millionth when there are any (small budgets)."""
    whole, _, cents = f"{amount:.6f}".rstrip("0").partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"
