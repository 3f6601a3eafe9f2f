"""Opening a DuckDB file without opening another program's file, or code DuckDB would fetch to read it."""

from __future__ import annotations

from pathlib import Path

SAFE_OPTIONS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Options for every connection. Left to itself, DuckDB given a file it knows as another program's
(an SQLite database) downloads an extension, loads that native code and opens the other program's
data. The extensions ccproxy uses (JSON, time zones) are built in."""

_MAGIC = slice(8, 12)  # where every DuckDB database file says "DUCK"
_SQLITE_HEADER = b"SQLite format 3\x00"


def foreign_file(path: Path) -> str | None:
    """What the file at ``path`` is when it exists and is not a DuckDB database; None otherwise.

    A file that cannot be read is left for DuckDB to report.
    """
    try:
        with path.open("rb") as file:
            header = file.read(16)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    if header[_MAGIC] == b"DUCK":
        return None
    if header.startswith(_SQLITE_HEADER):
        return "an SQLite database, not a DuckDB file"
    return "not a DuckDB file"
