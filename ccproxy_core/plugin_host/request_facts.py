"""What ccproxy forwards and accounts a request by, kept as it arrived whatever a request hook writes.

A plugin must not change the context it is handed (but its ``state``); one that did would otherwise
send the request, and the client's key, to another provider, or have its answer read as another
kind. The attribution fields stay the plugin's to write, as documented.
"""

from __future__ import annotations

import logging
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import RequestContext

FACTS = (
    "request_id",
    "method",
    "path",
    "endpoint",
    "query",
    "service_type",
    "model",
    "streaming",
    "started_at",
    "started_monotonic",
)
facts_of: Any = attrgetter(*FACTS)
"""``facts_of(context)``: the request's facts, to hand to :func:`put_back` after the hooks ran."""


def changes_log() -> RateLimitedLog:
    """Where :func:`put_back` says what it restored: a line every 10 s at most, one per app."""
    return RateLimitedLog(logging.getLogger("ccproxy.plugins"))


def put_back(context: RequestContext, facts: tuple[Any, ...], hook: str, log: RateLimitedLog) -> None:
    """Restore the facts a hook changed, and say so."""
    if facts_of(context) == facts:
        return
    changed = [name for name, value in zip(FACTS, facts, strict=True) if getattr(context, name) != value]
    for name, value in zip(FACTS, facts, strict=True):
        setattr(context, name, value)
    log.log(
        "a plugin's %s changed %s of request %s; ccproxy put it back: a request is forwarded and recorded as it "
        "arrived, and a plugin may write only to context.state and the attribution fields",
        hook,
        ", ".join(changed),
        facts[0],
    )
