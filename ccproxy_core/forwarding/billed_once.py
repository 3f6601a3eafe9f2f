"""What the provider bills once, however often a client fetches it: background responses and batch results."""

from __future__ import annotations

from ccproxy_core.accounting.background_responses import BackgroundResponses, Origin
from ccproxy_core.accounting.counted_batch_results import CountedBatchResults
from ccproxy_core.forwarding.credentials import credential_values
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.route_table import canonical_path


class BilledOnce:
    """One process's memory of the background responses and batch results it has billed."""

    def __init__(self) -> None:
        self.background_responses = BackgroundResponses()
        self.batch_results = CountedBatchResults()

    def settle(self, exchange: Exchange) -> Origin:
        """Give ``exchange`` the usage its record should carry; the origin to fill its record from."""

        def keys() -> tuple[str, ...]:  # looked up only for a background response started: not on every request
            return credential_values(exchange.sent_headers) if exchange.sent_headers else ()

        usage, origin = self.background_responses.settle(exchange.usage, exchange.reader, exchange.context, keys)
        if exchange.reader == "batch_results":
            read_whole = exchange.failure is None and exchange.upstream_status == 200 and not exchange.accounting_lost
            usage = self.batch_results.settle(usage, batch_results_of(exchange), read_whole)
        exchange.usage = usage
        return origin

    def batch_results_counted(self, exchange: Exchange) -> int:
        """How many of the first results ``exchange`` fetches were counted by an earlier fetch cut short."""
        return self.batch_results.counted_before(batch_results_of(exchange))


def batch_results_of(exchange: Exchange) -> tuple[str, str]:
    """The batch results an exchange fetches: its provider, and its path as the provider sees it
    (``/api/v1/...``, ``/v1/...`` and ``/v1//...`` are the same results)."""
    path = canonical_path(exchange.context.path)
    return exchange.context.service_type, path[4:] if path.startswith("/api/") else path
