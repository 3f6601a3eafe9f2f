"""Built-in ccproxy plugin: pushes the metrics registry to a Prometheus Pushgateway.

Loaded when OBSERVABILITY__PUSHGATEWAY_URL is set. Pushes every
OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS and once more on shutdown, as job
OBSERVABILITY__PUSHGATEWAY_JOB with grouping key ``instance``. See docs/metrics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.plugin_host.plugin_spec import PluginSpec
from ccproxy_pushgateway.lifecycle import start_pushing, stop_pushing
from ccproxy_pushgateway.settings import PushgatewaySettings

if TYPE_CHECKING:
    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.runtime.settings import Settings


def _enabled(settings: Settings) -> tuple[bool, str]:
    if section_values(settings, PushgatewaySettings).pushgateway_url:
        return True, "OBSERVABILITY__PUSHGATEWAY_URL is set"
    return False, "OBSERVABILITY__PUSHGATEWAY_URL is not set"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on when a Pushgateway URL is set; starts after the registry's owner, so its
    last push, at shutdown, comes while the registry is still kept."""
    return PluginSpec(
        settings=PushgatewaySettings,
        section="observability",
        enabled_when=_enabled,
        starts_after=("metrics",),
    )


@hookimpl(tryfirst=True)
async def on_startup(ccproxy: Ccproxy) -> None:
    """Start pushing in a background task: every interval, from one interval after start-up.

    Started before the other plugins (but after those it needs), so that it stops after them: its last
    push then counts what the log stores wrote, or dropped, while they stopped."""
    start_pushing(ccproxy)


@hookimpl
async def on_shutdown(ccproxy: Ccproxy) -> None:
    """Stop the background task and push the final figures once more."""
    await stop_pushing(ccproxy)
