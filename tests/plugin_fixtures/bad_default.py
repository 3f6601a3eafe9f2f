"""A plugin whose settings model's own default is invalid (a plugin author's mistake, not the operator's)."""

from pydantic import BaseModel

from ccproxy_core import PluginSpec, hookimpl


class BadDefaultSettings(BaseModel):
    retries: int = "three"  # type: ignore[assignment]
    """Meant to be a number."""


@hookimpl
def register_plugin():
    return PluginSpec(settings=BadDefaultSettings)
