"""A plugin whose entry-point name has capitals (Upper), with one setting."""

from pydantic import BaseModel

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec


class UpperSettings(BaseModel):
    level: int = 1
    label: str = "plain"


@hookimpl
def register_plugin():
    return PluginSpec(settings=UpperSettings)
