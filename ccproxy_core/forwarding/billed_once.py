"""What the provider bills once, however often a client fetches it: background responses and batch results."""

from __future__ import annotations

from ccproxy_core.accounting.background_responses import BackgroundResponses, Origin
from ccproxy_core.accounting.counted_batch_results import CountedBatchResults
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.upstream import credential_values


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
            results = (exchange.context.service_type, exchange.context.path)
            usage = self.batch_results.settle(usage, results, read_whole)
        exchange.usage = usage
        return origin
