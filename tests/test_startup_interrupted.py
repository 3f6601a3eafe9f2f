"""A stop asked for while a plugin's ``async def`` on_startup runs: the start is cut, the plugin named."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ccproxy_core import hookimpl
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host import lifecycle
from ccproxy_core.plugin_host.lifecycle import start_plugins
from ccproxy_core.testing import wait_until
from tests.test_plugin_contract import Lifecycle, host_with
from tests.test_reliability_signals import ServeProcess

REPOSITORY = Path(__file__).resolve().parents[1]


class Slow(Lifecycle):
    """Takes a while to start (a few of the stop checks), then starts."""

    @hookimpl
    async def on_startup(self):
        await asyncio.sleep(0.35)
        self.journal.append(f"start {self.name}")


class NeverStarts(Lifecycle):
    @hookimpl
    async def on_startup(self):
        self.journal.append(f"starting {self.name}")
        try:
            await asyncio.Event().wait()
        finally:
            self.journal.append(f"cancelled {self.name}")


def test_a_stop_asked_while_a_plugin_starts_cancels_it_and_stops_those_started(caplog):
    journal: list[str] = []
    host = host_with(Slow("slow", journal), NeverStarts("stuck", journal), Lifecycle("after", journal))

    async def interrupted_start() -> float:
        starting = asyncio.ensure_future(start_plugins(host))
        await asyncio.sleep(0.6)
        assert journal == ["start slow", "starting stuck"]  # a slow start that finishes is not cut
        began = asyncio.get_running_loop().time()
        host.app.state.draining.set()  # what the first SIGTERM or Ctrl-C does
        with pytest.raises(StartupError) as failed:
            await asyncio.wait_for(starting, 5)
        assert str(failed.value) == (
            "plugin stuck was still starting (on_startup) when ccproxy was told to stop; it was cancelled, "
            "and ccproxy stops without serving"
        )
        return asyncio.get_running_loop().time() - began

    took = asyncio.run(interrupted_start())
    assert took < 2 * lifecycle.STOP_CHECK_SECONDS + 0.3
    assert journal == ["start slow", "starting stuck", "cancelled stuck", "stop slow"]


def _install_beside(site: Path, name: str, module: str) -> None:
    """A distribution ``name`` whose ccproxy entry point is ``module``, found through ``site`` on PYTHONPATH."""
    info = site / f"ccproxy_{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ccproxy-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ccproxy]\n{name} = {module}\n")


@pytest.mark.parametrize(("workers", "sig"), [(1, signal.SIGTERM), (2, signal.SIGTERM), (1, signal.SIGINT)])
def test_a_stop_while_a_plugin_never_finishes_starting_stops_ccproxy_and_names_it(tmp_path, workers, sig):
    # Before, the signal only set a flag nobody looked at while the start-up was awaited: SIGTERM and two
    # Ctrl-C left ccproxy running, and only SIGKILL stopped it.
    site = tmp_path / "site"
    _install_beside(site, "hangs_at_startup", "tests.plugin_fixtures.hangs_at_startup")
    path = os.pathsep.join([str(site), str(REPOSITORY), str(REPOSITORY / "plugins"), os.environ.get("PYTHONPATH", "")])
    env = {
        "PYTHONPATH": path,
        "UPSTREAM__ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
        "SERVER__WORKERS": str(workers),
        "SERVER__SHUTDOWN_TIMEOUT_SECONDS": "2",
    }
    server = ServeProcess(tmp_path, env)
    with server.stderr_path.open("ab") as stderr:
        server.process = subprocess.Popen(server.command, env=server.env, cwd=tmp_path, stdout=stderr, stderr=stderr)
    try:
        wait_until(lambda: "waiting for what never comes" in server.stderr, timeout=30)
        server.send(sig)
        began = time.monotonic()
        code = server.wait(timeout=10)
        took = time.monotonic() - began
    finally:
        server.stop()
        if server.process.poll() is None:
            server.process.kill()
    assert took < 4, server.stderr
    assert code == 1, server.stderr
    named = [line for line in server.stderr.splitlines() if "plugin hangs_at_startup was still starting" in line]
    assert len(named) == 1, server.stderr
    assert "ccproxy was told to stop; it was cancelled" in named[0]
    assert "Traceback" not in server.stderr


def test_a_stop_while_the_duckdb_file_migrates_exits_1_and_leaves_the_file_to_open_again(tmp_path):
    # Before, the migration's thread was stopped inside DuckDB at exit: the process aborted (SIGABRT,
    # "terminate called after throwing"), where a stop during start-up exits with status 1.
    import duckdb

    from ccproxy_duckdb.database import Database
    from tests.test_duckdb_startup import write_old_file

    path = tmp_path / "old.duckdb"
    write_old_file(path, with_version_table=True)
    with duckdb.connect(str(path)) as connection:  # two million rows of the first schema: seconds to migrate
        connection.execute(
            "INSERT INTO access_logs SELECT 'r' || i, now() - to_microseconds(i * 86_400), 'POST', '/v1/messages', "
            "'/v1/messages', '', '127.0.0.1', 'ua', 'anthropic', 'model-' || (i % 13), false, 200, 1.5, 0.0015, "
            "10, 5, 0, 0, 0.000042, NULL FROM range(2_000_000) t(i)"
        )
        (rows,) = connection.execute("SELECT count(*) FROM access_logs").fetchone()
    env = {
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), str(REPOSITORY / "plugins")]),
        "UPSTREAM__ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__DUCKDB_PATH": str(path),
    }
    server = ServeProcess(tmp_path, env)
    with server.stderr_path.open("ab") as stderr:
        server.process = subprocess.Popen(server.command, env=server.env, cwd=tmp_path, stdout=stderr, stderr=stderr)
    try:
        wait_until(lambda: "Waiting for application startup" in server.stderr, timeout=30, interval=0.01)
        server.send(signal.SIGTERM)
        code = server.wait(timeout=60)
    finally:
        server.stop()
    assert "plugin duckdb was still starting" in server.stderr, server.stderr  # the stop came mid-migration
    assert code == 1, server.stderr
    database = Database.open(str(path))
    try:
        cursor = database.cursor()
        assert cursor.execute("SELECT count(*) FROM access_logs").fetchone()[0] == rows
    finally:
        database.close()
