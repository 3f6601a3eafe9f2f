"""Starting the budgets with the server: the ledger, the spend stored so far, the notifier, the metrics."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ccproxy_budgets.ledger import BudgetState, Ledger, usd_text
from ccproxy_budgets.metrics import BudgetCollector
from ccproxy_budgets.notifier import Notifier
from ccproxy_budgets.observer import OBSERVER_NAME, BudgetObserver
from ccproxy_budgets.periods import LONGEST_DAYS
from ccproxy_budgets.settings import BudgetsPluginSettings
from ccproxy_budgets.store_sync import StoreSync, stored_spend
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.plugin_host.log_store import LogStore
from ccproxy_core.plugin_host.plugin_settings import section_values

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.runtime.settings import Settings

log = logging.getLogger("ccproxy.budgets")
STATE_ATTRIBUTE = "ccproxy_budgets"
COLLECTOR_ATTRIBUTE = "ccproxy_budgets_collector"


START_RETRY_SECONDS = 5.0
"""How often a budget whose start-up read failed asks the log store again (until it answers)."""


async def start_budgets(app: FastAPI, settings: Settings) -> None:
    if not settings.budgets:
        raise StartupError(
            "OBSERVABILITY__BUDGETS_ENABLED is true but no budget is defined: "
            "add [[budgets]] tables to the config file, or turn the flag off"
        )
    warn_of_uncounted_streams(settings)
    refuse_retention_shorter_than_a_period(settings)
    observability = section_values(settings, BudgetsPluginSettings)
    notifier = None
    if observability.budgets_webhook_url:
        url = observability.budgets_webhook_url.get_secret_value()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:  # not echoed: the URL is a secret
            raise StartupError(
                "OBSERVABILITY__BUDGETS_WEBHOOK_URL is not an http(s) URL: set it to the webhook's whole address "
                "(https://hooks.example.com/...), or unset it"
            )
        notifier = Notifier(url, observability.budgets_webhook_format)
        notifier.start()
    ledger = Ledger(list(settings.budgets), notifier.notify if notifier else lambda notice: None)
    host = host_of(app)
    store = host.log_store()
    unread = []
    for state in ledger.budgets:
        spent = await _spend_at_start(store, state)
        if spent is None:
            unread.append(state)
        ledger.start_from(state, spent or Decimal(0))
        log.info(
            "budget %s (%s, %s per %s, %s): %s USD spent so far",
            state.settings.name,
            state.settings.scope,
            state.settings.limit_usd,
            state.settings.period,
            state.settings.action,
            usd_text(state.spent),
        )
    registry = host.metrics_registry()
    collector = None
    if registry is not None:
        collector = BudgetCollector(ledger)
        earlier = getattr(app.state, COLLECTOR_ATTRIBUTE, None)
        if earlier is not None:  # the app's last start left its figures for a last scrape or push
            registry.unregister(earlier)
        registry.register(collector)
        setattr(app.state, COLLECTOR_ATTRIBUTE, collector)
    observer = BudgetObserver(ledger)
    host.plugin_manager.register(observer, name=OBSERVER_NAME)
    sync = None
    shared = getattr(settings.observability, "log_storage_backend", None) == "clickhouse"
    if store is not None and shared and observability.budgets_sync_seconds > 0:
        sync = StoreSync(ledger, store, observability.budgets_sync_seconds)
        sync.start()
    elif store is not None and unread:  # nothing would read them again: retry until the store answers
        sync = StoreSync(ledger, store, START_RETRY_SECONDS, until_read=unread)
        sync.start()
    setattr(app.state, STATE_ATTRIBUTE, (observer, notifier, sync))


def warn_of_uncounted_streams(settings: Settings) -> None:
    """Say once that a blocking budget lets OpenAI chat streams through uncounted unless ccproxy asks for their usage."""
    blocking = [budget.name for budget in settings.budgets if budget.action == "block"]
    if blocking and not settings.upstream.openai_stream_include_usage:
        log.warning(
            "UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE is off: OpenAI chat completion streams that do not ask for "
            "usage (the SDKs' default) have no known cost, so the blocking budgets (%s) do not count them; "
            "set UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE=true to have ccproxy ask for it (see docs/budgets.md)",
            ", ".join(blocking),
        )


def refuse_retention_shorter_than_a_period(settings: Settings) -> None:
    """A budget reads its period's spend back from the log store at start-up: the records must outlive the period."""
    retention = getattr(settings.observability, "log_retention_days", None)
    if retention is None or not getattr(settings.observability, "logs_collection_enabled", False):
        return
    for budget in settings.budgets:
        # A day more than the period: a store may delete whole UTC days, and a period in another time
        # zone begins inside one.
        days = LONGEST_DAYS[budget.period] + 1
        if retention < days:
            raise StartupError(
                f"OBSERVABILITY__LOG_RETENTION_DAYS={retention:g} deletes records that budget {budget.name!r} counts "
                f"(spend per {budget.period}, read back from the log store at each start): set it to at least {days}, "
                "or unset it"
            )


async def stop_budgets(app: FastAPI) -> None:
    state = getattr(app.state, STATE_ATTRIBUTE, None)
    if state is None:
        return
    setattr(app.state, STATE_ATTRIBUTE, None)
    observer, notifier, sync = state
    if sync is not None:
        await sync.stop()
    if app.state.plugin_manager.is_registered(observer):
        app.state.plugin_manager.unregister(observer)
    # The collector stays registered, as the metrics plugin keeps its registry readable: the Pushgateway's last
    # push, after the stores have stopped (and so after the budgets), still carries the budgets' figures.
    if notifier is not None:
        await notifier.stop()


async def _spend_at_start(store: LogStore | None, state: BudgetState) -> Decimal | None:
    """What the log store holds for this budget's period (0 without a store); ``None`` when it cannot answer."""
    if store is None:
        return Decimal(0)
    try:
        return await stored_spend(store, state)
    except Exception as exc:  # noqa: BLE001 - a store that cannot answer must not stop the server
        log.error(
            "budget %s starts from 0: the log store could not say what was spent (%s); asking again every %g s",
            state.settings.name,
            exc,
            START_RETRY_SECONDS,
        )
        return None
