"""The front-end bundle: files built by ``dashboard-ui`` (``npm ci && npm run build``) into ``static/``.

The bundle is not in git; ``make dashboard`` builds it. Nothing here is read at import time.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ENTRY_FILES = ("dashboard.js", "dashboard.css")
BUILD_COMMAND = "make dashboard"
BUILD_COMMAND_LONG = "cd dashboard-ui && npm ci && npm run build"

_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
}


def missing_entry_files() -> list[str]:
    """The bundle files the page needs that are not there (empty when the bundle was built)."""
    return [name for name in ENTRY_FILES if not (STATIC_DIR / name).is_file()]


def bundle_version() -> str:
    """A short tag that changes whenever the bundle is rebuilt, put in asset URLs to defeat stale caches."""
    parts = []
    for name in ENTRY_FILES:
        stat = (STATIC_DIR / name).stat()
        parts.append(f"{stat.st_mtime_ns:x}{stat.st_size:x}")
    return "-".join(parts)


def asset_path(name: str) -> Path | None:
    """The file to serve for ``/dashboard/static/<name>``, or ``None``.

    Only plain file names of a known type in ``static/`` itself: no folders, no ``..``.
    """
    if not _ASSET_NAME.fullmatch(name) or Path(name).suffix not in _MEDIA_TYPES:
        return None
    path = STATIC_DIR / name
    return path if path.is_file() else None


def media_type(path: Path) -> str:
    """The Content-Type for a bundle file."""
    return _MEDIA_TYPES[path.suffix]
