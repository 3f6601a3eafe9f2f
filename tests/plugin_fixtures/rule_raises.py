"""A plugin whose enabling rule raises: listed as failed to load, the others load."""

from ccproxy_core import PluginSpec, hookimpl


def _enabled(settings):
    raise KeyError("no such setting")


@hookimpl
def register_plugin():
    return PluginSpec(enabled_when=_enabled)


@hookimpl
def on_request_end(record):
    pass
