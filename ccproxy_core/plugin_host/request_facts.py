"""What ccproxy forwards and accounts a request by, kept as it arrived whatever a request hook writes.

A plugin must not change the context it is handed (but its ``state``); one that did would otherwise
send the request, and the client's key, to another provider, or have its answer read as another
kind. The attribution fields stay the plugin's to write, as documented.
"""

from __future__ import annotations

import logging
from operator import attrgetter, is_
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
    "client_ip",
    "user_agent",
    "service_type",
    "model",
    "streaming",
    "started_at",
    "started_monotonic",
    "state",  # its contents are the plugins'; the dict itself every plugin counts on
)
ATTRIBUTION = ("session_id", "end_user", "project", "api_key_id", "api_key_name", "client_name", "client_version")
"""Text fields a plugin may write (or set to None); ``tags`` too, a dict of text to text."""
_FIELDS = (*FACTS, *ATTRIBUTION)
_read = attrgetter(*_FIELDS)


def facts_of(context: RequestContext) -> tuple[Any, ...]:
    """What the request came with (its tags copied: a hook may change them in place), for :func:`put_back`."""
    return (*_read(context), dict(context.tags))


def changes_log() -> RateLimitedLog:
    """Where :func:`put_back` says what it restored: a line every 10 s at most, one per app."""
    return RateLimitedLog(logging.getLogger("ccproxy.plugins"))


def put_back(
    context: RequestContext, facts: tuple[Any, ...], hook: str, log: RateLimitedLog, suspects: tuple[str, ...] = ()
) -> None:
    """Restore the facts a hook changed, and attribution it set to what a record cannot hold; say so, naming
    the plugins that may have (``suspects``: those implementing the hook that are not ccproxy's own)."""
    now = _read(context)
    restored = [] if all(map(is_, now, facts)) else _to_undo(now, facts)  # by identity: a value may lie
    for name in restored:
        setattr(context, name, facts[_FIELDS.index(name)])
    if not _plain_tags(context.tags):
        restored.append("tags")
        context.tags = facts[-1]
    if restored:
        who = f"plugin {suspects[0]}'s" if len(suspects) == 1 else f"a plugin's ({' or '.join(suspects)})"
        log.log(
            "%s %s changed %s of request %s; ccproxy put it back: a request is forwarded and recorded as it "
            "arrived, and a plugin may write only to context.state and the attribution fields (text; tags, text "
            "to text)",
            who if suspects else "a plugin's",
            hook,
            ", ".join(restored),
            facts[0],
        )


def _to_undo(now: tuple[Any, ...], facts: tuple[Any, ...]) -> list[str]:
    return [name for name, was, value in zip(_FIELDS, facts, now, strict=False) if _undone(name, was, value)]


def _undone(name: str, was: Any, value: Any) -> bool:
    """Whether the hook's ``value`` of ``name`` must go: any change of a fact, attribution that is not text."""
    if value is was:
        return False
    return name in FACTS or not (value is None or type(value) is str)


def _plain_tags(tags: Any) -> bool:
    return type(tags) is dict and all(type(key) is str and type(value) is str for key, value in tags.items())
