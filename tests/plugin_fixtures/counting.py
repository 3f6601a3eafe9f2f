"""A plugin written the module-level way: its per-app state lives behind the ``ccproxy`` handle."""

from pydantic import BaseModel, SecretStr

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec


class CountingSettings(BaseModel):
    """Settings of the counting plugin ([plugins.counting], PLUGINS__COUNTING__*)."""

    label: str = "requests"
    """PLUGINS__COUNTING__LABEL: the key /counting answers with."""
    limit: int = 10
    """PLUGINS__COUNTING__LIMIT: a number, to check types are coerced."""
    token: SecretStr | None = None
    """PLUGINS__COUNTING__TOKEN: a secret, to check it is masked."""


@hookimpl
def register_plugin():
    return PluginSpec(settings=CountingSettings, own_paths=("/counting",))


@hookimpl
def register_routes(app, ccproxy):
    async def counting() -> dict:
        state = ccproxy.state("counting")
        return {ccproxy.settings_of(CountingSettings).label: state.ended}

    app.add_api_route("/counting", counting, methods=["GET"])


@hookimpl
def on_startup(ccproxy):
    ccproxy.state("counting").ended = 0


@hookimpl
def on_request_end(ccproxy):
    ccproxy.state("counting").ended += 1
