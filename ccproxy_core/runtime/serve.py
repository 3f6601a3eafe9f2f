"""Run the app under uvicorn, with clean one-line failures."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from ccproxy_core.errors import CcproxyError, SettingsError
from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.listen_errors import SERVER_HOST, SERVER_PORT, cannot_listen_message
from ccproxy_core.runtime.logging_setup import configure_logging
from ccproxy_core.runtime.server_limits import ConnectionLimits, GuardedHttpToolsProtocol, open_file_limit
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.runtime.stop_signals import held_stop_signal, hold_stop_signals, ignore_held_stop_signals
from ccproxy_core.runtime.websocket_protocol import WebSocketProtocol

log = logging.getLogger("ccproxy")


def uvicorn_config(app, settings: Settings, **overrides) -> uvicorn.Config:  # any ASGI app
    """The uvicorn settings ccproxy always runs with: uvloop, httptools with ccproxy's limits, our own logging,
    WebSockets through :class:`WebSocketProtocol`.

    Forwarding headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from
    SECURITY__TRUSTED_PROXIES; uvicorn would otherwise believe them from 127.0.0.1.
    """
    server, trusted = settings.server, settings.security.trusted_proxies
    limits = ConnectionLimits(
        server.max_header_bytes, server.header_timeout_seconds, server.max_connections, server.send_timeout_seconds
    )
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": functools.partial(GuardedHttpToolsProtocol, limits=limits),
        "ws": WebSocketProtocol,
        "ws_max_size": settings.upstream.max_websocket_message_bytes,  # the client's messages, as the provider's
        # No compression from clients: a 1 MB frame could inflate to the whole cap, per socket at once.
        "ws_per_message_deflate": False,
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": server.shutdown_timeout_seconds,
        "timeout_keep_alive": server.keep_alive_timeout_seconds,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else None,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Tracked objects a process may gain before the garbage collector looks at the youngest ones.

Python's default, 700, is reached every few dozen requests under load by objects that are
alive only for the request (16 in flight, their records queued for the store), so each
collection walked them for nothing: 1 to 2% of the CPU at 600 requests a second with the
plugins on. At 10,000, steady traffic triggers none, and garbage in reference cycles still
cannot pile up beyond that many objects.
"""


CUT_BEFORE_TIMEOUT_SECONDS = 1.0
"""How long before ``SERVER__SHUTDOWN_TIMEOUT_SECONDS`` runs out the requests still running are cut
(half the timeout when it is shorter than twice this): time for their records to reach followers."""


class Server(uvicorn.Server):
    """uvicorn's server that also tells the app when it starts draining (``app.state.draining``)."""

    _gc_threshold: tuple[int, ...] | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame) -> None:  # signal frame
        # A signal handler runs between two bytecodes of the main thread, so a second signal can run it again
        # inside the first one's ``draining.set()``, whose lock is not reentrant: that froze the process for
        # good. Signals come in bursts (a worker gets the supervisor's death signal once per supervisor
        # thread; Ctrl-C pressed twice), so only the first one sets the flag, after ``should_exit`` says so.
        first = not self.should_exit
        super().handle_exit(sig, frame)
        if first:
            app: Any = self.config.app  # ccproxy's FastAPI app, typed by uvicorn as any ASGI app
            app.state.draining.set()
            self._cut_before_the_timeout(getattr(app.state, "cut_running_requests", None))

    def _cut_before_the_timeout(self, cut: Any) -> None:
        """Have ``cut`` cancel the requests still running shortly before uvicorn's shutdown timeout would.

        uvicorn cancels every request at once, the live log streams with them: the records of the cut
        requests, made as they unwind, would reach no follower. Cut first, they are recorded and sent,
        and the streams end cleanly, before the timeout.
        """
        timeout, loop = self.config.timeout_graceful_shutdown, self._loop
        if cut is None or timeout is None or loop is None:
            return
        delay = max(timeout / 2, timeout - CUT_BEFORE_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.call_later, delay, cut)  # a signal handler may run outside the loop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """As uvicorn's, and:

        - a stop signal that came before (while held, see :mod:`.stop_signals`) stops the server once started;
        - a hang-up (SIGHUP: the terminal or the ssh session closed) stops gracefully, as SIGTERM does: by
          default it would kill the process with its requests and queued records. Started with hang-ups
          ignored (``nohup``), they stay ignored;
        - once it has stopped, hang-ups and held stop signals are ignored: a late one of a burst would
          otherwise kill the process while it writes its last lines.
        """
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is not None and signal.getsignal(hangup) == signal.SIG_IGN:
            hangup = None
        if hangup is not None:
            signal.signal(hangup, lambda _, frame: self.handle_exit(signal.SIGTERM, frame))
        try:
            with super().capture_signals():
                if (held := held_stop_signal()) is not None:
                    self.handle_exit(held, None)
                yield
        finally:
            if hangup is not None:
                signal.signal(hangup, signal.SIG_IGN)
            ignore_held_stop_signals()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then tune the garbage collector for a long-lived server.

        Everything built so far is put out of its sight: the app, the plugins and the price
        tables live as long as the process; left tracked, each full collection walks them all
        and stalls the event loop for some 20 ms, which made the 99th percentile latency ten
        times the median under load (docs/benchmarks.md). And the young generation is collected
        less often (:data:`YOUNG_COLLECTION_THRESHOLD`).
        """
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        gc.collect()
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *self._gc_threshold[1:])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Shut down as uvicorn does, then hand the frozen objects back to the collector, at its old thresholds.

        Left frozen, they are never collected at exit, and DuckDB's bindings then report
        every object still alive as a "leaked instance" on stderr.
        """
        await super().shutdown(sockets=sockets)
        if self.force_exit:
            await self._write_records_after_forced_exit()
        gc.unfreeze()
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)

    async def _write_records_after_forced_exit(self) -> None:
        """A second Ctrl-C makes uvicorn skip waiting for requests and the app's shutdown, which
        writes the records still queued. Requests in flight are cut and recorded as such, and the
        app is shut down all the same: a forced exit is faster, but loses no record."""
        tasks = list(self.server_state.tasks)
        for task in tasks:
            task.cancel(msg="forced exit")
        if tasks:
            await asyncio.wait(tasks, timeout=FORCED_EXIT_SECONDS)
            log.warning("forced exit: %d request(s) in flight were cut off; writing the records queued", len(tasks))
        await self.lifespan.shutdown()


FORCED_EXIT_SECONDS = 2.0
"""How long a forced exit waits for the requests it cut to record how they ended."""


def run_server(settings: Settings, config_file: str | None = None, overrides: dict[str, Any] | None = None) -> int:
    """Serve until stopped; return the process exit code (2 for a bad setting, 1 when start-up failed).

    With ``SERVER__WORKERS`` of 2 or more, this process becomes the hub of that many workers,
    which read their settings from ``config_file``, ``overrides`` and the environment as this one did.
    """
    os.umask(0o077)  # files and folders ccproxy creates (the DuckDB file, its WAL) are its owner's alone
    listener = configure_logging(settings.logging)
    for exposure in exposure_warnings(settings):
        log.warning("%s", exposure)
    upstream_connections = 2 * settings.upstream.max_connections  # one pool per provider
    if (warning := open_file_limit(settings.server.max_connections, upstream_connections)) is not None:
        log.warning("%s", warning)
    try:
        try:
            app = create_app(settings)
        except SettingsError as exc:  # a plugin's setting: a bad value or an unknown name
            log.error("%s", exc)
            return 2
        except CcproxyError as exc:
            log.error("%s", exc)
            return 1
        # Before the plugins start: a server that cannot listen must not create or change their files.
        if (problem := _bind_problem(settings.server.host, settings.server.port)) is not None:
            log.error("%s", problem)
            return 1
        if settings.server.workers > 1:
            from ccproxy_core.runtime.workers.supervisor import serve_with_workers

            return serve_with_workers(app, settings, config_file, overrides or {})
        server = Server(uvicorn_config(app, settings))
        hold_stop_signals()
        try:
            server.run()
        except SystemExit:  # uvicorn exits on its own when the lifespan or the bind fails
            if (problem := _bind_problem(settings.server.host, settings.server.port)) is not None:
                log.error("%s", problem)  # uvicorn logs the bare OS error: say which setting to change
            return 1
        return 0 if server.started else 1
    finally:
        listener.stop()


def exposure_warnings(settings: Settings) -> list[str]:
    """One line for each way the settings let others spend the provider keys or read the records unasked."""
    host, security = settings.server.host, settings.security
    keys = [
        f"UPSTREAM__{name.upper()}_API_KEY"
        for name in ("anthropic", "openai")
        if getattr(settings.upstream, f"{name}_api_key")
    ]
    every_interface = host.strip("[]") in ("0.0.0.0", "::")
    warnings = []
    if every_interface and security.auth_token is None and not security.allowed_hosts and keys:
        warnings.append(
            f"SERVER__HOST={host} serves every interface with {' and '.join(keys)} set and neither SECURITY__AUTH_TOKEN "
            "nor SECURITY__ALLOWED_HOSTS: anyone who reaches this port can spend the key and read /logs, and any web "
            "page can through DNS rebinding; set SECURITY__ALLOWED_HOSTS to the names clients use, "
            "SECURITY__AUTH_TOKEN, and put access control in front (see docs/security.md)"
        )
    elif every_interface and security.auth_token is None and (opened := _open_endpoints(settings)):
        warnings.append(
            f"SERVER__HOST={host} serves every interface with {' and '.join(opened)} on and no SECURITY__AUTH_TOKEN: "
            "anyone who reaches this port can read what every request was for and cost; set SECURITY__AUTH_TOKEN, "
            "or serve loopback only (see docs/security.md)"
        )
    if "*" in security.allowed_origins and keys:
        warnings.append(
            f"SECURITY__ALLOWED_ORIGINS=* with {' and '.join(keys)} set: any web page can send requests through "
            "ccproxy with that key and read the answers; list the origins of your own web tools instead"
        )
    return warnings


def _open_endpoints(settings: Settings) -> list[str]:
    """The plugin switches that put records or metrics on this port (the plugins' settings, when bound)."""
    observability = settings.observability
    switches = ("logs_endpoints_enabled", "metrics_endpoint_enabled")
    return [f"OBSERVABILITY__{name.upper()}" for name in switches if getattr(observability, name, False) is True]


def _bind_problem(host: str, port: int) -> str | None:
    """The line saying why ``host`` port ``port`` cannot be listened on, and what to set; None when it can."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own socket
            probe.bind(address)
    except (OSError, UnicodeError) as exc:
        return cannot_listen_message(host, port, exc, SERVER_HOST, SERVER_PORT)
    return None
