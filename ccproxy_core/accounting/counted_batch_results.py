"""Batch results already counted: fetched again through the same process, they record no usage.

A client may fetch the same batch results many times (a retry, a second tool, an SDK iterator
run twice or left early); the provider billed the batch once. So ccproxy remembers the results
it counted in full (the provider answered 200 and they were read to the end) and records a later
fetch of the same results as a read of a stored object: no tokens, no cost. Of a fetch cut short
it remembers how many results it counted, and a later fetch counts only the results after them
(a provider serves the same results in the same order each time). Two fetches of the same
results at once: the one that settles second, if it read results the first one counted, has
no cost (``priced`` false) rather than a cost counted twice.

The memory is per process and bounded, as for background responses: results counted through
another worker or before a restart, or pushed out by ``MAX_COUNTED`` newer ones, count again.
"""

from __future__ import annotations

from collections import OrderedDict

from ccproxy_core.accounting.usage import Usage

MAX_COUNTED = 10_000
"""Batch results remembered at once; the oldest are forgotten first."""


class CountedBatchResults:
    """The batch results this process has counted, by provider and path: all of them (``None``), or the
    first so many."""

    def __init__(self, limit: int = MAX_COUNTED) -> None:
        self._counted: OrderedDict[tuple[str, str], int | None] = OrderedDict()
        self._limit = limit

    def counted_before(self, results: tuple[str, str]) -> int:
        """How many of the first results of ``results`` (provider, path) a fetch cut short counted already;
        the reader of the next fetch leaves them out."""
        return self._counted.get(results) or 0

    def settle(self, usage: Usage, results: tuple[str, str], read_whole: bool) -> Usage:
        """The usage the record of a fetch of ``results`` (provider, path) should carry; its reader left
        out the :meth:`counted_before` results."""
        batch = usage.batch
        if batch is None or not batch.results:
            return usage
        if read_whole and batch.unread_last_line:  # a whole answer ends in a result that does not read
            batch.unreadable = True
        before = self._counted.get(results, 0)
        # Nothing read that was not counted (a result that did not read is not counted: its bill is unknown).
        if before is None or (batch.results <= batch.counted_before and not batch.unreadable):
            self._counted.move_to_end(results)
            return Usage(response_model=usage.response_model)
        if before > batch.counted_before:  # a fetch at the same time counted some of the same results
            batch.unreadable = True  # which ones is unknown: no cost, rather than a cost counted twice
        self._counted[results] = None if read_whole else max(before, batch.results)
        self._counted.move_to_end(results)
        while len(self._counted) > self._limit:
            self._counted.popitem(last=False)
        return usage
