"""API keys in reads: a key is its fingerprint; its name is the one configured now.

A row keeps the name its key had when the request was made (``api_key_name``), so rows of one key
can carry no name, an old name and the current one. Stores therefore group and filter by the
fingerprint alone (``api_key_id``); readers turn names into fingerprints before asking, and label
the groups they get back with the names of ``[attribution.keys]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ccproxy_core.accounting.attribution import clean_key_names

from .log_store import OTHER_GROUP, Grouping, NameFilter

if TYPE_CHECKING:
    from ccproxy_core.runtime.attribution_settings import AttributionSettings

KEY_DIMENSION = "api_key"


def configured_key_names(attribution: AttributionSettings) -> dict[str, str]:
    """Fingerprint -> the name ``[attribution.keys]`` gives it now."""
    return {fingerprint: name for fingerprint, (name, _) in clean_key_names(attribution.key_names()).items()}


def key_filter(name_filter: NameFilter, names: Mapping[str, str]) -> NameFilter:
    """An ``api_key_id`` filter over fingerprints: each given value, and the fingerprint of every key
    configured under a given name (so a name finds the rows recorded before it was given too)."""
    return NameFilter(_with_fingerprints(name_filter.include, names), _with_fingerprints(name_filter.exclude, names))


def _with_fingerprints(values: tuple[str, ...], names: Mapping[str, str]) -> tuple[str, ...]:
    named = [fingerprint for fingerprint, name in names.items() if name in values]
    return tuple(dict.fromkeys([*values, *named]))


def name_key_groups(groups: list[dict[str, Any]], grouping: Grouping, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Label groups a store summed by key fingerprint: ``key`` becomes the key's configured name
    (else it stays the fingerprint) and ``api_key_id`` holds the fingerprint. Groups of other
    dimensions are left alone, but their breakdown by key is labelled. Changes the groups in place."""
    for group in groups:
        if grouping.dimension == KEY_DIMENSION:
            _name_group(group, names)
        if grouping.breakdown == KEY_DIMENSION:
            for part in group.get("breakdown") or []:
                _name_group(part, names)
    return groups


def _name_group(group: dict[str, Any], names: Mapping[str, str]) -> None:
    # A fingerprint is 12 hex digits: a key reading "other" is the group summing the rest.
    fingerprint = None if group["key"] == OTHER_GROUP else group["key"]
    group["api_key_id"] = fingerprint
    if fingerprint is not None:
        group["key"] = names.get(fingerprint, fingerprint)


def name_session_keys(sessions: list[dict[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Turn each session's ``api_key`` (its keys' fingerprints, comma separated) into the keys' names
    configured now, else their fingerprints, sorted. Changes the sessions in place."""
    for session in sessions:
        if session.get("api_key"):
            labels = {names.get(fingerprint, fingerprint) for fingerprint in session["api_key"].split(", ")}
            session["api_key"] = ", ".join(sorted(labels))
    return sessions
