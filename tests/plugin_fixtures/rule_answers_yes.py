"""A plugin whose enabling rule answers "yes", not (enabled, reason): listed as failed to load."""

from ccproxy_core import PluginSpec, hookimpl


@hookimpl
def register_plugin():
    return PluginSpec(enabled_when=lambda settings: "yes")


@hookimpl
def on_request_end(record):
    pass
