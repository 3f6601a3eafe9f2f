"""The ``[attribution]`` settings: names for API key fingerprints, the fingerprints' salt, tags kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ccproxy_core.accounting.attribution.keys import is_fingerprint


class KeyAlias(BaseModel):
    """An operator's name for one API key fingerprint, and optionally the project it works for."""

    model_config = ConfigDict(extra="forbid")  # a misspelt ``project`` would silently attribute nothing

    name: str = Field(min_length=1, max_length=128)
    project: str | None = Field(None, min_length=1, max_length=128)


class AttributionSettings(BaseModel):
    """How requests are attributed to keys, sessions and projects (see docs/attribution.md)."""

    keys: dict[str, str | KeyAlias] = {}
    """ATTRIBUTION__KEYS (``[attribution.keys]`` in the config file): key fingerprint -> name, or
    -> ``{name = "...", project = "..."}``. ``ccproxy key-id`` prints a key's fingerprint."""
    key_salt: SecretStr | None = None
    """ATTRIBUTION__KEY_SALT: secret mixed into key fingerprints; unset, a fixed string is used
    (fingerprints then match ``ccproxy key-id`` on any machine). Changing it changes every fingerprint."""
    max_tags: int = Field(10, ge=0, le=50)
    """ATTRIBUTION__MAX_TAGS: ``x-ccproxy-tag-*`` headers kept per request; later ones are ignored."""

    @field_validator("keys")
    @classmethod
    def _fingerprints(cls, value: dict[str, str | KeyAlias]) -> dict[str, str | KeyAlias]:
        """Fingerprints in either case (``ATTRIBUTION__KEYS__...`` variables arrive lower-cased, error lines
        print them upper-cased), kept lower-case as ``ccproxy key-id`` prints them."""
        names: dict[str, str | KeyAlias] = {}
        for fingerprint, name in value.items():
            if not is_fingerprint(fingerprint):
                # The value is not echoed: a pasted key in its place must not reach a log.
                raise ValueError(
                    f"a name is given for a {len(fingerprint)}-character value that is not a key "
                    "fingerprint (12 hex digits): run `ccproxy key-id` and paste what it prints, "
                    "never the key itself"
                )
            if fingerprint.lower() in names:
                raise ValueError(f"fingerprint {fingerprint.lower()} is named twice, in upper and in lower case")
            names[fingerprint.lower()] = name
        return names

    def key_names(self) -> dict[str, tuple[str, str | None]]:
        """Fingerprint -> (name, project or ``None``)."""
        return {
            fp: (alias, None) if isinstance(alias, str) else (alias.name, alias.project)
            for fp, alias in self.keys.items()
        }
