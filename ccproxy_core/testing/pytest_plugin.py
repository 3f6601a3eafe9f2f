"""pytest fixtures for plugin authors: a real ccproxy with your plugin, against the mock provider.

Turn them on in the ``conftest.py`` at the root of your tests::

    pytest_plugins = ["ccproxy_core.testing.pytest_plugin"]

(or run ``pytest -p ccproxy_core.testing.pytest_plugin``). Then::

    def test_my_plugin(ccproxy_proxy_factory):
        proxy = ccproxy_proxy_factory(observability={"metrics_endpoint_enabled": True})
        anthropic.Anthropic(base_url=proxy.url, api_key="test").messages.create(...)

Installed plugins (``pip install -e .`` of your project) load through their entry points,
exactly as in production; objects passed as ``plugins=`` are registered on top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccproxy_core.plugin_host.plugins import get_plugin_manager, register_checked
from ccproxy_core.testing import RunningProxy, make_settings, mock_upstream, running_proxy


@pytest.fixture(scope="session")
def ccproxy_upstream() -> Iterator[Any]:
    """The mock provider (Anthropic and OpenAI wire formats) for the whole session; ``.url`` is its address.

    Steer one request with ``x-mock-*`` headers (``x-mock-status: 529``, ``x-mock-latency-ms: 200``, ...).
    """
    with mock_upstream() as server:
        yield server


@pytest.fixture
def ccproxy_proxy_factory(ccproxy_upstream: Any, tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start real ccproxy servers against the mock provider; each stops when the test ends.

    ``ccproxy_proxy_factory(plugins=(), installed=True, plugin_settings=None, **sections)``
    returns a :class:`ccproxy_core.testing.RunningProxy` (``.url``, ``.app``). ``sections``
    set ccproxy settings by section (``security={"auth_token": "t"}``,
    ``observability={"metrics_endpoint_enabled": True}``); ``plugin_settings`` sets plugins'
    own tables (``{"jsonl": {"path": "/tmp/x.jsonl"}}``, as ``[plugins.jsonl]`` would).
    Environment variables and config files are not read, so tests do not depend on the
    machine. ``installed=False`` loads no entry point at all: only ``plugins`` run.
    """
    with contextlib.ExitStack() as stack:

        def start(
            plugins: Iterable[object] = (),
            installed: bool = True,
            upstream_url: str | None = None,
            plugin_settings: dict[str, dict[str, Any]] | None = None,
            **sections: Any,
        ) -> RunningProxy:
            if plugin_settings:
                sections["plugins"] = {**sections.get("plugins", {}), **plugin_settings}
            settings = make_settings(upstream_url or ccproxy_upstream.url, tmp_path=tmp_path, **sections)
            pm = get_plugin_manager(settings, None if installed else [])
            for plugin in plugins:
                if not pm.is_registered(plugin):  # already loaded through its entry point
                    register_checked(pm, plugin)
            return stack.enter_context(running_proxy(settings, pm=pm))

        yield start
