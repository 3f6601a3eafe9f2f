"""Helpers for testing ccproxy and its plugins against a real server and the mock provider.

    from ccproxy_core.testing import make_record, make_settings, mock_upstream, running_proxy

    def test_my_plugin(tmp_path):
        with mock_upstream() as upstream:
            settings = make_settings(upstream.url, tmp_path=tmp_path)
            with running_proxy(settings, plugins=[MyPlugin()]) as proxy:
                anthropic.Anthropic(base_url=proxy.url, api_key="test").messages.create(...)

Each server helper starts real servers on free loopback ports, in background threads,
and stops them on exit. ``make_record(**overrides)`` builds a valid :class:`AccessRecord`
for unit tests of a plugin's ``on_request_end`` or of a log store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pluggy
import uvicorn
from fastapi import FastAPI

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.plugins import bind_installed_plugin_settings, get_plugin_manager, register_checked
from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.serve import uvicorn_config
from ccproxy_core.runtime.settings import Settings


@contextlib.contextmanager
def mock_upstream(**options: Any) -> Iterator[Any]:
    """The mock provider on a free loopback port; yields an object with ``.url``.

    ``options`` are :class:`ccproxy_core.testing.mock_upstream.MockOptions` fields (latency_ms, delta_count, ...).
    """
    from ccproxy_core.testing.mock_upstream import MockOptions, serve_mock_in_thread

    server = serve_mock_in_thread(MockOptions(**options))
    try:
        yield server
    finally:
        server.stop()


def make_settings(
    upstream_url: str, tmp_path: Path | None = None, entry_points_: Iterable[EntryPoint] | None = None, **sections: Any
) -> Settings:
    """Settings pointing both providers at ``upstream_url``; ``sections`` override fields by section.

    With ``tmp_path`` the DuckDB file goes there, never to the user's home.
    Environment variables and .env files are ignored, so tests do not depend on the machine.
    The installed plugins' settings models are bound in, as ``load_settings`` does
    (``plugins={"jsonl": {...}}`` sets a third-party plugin's table); ``entry_points_``
    replaces the installed entry points, as in ``get_plugin_manager``.
    """
    values: dict[str, Any] = {
        "upstream": {"anthropic_base_url": upstream_url, "openai_base_url": upstream_url},
        "logging": {"access_log": False},
    }
    if tmp_path is not None:
        values["observability"] = {"duckdb_path": str(tmp_path / "ccproxy.duckdb")}
    for section, fields in sections.items():
        if isinstance(fields, dict):
            values.setdefault(section, {}).update(fields)
        else:  # a list setting such as budgets
            values[section] = fields
    return bind_installed_plugin_settings(_IsolatedSettings(**values), entry_points_)


class _IsolatedSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings,)


def temporary_plugin(
    pm: pluggy.PluginManager, plugin: object, name: str | None = None
) -> contextlib.AbstractContextManager:
    """Register ``plugin`` on ``pm`` for the duration of a ``with`` block.

    Works on a running app too (``proxy.app.state.plugin_manager``): its request hooks are
    called from the next request on. Its ``on_startup``/``on_shutdown`` are not run.
    """

    @contextlib.contextmanager
    def registered() -> Iterator[object]:
        register_checked(pm, plugin, name)
        try:
            yield plugin
        finally:
            pm.unregister(plugin)

    return registered()


@dataclass
class RunningProxy:
    """A ccproxy app served by a real uvicorn on loopback."""

    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully (lifespan shutdown runs) and wait for the thread."""
        self.app.state.draining.set()
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError("ccproxy test server did not stop in time")


@contextlib.contextmanager
def running_proxy(
    settings: Settings, plugins: Iterable[object] = (), pm: pluggy.PluginManager | None = None
) -> Iterator[RunningProxy]:
    """Serve ``create_app(settings)`` on a free loopback port, with extra ``plugins`` registered."""
    pm = pm if pm is not None else get_plugin_manager(settings)
    for plugin in plugins:
        register_checked(pm, plugin)
    proxy = start_proxy(create_app(settings, pm), settings)
    try:
        yield proxy
    finally:
        proxy.stop()


def start_proxy(app: FastAPI, settings: Settings) -> RunningProxy:
    """Start serving ``app`` in a thread; return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=port))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits when the lifespan (a plugin's on_startup) fails
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"ccproxy-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(
                "ccproxy test server failed to start: a plugin's on_startup failed (its error is logged above)"
            )
        if time.monotonic() > deadline:
            raise RuntimeError("ccproxy test server did not start within 30 s")
        time.sleep(0.01)
    return RunningProxy(url=f"http://127.0.0.1:{port}", app=app, server=server, thread=thread)


def make_record(**overrides: Any) -> AccessRecord:
    """A valid access record: a priced, streamed Anthropic Messages request, now, with a fresh id.

    Every field is filled in the way ccproxy fills it (costs that sum to ``cost_usd``, a
    first-token time, rate limits); ``overrides`` replace fields by name, for example
    ``make_record(status_code=529, error_type="overloaded_error")``. An unknown field name
    raises ``TypeError``.
    """
    record = AccessRecord(
        request_id=f"req-{uuid.uuid4().hex[:12]}",
        timestamp=datetime.now(UTC).replace(microsecond=0),
        method="POST",
        endpoint="/v1/messages",
        path="/v1/messages",
        query="",
        client_ip="127.0.0.1",
        user_agent="ccproxy-tests",
        service_type="anthropic",
        model="claude-sonnet-4-5",
        streaming=True,
        status_code=200,
        duration_ms=1500.0,
        duration_seconds=1.5,
        tokens_input=100,
        tokens_output=40,
        cache_read_tokens=30,
        cache_write_tokens=20,
        cost_usd=Decimal("0.001359"),
        cost_sdk_usd=None,
        ttft_ms=250.0,
        upstream_status=200,
        upstream_duration_ms=1400.0,
        proxy_overhead_ms=2.0,
        response_model="claude-sonnet-4-5-20250929",
        cost_input_usd=Decimal("0.0003"),
        cost_output_usd=Decimal("0.0006"),
        cost_cache_read_usd=Decimal("0.000009"),
        cost_cache_write_usd=Decimal("0.00045"),
        priced=True,
        request_bytes=512,
        response_bytes=4096,
        rate_limits={"requests_limit": 50.0, "requests_remaining": 49.0, "input_tokens_remaining": 39000.0},
    )
    return dataclasses.replace(record, **overrides)


def free_port() -> int:
    """A TCP port free on loopback right now (for a server that must be given a port number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that, or fail after ``timeout`` seconds.

    Records of streams arrive after the client has read the last byte, so tests poll.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
