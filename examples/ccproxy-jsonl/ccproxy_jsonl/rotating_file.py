"""An append-only file of lines that rotates by size, the way log shippers expect.

When the next line would take the file past ``max_bytes``, PATH is renamed PATH.1,
PATH.1 becomes PATH.2 and so on up to PATH.<backups> (the oldest is deleted), and a new
PATH is started. Shippers that follow a file by name (Vector, Fluent Bit, Filebeat,
Promtail) pick up the new file and finish reading the renamed one. A line is never
split across two files; a single line longer than ``max_bytes`` gets a file of its own.
"""

from __future__ import annotations

import os
from pathlib import Path


class RotatingFile:
    """Appends whole lines (bytes ending in a newline) to ``path``. Not thread-safe: one writer."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - held open across writes, closed by close()
        self._size = os.fstat(self._file.fileno()).st_size

    def write_line(self, line: bytes) -> None:
        """Append one line, rotating first if it would not fit."""
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._size += len(line)

    def flush(self) -> None:
        """Hand what was written to the operating system, so readers of the file see it."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close; further writes are an error."""
        self._file.close()

    def backup_path(self, number: int) -> Path:
        """Where the ``number``-th newest rotated file lives (PATH.1 is the newest)."""
        return self.path.with_name(f"{self.path.name}.{number}")

    def _rotate(self) -> None:
        self._file.close()
        try:
            self._shift_backups()
        finally:
            # Reopen even when a rename failed, so the writer can go on (into the old file if need be).
            self._file = open(self.path, "ab")  # noqa: SIM115 - held open across writes, closed by close()
            self._size = os.fstat(self._file.fileno()).st_size

    def _shift_backups(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        self.backup_path(self.backups).unlink(missing_ok=True)
        for number in range(self.backups - 1, 0, -1):
            if self.backup_path(number).exists():
                os.replace(self.backup_path(number), self.backup_path(number + 1))
        os.replace(self.path, self.backup_path(1))
