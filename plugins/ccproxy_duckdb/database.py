"""The DuckDB file: opening it (with one clear error line), handing out cursors, reopening it.

One root connection per store. Every user (the writer thread, each read, retention) works on
its own ``cursor()``, as DuckDB's Python API asks for concurrent use from several threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ccproxy_core.duckdb_files import SAFE_OPTIONS, foreign_file
from ccproxy_core.errors import StartupError

from . import block_cache
from .schema import SCHEMA_VERSION, migrate, one_row

DuckDBConfig = dict[str, str | bool | int | float | list[str]]
"""The options ``duckdb.connect`` takes."""

log = logging.getLogger("ccproxy.duckdb")


def one_line(text: str) -> str:
    """``text`` with every run of white space (DuckDB's messages span lines) made one space."""
    return re.sub(r"\s+", " ", text).strip()


_NO_VACUUM: DuckDBConfig = {"max_vacuum_tasks": 0}
"""Checkpoints leave the row groups already written as they are.

By default a checkpoint also merges the small row groups earlier checkpoints left, and to
do that it holds their rows in memory: a 60 to 80 MiB spike every few checkpoints under
steady traffic. Without it each checkpoint's rows stay a row group of their own (about
9,000 rows at the default checkpoint threshold of 4MB); row groups whose rows are all deleted,
as retention leaves them, are still dropped and their space reused.
"""


class Database:
    """The open DuckDB file behind a store."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, config: DuckDBConfig) -> None:
        self.path = path
        self._connection = connection
        self._config = config
        self._lock = threading.Lock()
        self.maintenance_lock = threading.Lock()
        """Held by whoever changes rows and rollups together (writer, retention, reset), so they agree."""
        self._reads = 0
        self._reads_changed = threading.Condition()
        self._identity = _file_identity(path)

    @classmethod
    def open(
        cls, configured_path: str, memory_limit: str = "256MB", threads: int = 2, checkpoint_threshold: str = "4MB"
    ) -> Database:
        """Open (creating folders and file as needed) and migrate the file at ``configured_path``.

        ``memory_limit`` and ``threads`` cap DuckDB (OBSERVABILITY__DUCKDB_MEMORY_LIMIT and
        OBSERVABILITY__DUCKDB_THREADS); left to itself it takes 80% of the machine's memory.
        ``checkpoint_threshold`` (OBSERVABILITY__DUCKDB_CHECKPOINT_THRESHOLD) bounds the new rows
        it holds in memory between checkpoints.

        Raises :class:`StartupError` with one line naming the path and the cause when the file
        cannot be opened: a folder that cannot be created, a file locked by another process,
        a file that is not a DuckDB database.
        """
        path = Path(configured_path).expanduser()
        try:
            created = _removed_if_empty(path) or not path.exists()
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            config: DuckDBConfig = {
                "memory_limit": memory_limit.replace(" ", ""),
                "threads": threads,
                "checkpoint_threshold": checkpoint_threshold.replace(" ", ""),
                **_NO_VACUUM,
            }
            connection = _connect(path, config)
            if created:
                path.chmod(0o600)  # the access log is the operator's alone
        except (OSError, duckdb.Error) as exc:
            cause = _a_file_on_the_way(exc) or one_line(str(exc))
            fix = (
                "move it away"
                if isinstance(exc, ForeignFile)
                else "make sure the folder is writable and no other process (another ccproxy?) has the file open"
            )
            raise StartupError(
                f"cannot open DuckDB file {path}: {cause} - {fix}, or set OBSERVABILITY__DUCKDB_PATH to another file"
            ) from None
        try:
            before = _migrate_uncapped(connection, str(path), config["memory_limit"])
        except duckdb.Error as exc:
            connection.close()
            raise StartupError(_unprepared(path, config["memory_limit"], exc)) from None
        except BaseException:
            connection.close()
            raise
        if 0 < before < SCHEMA_VERSION:
            log.info("migrated DuckDB file %s from schema version %d to %d", path, before, SCHEMA_VERSION)
        return cls(path, connection, config)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database, for one thread's use; close it when done."""
        with self._lock:
            return self._connection.cursor()

    @contextlib.contextmanager
    def read_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one read, closed after it; the block cache is never trimmed under an open one."""
        with self._reads_changed:
            self._reads += 1
        try:
            cursor = self.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            with self._reads_changed:
                self._reads -= 1

    def trim_block_cache(self, cursor: duckdb.DuckDBPyConnection) -> int | None:
        """Give back DuckDB's cached table blocks (see :mod:`.block_cache`); ``None`` when a read is running.

        New reads wait the few milliseconds it takes.
        """
        with self._reads_changed:
            if self._reads:
                return None
            return block_cache.trim(cursor, str(self._config["memory_limit"]))

    def reopen(self) -> None:
        """Close and reopen the file, to recover from an I/O error that left DuckDB's file handles unusable,
        or from the file having been removed or replaced (a new one is made, with the schema)."""
        with self._lock:
            emptied = self._emptied_in_place()
            try:
                self._connection.close()
            except duckdb.Error:
                pass
            if emptied:  # closing wrote DuckDB's last blocks into it: neither empty nor a DuckDB file now
                for leftover in (self.path, Path(f"{self.path}.wal")):
                    leftover.unlink(missing_ok=True)
                log.warning("the DuckDB file at %s was emptied while open: making a new DuckDB file there", self.path)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = _removed_if_empty(self.path) or not self.path.exists()
            self._connection = _connect(self.path, self._config)
            if created:
                self.path.chmod(0o600)
            # Every time, not only for a new file: one whose schema an earlier try could not write gets it now.
            _migrate_uncapped(self._connection, str(self.path), self._config["memory_limit"])
            self._identity = _file_identity(self.path)

    def _emptied_in_place(self) -> bool:
        """The open file was emptied where it is (``: > logs.duckdb``)."""
        try:
            return _file_identity(self.path) == self._identity and self.path.stat().st_size == 0
        except OSError:
            return False

    def file_replaced(self) -> bool:
        """Whether the file at the path is gone, is another file than the one open (deleted, moved, replaced),
        or was emptied in place: rows written now would be lost.

        Only the file's status is read: opening and closing the file, even to read a byte, would release
        the lock DuckDB holds on it (POSIX locks belong to the process), letting a second ccproxy open it.
        """
        return _file_identity(self.path) != self._identity or self._emptied_in_place()

    def size_bytes(self) -> int | None:
        """Bytes on disk: the file plus its write-ahead log."""
        total = None
        for candidate in (self.path, Path(f"{self.path}.wal")):
            try:
                total = (total or 0) + os.path.getsize(candidate)
            except OSError:
                continue
        return total

    def close(self) -> None:
        """Close the root connection (DuckDB checkpoints the write-ahead log into the file)."""
        with self._lock:
            self._connection.close()


def _migrate_uncapped(connection: duckdb.DuckDBPyConnection, path: str, memory_limit: object) -> int:
    """:func:`migrate` under DuckDB's own memory limit (80% of the machine's), then the configured cap.

    A migration that builds rollups from every stored row needs more than the cap a running
    ccproxy keeps: at 10 million rows, more than the default 256 MB. It runs once, at start-up.
    """
    connection.execute("RESET memory_limit")
    try:
        return migrate(connection, path)
    finally:
        connection.execute(f"SET memory_limit='{memory_limit}'")


def _unprepared(path: Path, memory_limit: object, error: duckdb.Error) -> str:
    """The start-up line for a file DuckDB could not bring up to date, or a memory cap it could not apply.

    Only the first line of DuckDB's message: the rest is advice in SQL, or a list of candidate functions.
    """
    cause = str(error).strip().partition("\n")[0].strip()
    if isinstance(error, duckdb.OutOfMemoryException):
        return (
            f"DuckDB ran out of memory preparing {path} ({cause}): raise OBSERVABILITY__DUCKDB_MEMORY_LIMIT "
            f"(now {memory_limit}), or free memory on this machine"
        )
    return (
        f"cannot bring DuckDB file {path} up to date ({cause}); it was left as it was: if another program wrote it, "
        "set OBSERVABILITY__DUCKDB_PATH to ccproxy's file or a new one"
    )


_HEADERS_BYTES = 3 * 4096
"""A DuckDB file's main header and its two database headers, ahead of its blocks."""


class ForeignFile(duckdb.IOException):
    """The file at the path is not a DuckDB database (another program's, or damaged): never opened."""


def _a_file_on_the_way(error: BaseException) -> str | None:
    """What stops the folders from being made when a part of the path is a file: the OS says only "exists"."""
    if isinstance(error, FileExistsError | NotADirectoryError) and error.filename:
        return f"{error.filename} is a file, not a folder"
    return None


def _removed_if_empty(path: Path) -> bool:
    """Remove an empty file at ``path`` (with no write-ahead log beside it): DuckDB refuses to open one, and
    it holds nothing. A try to create the file on a full disk leaves one, which would stop every later try."""
    try:
        if path.stat().st_size != 0 or Path(f"{path}.wal").exists():
            return False
        path.unlink()
    except OSError:
        return False
    log.warning("removed the empty file at %s, which DuckDB cannot open, to make a new DuckDB file there", path)
    return True


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _connect(path: Path, config: DuckDBConfig) -> duckdb.DuckDBPyConnection:
    foreign = foreign_file(path)
    if foreign is not None:
        raise ForeignFile(f"it is {foreign}; it was left as it was")
    # No session time zone is relied on: timestamps are bound as aware datetimes and read as epoch_us.
    connection = duckdb.connect(str(path), config={**config, **SAFE_OPTIONS})
    short = _shorter_than_its_blocks(connection, path)
    if short is not None:
        connection.close()
        raise ForeignFile(f"it is {short}: cut short or damaged; it was left as it was")
    return connection


def _shorter_than_its_blocks(connection: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """How much shorter the file is than the blocks its tables use, else ``None``. DuckDB opens such a
    file, reading only its headers and metadata, and then fails every write: each record would be lost."""
    size = path.stat().st_size
    try:
        block_size, blocks = one_row(
            connection.execute(
                "SELECT block_size, total_blocks FROM pragma_database_size() WHERE database_name = current_database()"
            )
        )
        if size >= _HEADERS_BYTES + int(block_size) * int(blocks):
            return None
        # The header also counts free blocks that a checkpoint cut off the file's end (DuckDB shrinks the file
        # and counts them until its next checkpoint): only the blocks the tables use must be there.
        highest = -1
        for (table,) in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall():
            (last,) = one_row(
                connection.execute("SELECT max(block_id) FROM pragma_storage_info(?) WHERE persistent", [table])
            )
            highest = max(highest, -1 if last is None else int(last))
    except duckdb.Error:  # no memory for even this (a cap of nothing), say: the migration that follows says so
        return None
    needed = _HEADERS_BYTES + int(block_size) * (highest + 1)
    return f"{size:,} bytes, where its tables' blocks need {needed:,}" if size < needed else None
