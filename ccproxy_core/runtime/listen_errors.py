"""One line for an address that cannot be listened on, naming the setting or option to change."""

from __future__ import annotations

import errno
import os
import socket

SERVER_HOST = "SERVER__HOST (or --host)"
"""How ``ccproxy serve``'s address is set, as an error names it."""
SERVER_PORT = "SERVER__PORT (or --port)"
"""How ``ccproxy serve``'s port is set, as an error names it."""


def cannot_listen_message(
    host: str, port: int, error: OSError | UnicodeError, host_setting: str, port_setting: str
) -> str:
    """Why ``host`` port ``port`` cannot be listened on, and what to set instead.

    ``host_setting`` and ``port_setting`` name what the user gave them with, such as
    ``SERVER__PORT (or --port)`` or ``--port``.
    """
    # A name no resolver can look up (an empty label, one over 63 characters) fails its IDNA encoding.
    if isinstance(error, (socket.gaierror, UnicodeError)) or error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: it is not an address of this machine: set {host_setting} to one of its "
            "addresses (127.0.0.1 for this machine only, 0.0.0.0 for all of them)"
        )
    # asyncio words its bind errors at length; the OS's few words are what the user needs.
    reason = os.strerror(error.errno) if error.errno else str(error)
    return f"cannot listen on {host} port {port} ({reason}): stop what uses it, or set {port_setting} to a free port"
