"""``ccproxy serve --workers N``: one port, N worker processes, and this process as their hub.

This process binds the port once and starts N workers that accept on it. It builds the
full app, every plugin started, and serves it on a private unix socket only; the workers
forward to it the paths plugins serve, and send it every request's events (``hub.py``).
It restarts a worker that exits, backing off when one dies at start-up again and again.
On SIGTERM or SIGINT the workers drain first (in-flight requests finish, their events
arrive), then the plugins stop (the log store flushes), so a graceful stop loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from fastapi import FastAPI

from ccproxy_core.plugin_host.plugins import running_plugin_names
from ccproxy_core.runtime.listen_errors import SERVER_HOST, SERVER_PORT, cannot_listen_message
from ccproxy_core.runtime.serve import Server, uvicorn_config
from ccproxy_core.runtime.settings import ServerSettings, Settings
from ccproxy_core.runtime.settings_loader import resolve_config_file
from ccproxy_core.runtime.stop_signals import hold_stop_signals
from ccproxy_core.runtime.workers.channel import DRAIN_MARGIN_SECONDS
from ccproxy_core.runtime.workers.client_address import WorkerClientAddress
from ccproxy_core.runtime.workers.hub import EOF_WAIT_SECONDS, EventHub
from ccproxy_core.runtime.workers.worker_main import EVENTS_SOCKET, HUB_SOCKET

log = logging.getLogger("ccproxy.workers")

QUICK_EXIT_SECONDS = 10.0
"""A worker that exits sooner than this after starting counts as failing at start-up."""
MAX_BACKOFF_SECONDS = 30.0
FORCE_CHECK_SECONDS = 0.1
"""How often a drain looks whether a second Ctrl-C asked for a forced exit."""
LISTEN_BACKLOG = 2048
CONFIG_COPY = "config.toml"
RUNTIME_PREFIX = "ccproxy-workers-"
MAX_SOCKET_PATH_BYTES = 107
"""The longest unix socket path Linux takes (``sun_path`` holds 108 bytes with its closing NUL)."""
_HUB_KEEPALIVE_SECONDS = 75.0  # longer than the workers' own, so the hub never closes a connection a worker reuses


def serve_with_workers(app: FastAPI, settings: Settings, config_file: str | None, overrides: dict[str, Any]) -> int:
    """Serve until stopped; the process exit code."""
    try:
        listening = bind_listener(settings.server)
    except OSError as exc:
        host, port = settings.server.host, settings.server.port
        log.error("%s", cannot_listen_message(host, port, exc, SERVER_HOST, SERVER_PORT))
        return 1
    remove_stale_runtimes(tempfile.gettempdir())
    runtime = tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIX}{os.getpid()}-")  # mode 0700: only this user reaches it
    try:
        if len(os.fsencode(os.path.join(runtime, EVENTS_SOCKET))) > MAX_SOCKET_PATH_BYTES:
            log.error("%s", socket_path_too_long_message(runtime))
            return 1
        port = listening.getsockname()[1]
        pm = app.state.plugin_manager
        names = running_plugin_names(pm)
        hub = EventHub(
            app.state.proxy.hooks,
            lambda: bool(pm.hook.admit_request.get_hookimpls()),
            names,
            os.path.join(runtime, EVENTS_SOCKET),
        )
        app.state.requests_in_flight = hub.requests_in_flight
        worker_overrides = _deep_merge(overrides, {"server": {"port": port}})
        command = _worker_command(listening.fileno(), runtime, _config_copy(runtime, config_file), worker_overrides)
        workers = Workers(settings.server.workers, command, listening.fileno(), hub)
        workers.drain_seconds = settings.server.shutdown_timeout_seconds + DRAIN_MARGIN_SECONDS
        app.add_middleware(WorkerClientAddress)
        config = uvicorn_config(
            app,
            settings,
            uds=os.path.join(runtime, HUB_SOCKET),
            proxy_headers=False,
            forwarded_allow_ips=None,
            timeout_keep_alive=_HUB_KEEPALIVE_SECONDS,
        )
        server = HubServer(config, hub, workers, listening)
        log.info("ccproxy serving http://%s:%d from %d workers", settings.server.host, port, settings.server.workers)
        hold_stop_signals()
        try:
            server.run()
        except SystemExit:  # uvicorn exits on its own when the lifespan fails to start
            return 1
        return 0 if server.started else 1
    finally:
        listening.close()
        shutil.rmtree(runtime, ignore_errors=True)


def bind_listener(server: ServerSettings) -> socket.socket:
    """The TCP socket every worker accepts on, inheritable by them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        server.host or None, server.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def socket_path_too_long_message(runtime: str) -> str:
    """Why the workers cannot start in ``runtime``, and the fix."""
    return (
        f"cannot start workers: the temporary folder {os.path.dirname(runtime)!r} is too deep for their unix "
        f"sockets (paths of at most {MAX_SOCKET_PATH_BYTES} bytes) - set TMPDIR to a shorter folder, such as /tmp"
    )


def remove_stale_runtimes(folder: str) -> None:
    """Remove the runtime folders, owned by this user, of servers that are gone without cleaning up (killed
    with SIGKILL, or the machine lost power): each holds a copy of the config file, which may hold keys."""
    for entry in os.scandir(folder):
        if entry.name.startswith(RUNTIME_PREFIX) and _stale(entry):
            shutil.rmtree(entry.path, ignore_errors=True)


def _stale(entry: os.DirEntry) -> bool:
    """This user's folder, whose server's pid is gone and whose hub does not answer (a server in another pid
    namespace, sharing this folder, still would)."""
    pid = entry.name.removeprefix(RUNTIME_PREFIX).partition("-")[0]
    if not pid.isdigit() or not entry.is_dir(follow_symlinks=False):
        return False
    if entry.stat(follow_symlinks=False).st_uid != os.getuid() or _running(int(pid)):
        return False
    return not _answers(os.path.join(entry.path, HUB_SOCKET))


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _config_copy(runtime: str, config_file: str | None) -> str:
    """A copy of the config file this server read (empty when it read none), in the runtime folder, for
    the workers: one started later, in place of one that died, runs with the settings the others have,
    whatever has become of the file since."""
    source = resolve_config_file(config_file)
    copy = os.path.join(runtime, CONFIG_COPY)
    with open(copy, "wb") as target:
        target.write(source.read_bytes() if source is not None else b"")
    return copy


def _worker_command(fd: int, runtime: str, config_file: str, overrides: dict[str, Any]) -> list[str]:
    # uvloop starts children with every signal at its default: a supervisor run under nohup says so itself.
    hangups = getattr(signal, "SIGHUP", None)
    ignored = ["--hangups-ignored"] if hangups is not None and signal.getsignal(hangups) == signal.SIG_IGN else []
    return [
        sys.executable,
        "-m",
        "ccproxy_core.runtime.workers.worker_main",
        "--listen-fd",
        str(fd),
        "--runtime-dir",
        runtime,
        "--parent-pid",
        str(os.getpid()),
        "--overrides",
        json.dumps(overrides),
        "--config",
        config_file,
        *ignored,
    ]


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(merged.get(key), dict) else value
    return merged


class HubServer(Server):
    """The hub's uvicorn server: starts the event hub and the workers once the plugins run; drains them first on stop."""

    def __init__(self, config: Any, hub: EventHub, workers: Workers, listening: socket.socket) -> None:
        super().__init__(config)
        self.hub, self.workers, self.listening = hub, workers, listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        await self.hub.start()
        self.workers.start()

    def handle_exit(self, sig: int, frame) -> None:  # signal frame
        super().handle_exit(sig, frame)
        if self.force_exit:  # a second Ctrl-C: the workers cut their requests too (a plain flag: no lock here)
            self.workers.forced = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # The hub reads the channels all along; once the workers are gone it gets what is left of their drain
        # time (at least EOF_WAIT_SECONDS) to read what they wrote to the end and run its hooks.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.workers.drain_seconds
        # The port closes once the draining workers close their copies: a new client is refused at once, as by
        # one process, rather than queued by the kernel for the drain's length and then reset.
        self.listening.close()
        await self.workers.stop()
        await self.hub.close(within=max(EOF_WAIT_SECONDS, deadline - loop.time()))
        await super().shutdown(sockets=sockets)


class Workers:
    """Keeps ``count`` worker processes running, each in its own slot."""

    def __init__(self, count: int, command: list[str], listen_fd: int, hub: EventHub) -> None:
        self.count, self.command, self.listen_fd, self.hub = count, command, listen_fd, hub
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self.drain_seconds = 30.0 + DRAIN_MARGIN_SECONDS
        self.forced = False
        """The supervisor was told to stop at once: the workers are told so while they drain."""

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._keep(slot)) for slot in range(1, self.count + 1)]

    async def stop(self) -> None:
        """SIGTERM every worker, wait for them to drain, kill those that do not."""
        self._stopping = True
        if self._wake is None:
            return
        self._wake.set()
        for process in self.processes.values():
            _signal(process, signal.SIGTERM)
        late = await self._drain()
        if late:
            for slot, process in self.processes.items():
                if process.returncode is None:
                    log.warning(
                        "worker %d (pid %d) did not finish in %g s; killing it", slot, process.pid, self.drain_seconds
                    )
                    _signal(process, signal.SIGKILL)
            await asyncio.wait(late, timeout=10)

    async def _drain(self) -> set[asyncio.Task[None]]:
        """Wait for the workers to exit, ``drain_seconds`` at most; the tasks of those still running.

        Once :attr:`forced`, each gets a SIGINT: after the SIGTERM it has handled, its second
        signal, which makes it cut its requests in flight (recorded) rather than finish them.
        """
        loop = asyncio.get_running_loop()
        deadline, running, told = loop.time() + self.drain_seconds, set(self._tasks), False
        while running and (left := deadline - loop.time()) > 0:
            _, running = await asyncio.wait(running, timeout=min(left, FORCE_CHECK_SECONDS))
            if self.forced and not told:
                told = True
                for process in self.processes.values():
                    _signal(process, signal.SIGINT)
        return running

    async def _keep(self, slot: int) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command, "--worker", str(slot), pass_fds=(self.listen_fd,), stdin=asyncio.subprocess.DEVNULL
                )
            except OSError as exc:
                log.error("worker %d could not start: %s", slot, exc)
                failures += 1
                await self._pause(_backoff(failures))
                continue
            self.processes[slot] = process
            if self._stopping:
                _signal(process, signal.SIGTERM)
            code = await process.wait()
            await self.hub.worker_exited(process.pid, code)
            if self._stopping:
                return
            failures = failures + 1 if time.monotonic() - started < QUICK_EXIT_SECONDS else 0
            delay = _backoff(failures)
            log.warning(
                "worker %d (pid %d) exited with code %s; starting a new one%s",
                slot,
                process.pid,
                code,
                f" in {delay:g} s (it keeps exiting at start-up)" if delay else "",
            )
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        if seconds > 0 and self._wake is not None:
            try:
                await asyncio.wait_for(self._wake.wait(), seconds)
            except TimeoutError:
                pass


def _backoff(failures: int) -> float:
    return 0.0 if failures <= 1 else min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (failures - 2))


def _signal(process: asyncio.subprocess.Process, sig: int) -> None:
    if process.returncode is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass
