"""Fixtures shared by the whole suite: the mock provider, a hook recorder, a proxy factory, the
servers of outside tools (Pushgateway, ClickHouse), headless Chromium; and the rule that a test
needing a missing tool skips naming its package, or fails the run under CI."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from ccproxy_core import AccessRecord, RequestContext, hookimpl
from ccproxy_core.testing import RunningProxy
from ccproxy_metrics.observer import MetricsObserver
from tests.tools import FIXTURE_TOOLS, TOOLS, missing_tools

pytest_plugins = ["ccproxy_core.testing.pytest_plugin"]  # our tests use the fixtures plugin authors get


@pytest.fixture(scope="session")
def upstream(ccproxy_upstream):
    """One mock provider for the session; tests tell it what to do through x-mock-* headers."""
    return ccproxy_upstream


class HookRecorder:
    """A plugin that remembers every request hook call it sees."""

    def __init__(self) -> None:
        self.starts: list[RequestContext] = []
        self.ends: list[AccessRecord] = []
        self._changed = threading.Condition()

    @hookimpl
    def on_request_start(self, context: RequestContext) -> None:
        with self._changed:
            self.starts.append(context)
            self._changed.notify_all()

    @hookimpl
    def on_request_end(self, context: RequestContext, record: AccessRecord) -> None:
        with self._changed:
            self.ends.append(record)
            self._changed.notify_all()

    def wait_for_ends(self, count: int, timeout: float = 10.0) -> list[AccessRecord]:
        """Block until ``count`` records arrived (a stream's record lands after its last byte)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.ends) >= count, timeout):
                raise AssertionError(f"expected {count} on_request_end calls, saw {len(self.ends)}")
        time.sleep(0.05)  # a duplicate call would land right after: give it the chance to show up
        return list(self.ends)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh metrics registry (never prometheus_client's global one)."""
    return CollectorRegistry()


@pytest.fixture
def observer(registry) -> MetricsObserver:
    """A metrics observer counting into ``registry``, as the metrics plugin builds it."""
    return MetricsObserver.in_registry(registry, model_label_cap=100)


@pytest.fixture
def recorder() -> HookRecorder:
    return HookRecorder()


@pytest.fixture
def proxy_factory(ccproxy_proxy_factory) -> Callable[..., RunningProxy]:
    """Start proxies against the mock: ``proxy_factory(plugins=[...], observability={...})``."""
    return ccproxy_proxy_factory


@pytest.fixture
def proxy(proxy_factory, recorder) -> RunningProxy:
    """A proxy with every observability plugin off and the hook recorder registered."""
    return proxy_factory(plugins=[recorder])


@pytest.fixture
def clickhouse_server(tmp_path):
    """A real ClickHouse server on free loopback ports with its own data directory; stopped after the test."""
    from tests.clickhouse_servers import ClickHouseServer, clickhouse_binary

    server = ClickHouseServer(clickhouse_binary(), tmp_path, "clickhouse").start()
    yield server
    server.stop()


@pytest.fixture
def start_gateway(tmp_path) -> Iterator[Callable[..., object]]:
    """``start_gateway(basic_auth=False)``: a real Pushgateway on a free port; all are stopped after the test."""
    from tests.pushgateway_server import Pushgateway

    binary = TOOLS["pushgateway"].path()
    assert binary is not None  # the test is marked needs_tool("pushgateway")
    gateways: list[Pushgateway] = []

    def start(basic_auth: bool = False) -> Pushgateway:
        gateway = Pushgateway(binary, tmp_path, basic_auth)
        gateways.append(gateway)
        gateway.start()
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, for the tests of one module."""
    from tests.dashboard_pages import launched_browser

    with launched_browser() as launched:
        yield launched


@pytest.fixture
def open_dashboard(browser, proxy_factory) -> Iterator[Callable[[str], tuple]]:
    """``open_dashboard(url)`` -> ``(page, problems)``; every page is closed before the proxies stop."""
    from tests.dashboard_pages import dashboard_opener

    with dashboard_opener(browser) as open_page:
        yield open_page


# A tool a test needs (a Debian package, Node.js) may be missing on a contributor's machine, where
# its tests skip with a message naming it. Under CI the install step is part of what is tested,
# so there such a skip fails the run instead of hiding a missing install.
_MISSING_TOOL_WORDS = ("not found", "not installed", "install the", "needs npm")
_missing_tools: list[str] = []


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker, so `-m "not needs_tool"` sees these
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        needed = [tool for fixture, tools in FIXTURE_TOOLS.items() if fixture in fixtures for tool in tools]
        if item.get_closest_marker("browser") is not None:
            needed.append("chromium")
        if needed:
            item.add_marker(pytest.mark.needs_tool(*needed))


def pytest_runtest_setup(item: pytest.Item) -> None:
    names = tuple(name for marker in item.iter_markers("needs_tool") for name in marker.args)
    missing = missing_tools(names)
    if item.get_closest_marker("browser") is not None:
        from ccproxy_dashboard import bundle

        if bundle.missing_entry_files():
            missing.append(f"the dashboard bundle is not built: install the bundle with `{bundle.BUILD_COMMAND}`")
    if missing:
        pytest.skip("; ".join(dict.fromkeys(missing)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if any(word in reason for word in _MISSING_TOOL_WORDS):
            _missing_tools.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _missing_tools:
        print("\nCI=true, but tools the tests need are missing:\n  " + "\n  ".join(sorted(set(_missing_tools))))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
