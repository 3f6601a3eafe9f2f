"""OpenAI Responses run in the background: billed once, on the retrieval that first sees them finished.

``POST /v1/responses`` with ``background: true`` answers at once with a ``queued`` response
and no usage; the provider bills the work when it finishes, and the usage appears only on
``GET /v1/responses/{id}`` (or a resumed stream of it), which a client may call many times, and
on ``POST /v1/responses/{id}/cancel``, which answers with the response as far as it got.
So ccproxy remembers the ids of the background responses it saw started and not finished,
and gives their usage, cost and outcome to the first retrieval that shows them finished with
their usage (one cancelled may show no usage at first, and its usage later).
Every other retrieval is a read of a stored object: it records no tokens and no cost.

The memory is per process and bounded: a response started through another worker or
before a restart, or pushed out by ``MAX_WAITING`` newer ones, is not billed on retrieval.
"""

from __future__ import annotations

from collections import OrderedDict

from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers.openai import RESPONSES, STORED_RESPONSE

MAX_WAITING = 10_000
"""Background responses remembered at once; the oldest are forgotten first."""
FINISHED = frozenset({"completed", "failed", "incomplete", "cancelled"})


class BackgroundResponses:
    """The background responses started through this process and not yet seen finished."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self._waiting: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def settle(self, usage: Usage, reader: str) -> Usage:
        """The usage the record of an exchange read with ``reader`` should carry."""
        if reader == RESPONSES:
            if usage.background and usage.response_id and usage.response_status not in FINISHED:
                self._remember(usage.response_id)
            return usage
        if reader != STORED_RESPONSE:
            return usage
        response_id = usage.response_id
        # Finished with its usage: a job first shown cancelled without usage may still show it later.
        finished = usage.response_status in FINISHED and usage.has_tokens
        if response_id and finished and response_id in self._waiting:
            del self._waiting[response_id]
            return usage
        # A job's own failure is the job's, recorded when first seen finished; an error body without a response
        # in it is this call's.
        failed = usage.failed and usage.response_id is None
        return Usage(
            response_model=usage.response_model,
            error_type=usage.error_type,
            error_message=usage.error_message,
            failed=failed,
        )

    def _remember(self, response_id: str) -> None:
        self._waiting[response_id] = None
        self._waiting.move_to_end(response_id)
        while len(self._waiting) > self._limit:
            self._waiting.popitem(last=False)
