"""OpenAI Responses run in the background: billed once, on the retrieval that first sees them finished.

``POST /v1/responses`` with ``background: true`` answers at once with a ``queued`` response
and no usage; the provider bills the work when it finishes, and the usage appears only on
``GET /v1/responses/{id}`` (or a resumed stream of it), which a client may call many times, and
on ``POST /v1/responses/{id}/cancel``, which answers with the response as far as it got.
So ccproxy remembers the ids of the background responses it saw started and not finished,
and gives their usage, cost and outcome to the first retrieval that shows them finished (with
their usage, if any: one cancelled may show no usage at first, and its usage later), with the
model and attribution of the call that started them, which a retrieval does not repeat.
Every other retrieval is a read of a stored object: it records no tokens and costs 0, except
one showing a response finished with usage that this process neither billed nor saw started,
which may have been billed elsewhere or nowhere: its cost is unknown.

The memory is per process and bounded: a response started through another worker or
before a restart, or pushed out by ``MAX_WAITING`` newer ones, is not billed on retrieval.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.key_masking import without_keys
from ccproxy_core.providers.openai import RESPONSES, STORED_RESPONSE

MAX_WAITING = 10_000
"""Background responses remembered at once; the oldest are forgotten first."""
FINISHED = frozenset({"completed", "failed", "incomplete", "cancelled"})


_ATTRIBUTION = ("session_id", "end_user", "project")


@dataclass(frozen=True, slots=True)
class Origin:
    """What a background response was started for: the model asked for, and who it was for."""

    model: str | None = None
    session_id: str | None = None
    end_user: str | None = None
    project: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, context: RequestContext, credentials: tuple[str, ...]) -> Origin:
        """The origin of a response started by the request of ``context``, sent with ``credentials``.

        The model is kept with those keys masked, as the starting call's own record has it: the
        retrieval's record is made safe only of the retrieval's keys.
        """
        model = context.model if context.model is None else without_keys(credentials, context.model)
        return cls(model, context.session_id, context.end_user, context.project, context.tags)

    def fill(self, record: AccessRecord) -> AccessRecord:
        """``record`` with what it lacks of this origin; what the retrieval said itself stays."""
        changes: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("model", *_ATTRIBUTION)
            if getattr(record, name) is None and getattr(self, name) is not None
        }
        if self.tags and not record.tags:
            changes["tags"] = dict(self.tags)
        return dataclasses.replace(record, **changes) if changes else record


NO_ORIGIN = Origin()
"""The origin of every exchange that settles no background response: it fills nothing."""


class BackgroundResponses:
    """The background responses started through this process and not yet seen finished, and those it billed."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self._waiting: OrderedDict[str, Origin] = OrderedDict()
        self._billed: OrderedDict[str, None] = OrderedDict()  # later reads of these are free
        self._limit = limit

    def settle(
        self, usage: Usage, reader: str, context: RequestContext, credentials: Callable[[], tuple[str, ...]]
    ) -> tuple[Usage, Origin]:
        """The usage the record of an exchange read with ``reader`` should carry, and the origin to fill it from.

        ``credentials`` gives the keys the exchange was sent with; asked only of a background response started.
        """
        if reader == RESPONSES:
            if usage.background and usage.response_id and usage.response_status not in FINISHED:
                self._remember(usage.response_id, Origin.of(context, credentials()))
            elif usage.background and usage.response_id and usage.has_tokens:  # a background stream, billed here
                self._note_billed(usage.response_id)
            return usage, NO_ORIGIN
        if reader != STORED_RESPONSE:
            return usage, NO_ORIGIN
        response_id = usage.response_id
        # Finished: a job first shown cancelled without usage may still show its usage later.
        finished = usage.response_status in FINISHED and (usage.has_tokens or usage.response_status != "cancelled")
        if response_id and finished and response_id in self._waiting:
            self._note_billed(response_id)
            return usage, self._waiting.pop(response_id)
        # A job's own failure is the job's, recorded when first seen finished; an error body without a response
        # in it is this call's.
        failed = usage.failed and usage.response_id is None
        return Usage(
            response_model=usage.response_model,
            error_type=usage.error_type,
            error_message=usage.error_message,
            failed=failed,
            # Billed by whoever saw it finish first: through another worker, before a restart, or by nobody.
            counted_elsewhere=usage.background and finished and usage.has_tokens and response_id not in self._billed,
        ), NO_ORIGIN

    def _note_billed(self, response_id: str) -> None:
        self._billed[response_id] = None
        self._billed.move_to_end(response_id)
        while len(self._billed) > self._limit:
            self._billed.popitem(last=False)

    def _remember(self, response_id: str, origin: Origin) -> None:
        self._waiting[response_id] = origin
        self._waiting.move_to_end(response_id)
        while len(self._waiting) > self._limit:
            self._waiting.popitem(last=False)
