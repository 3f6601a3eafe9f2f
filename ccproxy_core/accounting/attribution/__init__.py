"""Who and what a request was for: session, end user, project, key fingerprint, client, tags.

Read once, when the request arrives, from its headers and from the request body ccproxy has
already decoded (never a second parse), so request hooks (a budget, say) can act on them before
the request is forwarded. Every value is made safe here: valid UTF-8, no control characters,
bounded length and count. No credential is kept: only the fingerprint of the key.

Sources, in order of preference:

- ``session_id``: ``X-Claude-Code-Session-Id``; Claude Code's ``metadata.user_id``; Codex CLI's
  ``session_id`` / ``session-id`` header; ``x-ccproxy-session``.
- ``end_user``: the account in Claude Code's ``metadata.user_id`` (or any other ``user_id``);
  OpenAI's ``safety_identifier`` or ``user`` (on OpenAI requests these come before ``metadata.user_id``).
- ``project``: ``x-ccproxy-project``, else the project named for the key in ``[attribution.keys]``.
- ``api_key_id``: fingerprint of the key the client sent (``x-api-key``, ``api-key``, ``x-goog-api-key``,
  the Bearer token, or the WebSocket key subprotocol); ``api_key_name`` its configured name.
- ``client_name`` / ``client_version``: from the User-Agent.
- ``tags``: ``x-ccproxy-tag-<name>: <value>`` headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ccproxy_core.key_masking import (
    PUBLIC_KEY_PREFIX,
    SHORTEST_MASKED_KEY,
    may_hold_a_key_shape,
    with_secret_parts,
    without_key_shapes,
    without_keys,
)

from .clean import clean_text, header_text
from .clients import parse_user_agent
from .keys import DEFAULT_SALT, KEY_HEADERS, key_fingerprint, key_from_headers, keys_in_headers, sent_a_credential
from .sessions import MAX_ID_CHARS, session_and_user_from_body

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import RequestContext
    from ccproxy_core.runtime.attribution_settings import AttributionSettings

__all__ = ["OWN_HEADER_PREFIX", "Attributor", "Dimensions", "key_fingerprint", "parse_user_agent"]

OWN_HEADER_PREFIX = "x-ccproxy-"
"""Headers meant for ccproxy alone; they are never forwarded to a provider."""
TAG_HEADER_PREFIX = b"x-ccproxy-tag-"
MAX_PROJECT_CHARS = 128
MAX_TAG_NAME_CHARS = 32
MAX_TAG_VALUE_CHARS = 128
_MAX_CACHED_FINGERPRINTS = 4096
_TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

# Header name -> slot; earlier session sources win over later ones.
_SESSION_HEADERS = (b"x-claude-code-session-id", b"session_id", b"session-id", b"x-ccproxy-session")
_CREDENTIAL_NAMES = frozenset({*KEY_HEADERS, b"authorization", b"sec-websocket-protocol"})
_WANTED = frozenset({*_SESSION_HEADERS, *_CREDENTIAL_NAMES, b"x-ccproxy-project"})


@dataclass(slots=True)
class Dimensions:
    """The attribution of one request (every field may be ``None``; ``tags`` may be empty)."""

    session_id: str | None = None
    end_user: str | None = None
    project: str | None = None
    api_key_id: str | None = None
    api_key_name: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class Attributor:
    """Reads the dimensions of requests, with the operator's key names and salt."""

    def __init__(
        self,
        settings: AttributionSettings | None = None,
        operator_keys: tuple[str, ...] = (),
        sent_for: Mapping[str, str] | None = None,
    ) -> None:
        """``operator_keys``: the keys ccproxy sends for clients that send none, never kept either;
        ``sent_for``: each provider's of them (``service_type`` -> key), which such a request is attributed to."""
        salt = settings.key_salt.get_secret_value().encode() if settings and settings.key_salt else DEFAULT_SALT
        self.salt = salt
        self.key_names = clean_key_names(settings.key_names()) if settings else {}
        self.max_tags = settings.max_tags if settings else 10
        # Fingerprints by the key's in-process hash (salted per process by Python), so the
        # same key costs one dict lookup after its first request and no key is kept.
        self._fingerprints: dict[int, str] = {}
        self._operator_keys = tuple(key for key in operator_keys if len(key) >= SHORTEST_MASKED_KEY)
        self._sent_for = dict(sent_for or {})

    def fill(
        self, context: RequestContext, raw_headers: Iterable[tuple[bytes, bytes]], payload: dict[str, Any] | None
    ) -> None:
        """Set the attribution fields of ``context`` from the request's raw ASGI headers and decoded body."""
        dims, found, repeated = self._read(raw_headers, payload, context.user_agent, context.service_type)
        context.session_id, context.end_user, context.project = dims.session_id, dims.end_user, dims.project
        context.api_key_id, context.api_key_name = dims.api_key_id, dims.api_key_name
        context.client_name, context.client_version, context.tags = dims.client_name, dims.client_version, dims.tags
        # A client may send its key in a field of its own choosing too: never keep it.
        sent = keys_in_headers(found, None)
        for name, value in repeated:
            sent += keys_in_headers({name: value}, None)
        keys = tuple(key for key in sent if len(key) >= SHORTEST_MASKED_KEY)  # not words
        keys += self._operator_keys
        values = _client_values(context)
        if keys:
            # A secret sent without its prefix is the key too; a tag's name is judged by the key's secret part.
            starts = [key[:SHORTEST_MASKED_KEY] for key in with_secret_parts(keys)]
            if _holds_any(values, starts):
                _mask_keys(context, keys)
            if context.tags:
                _drop_tags_named_by(context, keys)
            if context.model and _holds_any([context.model], starts):
                context.model = without_keys(keys, context.model)
        if may_hold_a_key_shape("\n".join((*values, *context.tags, context.model or ""))):
            _mask_key_shapes(context)  # another key than the request's, shaped as the providers' are

    def read(
        self,
        raw_headers: Iterable[tuple[bytes, bytes]],
        payload: dict[str, Any] | None,
        user_agent: str | None,
        service_type: str | None = None,
    ) -> Dimensions:
        """The dimensions of one request to the provider ``service_type`` (it orders the body's end-user fields)."""
        return self._read(raw_headers, payload, user_agent, service_type)[0]

    def _read(
        self,
        raw_headers: Iterable[tuple[bytes, bytes]],
        payload: dict[str, Any] | None,
        user_agent: str | None,
        service_type: str | None,
    ) -> tuple[Dimensions, dict[bytes, str], list[tuple[bytes, str]]]:
        """:meth:`read`, the headers it read them from, and the later copies of credential headers
        (a client that sends two keys has both masked, though only the first is read)."""
        found: dict[bytes, str] = {}
        repeated: list[tuple[bytes, str]] = []
        tags: dict[str, str] = {}
        for name, value in raw_headers:
            if name in _WANTED:
                if name not in found:
                    found[name] = value.decode("latin-1")
                elif name in _CREDENTIAL_NAMES:
                    repeated.append((name, value.decode("latin-1")))
            elif name.startswith(TAG_HEADER_PREFIX) and len(tags) < self.max_tags:
                _add_tag(tags, name[len(TAG_HEADER_PREFIX) :], value)
        body_session, end_user = session_and_user_from_body(payload, service_type)
        dims = Dimensions(end_user=end_user, tags=tags)
        dims.session_id = self._session(found, body_session)
        dims.client_name, dims.client_version = parse_user_agent(user_agent)
        self._key(dims, found, service_type)
        project = found.get(b"x-ccproxy-project")
        if project is not None:
            dims.project = header_text(project, MAX_PROJECT_CHARS) or dims.project
        return dims, found, repeated

    @staticmethod
    def _session(found: dict[bytes, str], body_session: str | None) -> str | None:
        claude_code = found.get(b"x-claude-code-session-id")
        if claude_code is not None and (session := header_text(claude_code, MAX_ID_CHARS)):
            return session
        if body_session is not None:
            return body_session
        for name in _SESSION_HEADERS[1:]:
            if name in found and (session := header_text(found[name], MAX_ID_CHARS)):
                return session
        return None

    def _key(self, dims: Dimensions, found: dict[bytes, str], service_type: str | None) -> None:
        api_key = key_from_headers(found, service_type)
        if api_key is None and not sent_a_credential(found):  # ccproxy sends the operator's key, which is billed
            api_key = self._sent_for.get(service_type or "")
        if api_key is None:
            return
        dims.api_key_id = self._fingerprint(api_key)
        alias = self.key_names.get(dims.api_key_id)
        if alias is not None:
            dims.api_key_name, dims.project = alias

    def _fingerprint(self, api_key: str) -> str:
        slot = hash(api_key)
        fingerprint = self._fingerprints.get(slot)
        if fingerprint is None:
            if len(self._fingerprints) >= _MAX_CACHED_FINGERPRINTS:
                self._fingerprints.clear()
            fingerprint = self._fingerprints[slot] = key_fingerprint(api_key, self.salt)
        return fingerprint


_CLIENT_FIELDS = ("user_agent", "client_request_id", "tracestate", "session_id", "end_user", "project", "client_ip")
"""What a client chooses itself of a request's context, besides its tags (its name and version come from
the user agent: searching that is enough for them; its address, when a trusted proxy's X-Forwarded-For
passes on whatever the client wrote)."""


def clean_key_names(names: dict[str, tuple[str, str | None]]) -> dict[str, tuple[str, str | None]]:
    """The operator's key names and projects made safe as a client's are: they are shown where clients' are."""
    return {
        fingerprint: (_without_key_shape(clean_text(name, MAX_PROJECT_CHARS)) or fingerprint, clean_project(project))
        for fingerprint, (name, project) in names.items()
    }


def _without_key_shape(value: str | None) -> str | None:
    """A name an operator gave, with any provider key pasted into it masked (``sk-***``), as a client's is."""
    return without_key_shapes(value) if value else value


def _client_values(context: RequestContext) -> list[str]:
    """The values of the client's own fields, its tags' included."""
    values = [value for name in _CLIENT_FIELDS if (value := getattr(context, name))]
    values.extend(context.tags.values())
    return values


def _holds_any(values: list[str], starts: list[str]) -> bool:
    """Whether one of ``values`` holds one of ``starts`` (nearly never)."""
    return any(start in value for start in starts for value in values)


def _mask_keys(context: RequestContext, keys: tuple[str, ...]) -> None:
    for name in (*_CLIENT_FIELDS, "client_name", "client_version"):
        value = getattr(context, name)
        if value:
            setattr(context, name, without_keys(keys, value))
    context.tags = {name: without_keys(keys, value) for name, value in context.tags.items()}


def _drop_tags_named_by(context: RequestContext, keys: tuple[str, ...]) -> None:
    """Leave out a tag whose name holds part of a key (a name cannot hold ``***``); names are lowercase."""
    secrets = [PUBLIC_KEY_PREFIX.sub("", key, count=1).lower() for key in keys]
    named = [name for name in context.tags if _shares_a_run(name, secrets)]
    for name in named:
        del context.tags[name]


def _shares_a_run(name: str, secrets: list[str]) -> bool:
    """Whether ``name`` holds :data:`SHORTEST_MASKED_KEY` characters in a row of one of ``secrets``: any
    key's, however short or plain (a tag is left out, not a word of an error masked)."""
    runs = {name[start : start + SHORTEST_MASKED_KEY] for start in range(len(name) - SHORTEST_MASKED_KEY + 1)}
    return any(run in secret for run in runs for secret in secrets)


def _mask_key_shapes(context: RequestContext) -> None:
    for name in (*_CLIENT_FIELDS, "client_name", "client_version", "model"):
        value = getattr(context, name)
        if value:
            setattr(context, name, without_key_shapes(value))
    # A tag's name cannot hold "***": a tag named by a key is left out.
    tags = context.tags.items()
    context.tags = {name: without_key_shapes(value) for name, value in tags if without_key_shapes(name) == name}


def _add_tag(tags: dict[str, str], raw_name: bytes, raw_value: bytes) -> None:
    name = raw_name.decode("latin-1")
    if not (0 < len(name) <= MAX_TAG_NAME_CHARS and _TAG_NAME.match(name)):
        return
    value = header_text(raw_value.decode("latin-1"), MAX_TAG_VALUE_CHARS)
    if value is not None:
        tags.setdefault(name, value)  # a header given twice counts by its first copy, as the others do


def clean_tag_name(name: str) -> str | None:
    """A tag name as stored (lowercase, 1-32 of ``a-z 0-9 _ . -``), or ``None`` when it cannot be one."""
    name = name.strip().lower()
    return name if 0 < len(name) <= MAX_TAG_NAME_CHARS and _TAG_NAME.match(name) else None


def clean_project(value: object) -> str | None:
    """A project name from configuration, made safe like one from a header."""
    return _without_key_shape(clean_text(value, MAX_PROJECT_CHARS))
