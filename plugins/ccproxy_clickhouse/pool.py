"""A few reusable clients for reads: clickhouse-driver clients are not thread-safe, so each read takes one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from clickhouse_driver import Client

T = TypeVar("T")
KEEP_IDLE = 4


class ClientPool:
    """Hands one client to each reading thread and keeps up to ``keep`` idle ones connected."""

    def __init__(self, connect: Callable[[], Client], keep: int = KEEP_IDLE) -> None:
        self._connect = connect
        self._keep = keep
        self._idle: list[Client] = []
        self._lock = threading.Lock()

    def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(client, *args)`` on a client of its own; a client whose connection broke is not kept."""
        with self._lock:
            client = self._idle.pop() if self._idle else self._connect()
        try:
            result = function(client, *args)
        except BaseException:
            client.disconnect()  # its connection may be half-way through a reply: never reuse it
            raise
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(client)
                client = None
        if client is not None:
            client.disconnect()
        return result

    def close(self) -> None:
        """Disconnect the idle clients."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.disconnect()
