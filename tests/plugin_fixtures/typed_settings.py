"""A plugin whose settings have a list, a dict, a nested table and a required secret."""

from pydantic import BaseModel, SecretStr

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec


class Inner(BaseModel):
    depth: int = 1


class TypedSettings(BaseModel):
    names: list[str] = []
    weights: dict[str, int] = {}
    inner: Inner = Inner()
    token: SecretStr


@hookimpl
def register_plugin():
    return PluginSpec(settings=TypedSettings)
