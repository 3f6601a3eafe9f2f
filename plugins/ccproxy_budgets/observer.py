"""The budgets' request hooks: decide from the ledger before forwarding, count the cost after."""

from __future__ import annotations

from ccproxy_budgets.ledger import Ledger
from ccproxy_core import hookimpl
from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.plugin_host.admission import Admission

OBSERVER_NAME = "budgets.observer"


class BudgetObserver:
    """Registered per app while it serves, so the request hooks reach that app's ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @hookimpl
    def admit_request(self, context: RequestContext) -> Admission | None:
        """Refuse a request a spent blocking budget covers; tell what is left of each covering budget."""
        return self.ledger.admit(context)

    @hookimpl
    def on_request_end(self, context: RequestContext, record: AccessRecord) -> None:
        """Count the request's cost (refused requests cost nothing)."""
        self.ledger.add(record)
