"""Session and end user, from the request body's fields the clients fill in.

Claude Code puts its identity in the Messages API's ``metadata.user_id``:

- since early 2026 a JSON string: ``{"device_id": "...", "account_uuid": "...", "session_id": "..."}``;
- before that ``user_<device hash>_account_<account uuid>_session_<session uuid>`` (the account
  part is empty for API-key users).

Any other ``metadata.user_id`` (a JSON object too, when it names neither a session nor an account)
is what Anthropic documents it to be: an opaque id of the end user.
OpenAI's request bodies carry the end user in ``safety_identifier`` (newer) or ``user``; their
``metadata`` is free-form tags, so a ``user_id`` there counts only when neither is given.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from ccproxy_core.providers.openai import NAME as OPENAI

from .clean import clean_text

BODY_FIELDS = ("metadata", "safety_identifier", "user")
"""The top-level fields of a request body read here: a body too large to decode is scanned for these alone."""
MAX_ID_CHARS = 128
_MAX_USER_ID_CHARS = 1024
_LEGACY_USER_ID = re.compile(r"^user_([0-9A-Za-z]*)_account_([0-9A-Za-z-]*)_session_([0-9A-Za-z-]+)$")


def session_and_user_from_body(
    payload: dict[str, Any] | None, service_type: str | None = None
) -> tuple[str | None, str | None]:
    """``(session_id, end_user)`` read from a decoded request body's top level.

    The end user is the first found of ``metadata.user_id``, ``safety_identifier`` and ``user``; for
    ``service_type`` ``"openai"``, whose API documents the last two, of ``safety_identifier``, ``user``
    and ``metadata.user_id``.
    """
    if payload is None:
        return None, None
    metadata = payload.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    named = clean_text(payload.get("safety_identifier"), MAX_ID_CHARS) or clean_text(payload.get("user"), MAX_ID_CHARS)
    if service_type == OPENAI:  # free-form tags there: Claude Code's forms of it name no session
        return None, named or clean_text(user_id, MAX_ID_CHARS)
    session, from_metadata = _from_user_id(user_id) if isinstance(user_id, str) and user_id else (None, None)
    return session, from_metadata or named


def _from_user_id(user_id: str) -> tuple[str | None, str | None]:
    if len(user_id) > _MAX_USER_ID_CHARS:  # not Claude Code's; and never a cache key this large
        return None, clean_text(user_id, MAX_ID_CHARS)
    return _from_anthropic_user_id(user_id)


@lru_cache(maxsize=1024)
def _from_anthropic_user_id(user_id: str) -> tuple[str | None, str | None]:
    """Cached: a client sends the same ``user_id`` with every request of a session."""
    if user_id.startswith("{"):
        parsed = _json_object(user_id)
        if parsed is not None and ("session_id" in parsed or "account_uuid" in parsed):
            return clean_text(parsed.get("session_id"), MAX_ID_CHARS), clean_text(
                parsed.get("account_uuid"), MAX_ID_CHARS
            )
    legacy = _LEGACY_USER_ID.match(user_id)
    if legacy is not None:
        _device, account, session = legacy.groups()
        return clean_text(session, MAX_ID_CHARS), clean_text(account, MAX_ID_CHARS)
    return None, clean_text(user_id, MAX_ID_CHARS)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
