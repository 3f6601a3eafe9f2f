"""The address of the ccproxy that holds the DuckDB file, found from the process DuckDB names.

``ccproxy serve --port 9000`` holds the file, but the report's settings may not say 9000: the
holder's listening sockets are read from Linux's /proc, and the one whose /health answers as
ccproxy's does is asked. Elsewhere (another OS, another user's process) nothing is found and
the report asks the configured port, as before.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

_LISTEN = "0A"  # the state column of a listening socket in /proc/net/tcp
_HEALTH_TIMEOUT_SECONDS = 2.0
_MAX_HEALTH_BYTES = 65_536


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """The (host, port) pairs process ``pid`` listens on over TCP; empty where /proc does not tell."""
    inodes = _socket_inodes(pid)
    found: set[tuple[str, int]] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                found.add(_address(fields[1], family))
    return sorted(found, key=lambda address: (address[1], address[0]))


def holder_url(pid: int, configured_port: int) -> str | None:
    """The URL of the ccproxy in process ``pid`` (its configured port tried first), or ``None``."""
    addresses = sorted(listening_addresses(pid), key=lambda address: address[1] != configured_port)
    for host, port in addresses:
        url = f"http://{_reachable(host)}:{port}"
        if _answers_as_ccproxy(url):
            return url
    return None


def _socket_inodes(pid: int) -> set[str]:
    folder = f"/proc/{pid}/fd"
    try:
        descriptors = os.listdir(folder)
    except OSError:
        return set()
    inodes = set()
    for descriptor in descriptors:
        try:
            target = os.readlink(f"{folder}/{descriptor}")
        except OSError:  # closed since it was listed
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(field: str, family: int) -> tuple[str, int]:
    """``0100007F:1F90`` as ``("127.0.0.1", 8080)``: the kernel prints each 32-bit word in host byte order."""
    host_hex, port_hex = field.split(":")
    words = (int(host_hex[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(host_hex), 8))
    return socket.inet_ntop(family, b"".join(words)), int(port_hex, 16)


def _reachable(host: str) -> str:
    """Where to ask a server listening on ``host``: loopback for every address, brackets for IPv6."""
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _answers_as_ccproxy(url: str) -> bool:
    """Whether ``url``'s /health answers as ccproxy's does, within :data:`_HEALTH_TIMEOUT_SECONDS` in all:
    the holder may be any program, and its port may answer anything, or drip it."""
    address = urlsplit(url)
    deadline = time.monotonic() + _HEALTH_TIMEOUT_SECONDS
    answer = b""
    try:
        with socket.create_connection((address.hostname, address.port), timeout=_HEALTH_TIMEOUT_SECONDS) as probe:
            probe.sendall(f"GET /health HTTP/1.0\r\nHost: {address.netloc}\r\n\r\n".encode())
            while len(answer) <= _MAX_HEALTH_BYTES and (left := deadline - time.monotonic()) > 0:
                probe.settimeout(left)
                if not (piece := probe.recv(_MAX_HEALTH_BYTES)):
                    break
                answer += piece
            else:
                return False  # too long, or too slow
    except OSError:
        return False
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
        return False
    try:
        found = json.loads(body)
    except ValueError:
        return False
    return isinstance(found, dict) and found.get("status") == "ok" and isinstance(found.get("plugins"), list)
