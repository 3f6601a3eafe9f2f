"""The attribution filters of the /logs routes: session_id, project, end_user, api_key_id,
client_name (comma lists, ``!name`` excludes, a backslash escapes, like ``model``) and ``tag.<name>=<value>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Query, Request

from ccproxy_core.accounting.attribution import clean_tag_name
from ccproxy_core.accounting.attribution.clean import clean_text
from ccproxy_core.plugin_host.key_groups import configured_key_names, key_filter

from . import params  # the shared parsers; params imports this module in turn

MAX_TAG_FILTERS = 10
TAG_PREFIX = "tag."


@dataclass(frozen=True, slots=True)
class AttributionParams:
    """The attribution filters as given."""

    session_id: str | None = None
    project: str | None = None
    end_user: str | None = None
    api_key_id: str | None = None
    client_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    key_names: dict[str, str] = field(default_factory=dict, compare=False)
    """Fingerprint -> configured name: ``api_key_id`` takes either, the store fingerprints."""

    def filter_parts(self) -> dict[str, Any]:
        """The :class:`ccproxy_core.plugin_host.log_store.LogFilters` fields for these filters."""
        names = ("session_id", "project", "end_user", "api_key_id", "client_name")
        parts = {name: params.parse_names(name, getattr(self, name)) for name in names}
        return parts | {"api_key_id": key_filter(parts["api_key_id"], self.key_names), "tags": self.tags}

    def echo(self) -> dict[str, Any]:
        """The filters as a response reports them (tags only when given)."""
        shown: dict[str, Any] = {
            "session_id": self.session_id,
            "project": self.project,
            "end_user": self.end_user,
            "api_key_id": self.api_key_id,
            "client_name": self.client_name,
        }
        if self.tags:
            shown["tags"] = _tags_shown(self.tags)
        return shown


def _tags_shown(tags: tuple[tuple[str, str], ...]) -> dict[str, str | list[str]]:
    """Each tag filter's value by name; a name given more than once, all its values (every one must hold)."""
    values: dict[str, list[str]] = {}
    for name, value in tags:
        values.setdefault(name, []).append(value)
    return {name: given[0] if len(given) == 1 else given for name, given in values.items()}


def parse_tag_filters(query: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``tag.<name>=<value>`` query parameters; 422 naming the parameter when one cannot be a tag."""
    tags = []
    for key, value in query:
        if not key.startswith(TAG_PREFIX):
            continue
        name = clean_tag_name(key[len(TAG_PREFIX) :])
        if name is None:
            raise params.param_error(key, "a tag name is 1 to 32 characters of a-z, 0-9, _ . -", value)
        text = clean_text(value, 128)
        if text is None:
            raise params.param_error(key, "needs a value: tag.<name>=<value>", value)
        tags.append((name, text))
    if len(tags) > MAX_TAG_FILTERS:
        raise params.param_error("tag", f"at most {MAX_TAG_FILTERS} tag.<name> filters", len(tags))
    return tuple(tags)


def attribution_params(
    request: Request,
    session_id: str | None = Query(None, description="Comma list of session ids; !id excludes"),
    project: str | None = Query(None, description="Comma list of projects; !name excludes"),
    end_user: str | None = Query(None, description="Comma list of end users; !name excludes"),
    api_key_id: str | None = Query(None, description="Comma list of key fingerprints or configured key names"),
    client_name: str | None = Query(None, description="Comma list of clients (claude-code, codex, ...)"),
) -> AttributionParams:
    """FastAPI dependency: the attribution filters, ``tag.<name>=<value>`` included."""
    tags = parse_tag_filters(request.query_params.multi_items())
    names = configured_key_names(request.app.state.settings.attribution)
    return AttributionParams(session_id, project, end_user, api_key_id, client_name, tags, names)
