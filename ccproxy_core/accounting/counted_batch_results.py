"""Batch results already counted: fetched again through the same process, they record no usage.

A client may fetch the same batch results many times (a retry, a second tool, an SDK iterator
run twice); the provider billed the batch once. So ccproxy remembers the results it counted
in full (the provider answered 200 and they were read to the end) and records a later fetch of
the same results as a read of a stored object: no tokens, no cost. A fetch cut short is not
remembered: the next one counts every result.

The memory is per process and bounded, as for background responses: results counted through
another worker or before a restart, or pushed out by ``MAX_COUNTED`` newer ones, count again.
"""

from __future__ import annotations

from collections import OrderedDict

from ccproxy_core.accounting.usage import Usage

MAX_COUNTED = 10_000
"""Batch results remembered at once; the oldest are forgotten first."""


class CountedBatchResults:
    """The batch results this process has counted in full, by provider and path."""

    def __init__(self, limit: int = MAX_COUNTED) -> None:
        self._counted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._limit = limit

    def settle(self, usage: Usage, results: tuple[str, str], read_whole: bool) -> Usage:
        """The usage the record of a fetch of ``results`` (provider, path) should carry."""
        if usage.batch is None or not usage.batch.results:
            return usage
        if results in self._counted:
            self._counted.move_to_end(results)
            return Usage(response_model=usage.response_model)
        if read_whole:
            self._counted[results] = None
            while len(self._counted) > self._limit:
                self._counted.popitem(last=False)
        return usage
