"""A plugin that declares a plain dict, not a pydantic model, as its settings."""

from ccproxy_core import PluginSpec, hookimpl


@hookimpl
def register_plugin():
    return PluginSpec(settings=dict)
