"""A plugin that counts how often ccproxy asks for its spec."""

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec

ASKED: list[int] = []


@hookimpl
def register_plugin():
    ASKED.append(1)
    return PluginSpec()
