"""The entry point of one worker process (started by the supervisor, never by hand)."""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import socket
import sys

from ccproxy_core.errors import CcproxyError
from ccproxy_core.runtime.logging_setup import configure_logging
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.runtime.workers.channel import HubChannel
from ccproxy_core.runtime.workers.forward import HubForwarder
from ccproxy_core.runtime.workers.worker_app import WorkerApp

log = logging.getLogger("ccproxy.workers")

EVENTS_SOCKET = "events.sock"
HUB_SOCKET = "hub.sock"
_PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    """Serve the inherited listening socket until SIGTERM; exit 2 on a bad setting."""
    from ccproxy_core.runtime.serve import Server, uvicorn_config
    from ccproxy_core.runtime.stop_signals import hold_stop_signals

    options = _arguments(argv)
    if options.hangups_ignored:  # the supervisor runs under nohup: so does this worker
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.umask(0o077)
    _stop_with_parent(options.parent_pid)
    try:
        settings = load_settings(options.config, json.loads(options.overrides))
    except CcproxyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    listener = configure_logging(settings.logging)
    try:
        channel = HubChannel(os.path.join(options.runtime_dir, EVENTS_SOCKET), options.worker)
        app = WorkerApp(settings, channel, HubForwarder(os.path.join(options.runtime_dir, HUB_SOCKET)))
        server = Server(uvicorn_config(app, settings))
        app.requests_running = lambda: server.server_state.tasks
        hold_stop_signals()
        server.run(sockets=[socket.socket(fileno=options.listen_fd)])
        return 0 if server.started else 1
    finally:
        listener.stop()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ccproxy-worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--runtime-dir", required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--hangups-ignored", action="store_true")
    return parser.parse_args(argv)


def _stop_with_parent(parent_pid: int) -> None:
    """Drain and exit when the supervisor dies (Linux), rather than serve with no hub."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
