"""Where ``ccproxy report`` reads from: the running server's /logs API, or the DuckDB file itself.

DuckDB lets one process write a file; a running ccproxy holds that lock, so the report then asks
the server. With no server running the file is opened read-only. Both sources answer with the
same shapes as GET /logs/analytics?group_by= (``groups``) and GET /logs/sessions.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS
from ccproxy_core.duckdb_files import SAFE_OPTIONS, foreign_file
from ccproxy_core.errors import CcproxyError
from ccproxy_core.plugin_host.key_groups import configured_key_names, name_key_groups, name_session_keys
from ccproxy_core.plugin_host.log_store import Grouping, LogFilters, NameFilter
from ccproxy_core.runtime.report.holder import holder_url
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.safe_values import redact_secrets

_LOCKED = "lock"
# The columns every ccproxy DuckDB file has had, from its first schema version on.
_FIRST_COLUMNS = ACCESS_LOG_COLUMNS[: ACCESS_LOG_COLUMNS.index("cost_sdk_usd") + 1]
# The /logs API's own bounds: sessions per page, groups per answer, day points per analytics answer.
MAX_SESSIONS_PAGE = 1000
MAX_GROUPS = 10_000
MAX_DAYS = 10_000
# The /logs API's ``session_id`` filter: a comma list of at most 100 names of at most 200 characters;
# a batch's query string is also kept well inside the server's request-head limit.
MAX_LISTED_IDS = 100
MAX_LISTED_CHARS = 200
MAX_LIST_QUERY_CHARS = 4000


class ReportError(CcproxyError):
    """The report cannot be made; the message says which setting or flag to change."""


class ReportSource(Protocol):
    name: str

    def groups(self, start: datetime, end: datetime, grouping: Grouping) -> list[dict[str, Any]]: ...

    def sessions(self, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]: ...

    def session_groups(
        self, start: datetime, end: datetime, session_ids: list[str], breakdown: str
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class ApiSource:
    """The /logs API of a running server."""

    name = "api"

    def __init__(self, url: str, token: str | None, held_file_note: str | None = None) -> None:
        """Ask the server at ``url``; ``held_file_note`` names the DuckDB file and the process holding it
        when that is why the report asks this server, for the error should it not answer."""
        self.base_url = url.rstrip("/")
        _check_url(self.base_url)
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.held_file_note = held_file_note

    def _get(self, path: str, params: dict[str, Any], field: str) -> list[Any]:
        """The list ``field`` of the server's answer to ``GET path?params``."""
        query = urlencode({k: v for k, v in params.items() if v is not None})
        shown = redact_secrets(self.base_url)  # a password or token in --url is never printed
        try:
            request = urllib.request.Request(f"{self.base_url}{path}?{query}", headers=self.headers)
            with urllib.request.urlopen(request, timeout=120) as answer:  # the operator's own server
                found = json.loads(answer.read())
            if not isinstance(found, dict) or not isinstance(found.get(field), list):
                raise ReportError(
                    f"{shown}{path} did not answer as ccproxy's /logs API does (no {field!r} list): "
                    "pass --url http://HOST:PORT of a running ccproxy"
                )
            return found[field]
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise ReportError(f"{shown}{path} answered {exc.code}: {detail}{_HINTS.get(exc.code, '')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = redact_secrets(str(exc))
            if self.held_file_note:
                advice = f"{self.held_file_note}: pass --url http://HOST:PORT of the ccproxy that holds it"
            else:
                advice = "pass --url http://HOST:PORT of a running ccproxy"
            raise ReportError(f"cannot read ccproxy at {shown}: {reason}; {advice}") from None

    def groups(
        self, start: datetime, end: datetime, grouping: Grouping, only: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """GET /logs/analytics?group_by=, over the rows that also match the filter parameters ``only``."""
        stored = self._stored_span(start, end)
        if stored is None:
            return []
        # Asked for the stored span only: the answer is the same, and its day series stays within MAX_DAYS.
        first, last = stored
        if (last - first).days >= MAX_DAYS:
            raise ReportError(
                f"the stored records of this window span more than {MAX_DAYS:,} days, more than the /logs API "
                "answers at once: give a shorter --since/--until"
            )
        group_by = f"tag:{grouping.tag}" if grouping.dimension == "tag" else grouping.dimension
        params = {
            "start_time": first.isoformat(),
            "end_time": (last + timedelta(microseconds=1)).isoformat(),
            "group_by": group_by,
            "top": min(grouping.top, MAX_GROUPS),
            "breakdown": grouping.breakdown,
            "bucket": "day",
            **(only or {}),
        }
        return self._get("/logs/analytics", params, "groups")

    def session_groups(
        self, start: datetime, end: datetime, session_ids: list[str], breakdown: str
    ) -> list[dict[str, Any]]:
        """The groups of these sessions, each with its parts, asked for by name in batches.

        An id the ``session_id`` filter cannot name (longer than it takes), or one it did not
        answer for, is looked for among the window's most costly sessions, as many as the API
        gives at once."""
        found: dict[str, dict[str, Any]] = {}
        listable = [filter_item(session) for session in session_ids if len(session) <= MAX_LISTED_CHARS]
        for batch in id_batches(listable):
            grouping = Grouping("session", None, len(batch), breakdown)
            found |= {g["key"]: g for g in self.groups(start, end, grouping, {"session_id": ",".join(batch)})}
        missing = set(session_ids) - found.keys()
        if missing:
            costliest = self.groups(start, end, Grouping("session", None, MAX_GROUPS, breakdown))
            found |= {g["key"]: g for g in costliest if g["key"] in missing}
        return list(found.values())

    def _stored_span(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """The times of the first and the last stored request in the window; None when it holds none."""
        window = {"start_time": start.isoformat(), "end_time": end.isoformat()}
        newest = self._get("/logs/query", {**window, "limit": 1}, "results")
        if not newest:
            return None
        first_page = {**window, "order_by": "timestamp", "order_desc": "false", "page_size": 1}
        oldest = self._get("/logs/entries", first_page, "results")
        return datetime.fromisoformat(oldest[0]["timestamp"]), datetime.fromisoformat(newest[0]["timestamp"])

    def sessions(self, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
        window = {"start_time": start.isoformat(), "end_time": end.isoformat()}
        sessions: list[dict[str, Any]] = []
        while len(sessions) < limit:
            page_size = min(limit - len(sessions), MAX_SESSIONS_PAGE)
            page = self._get("/logs/sessions", {**window, "limit": page_size, "offset": len(sessions)}, "sessions")
            sessions += page
            if len(page) < page_size:
                break
        return sessions

    def close(self) -> None:
        """Nothing to close: each request opens its own connection."""


def _check_url(url: str) -> None:
    """Refuse a ``--url`` that is not ccproxy's own address: the auth token goes wherever it points.

    The SDKs' base URL (``http://HOST:PORT/v1``) is the likeliest mistake, and ``/v1/logs/query``
    would be forwarded to the provider, token and all.
    """
    parts = urlsplit(url)
    shown = redact_secrets(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReportError(f"--url must be http://HOST:PORT (or https://) of a running ccproxy, got {shown}")
    if "@" in parts.netloc:  # urllib would take "user:password@host" for a host name
        raise ReportError(
            f"--url must not hold credentials (user:password@), got {shown}: ccproxy's endpoints take "
            "SECURITY__AUTH_TOKEN, which report sends from the settings"
        )
    if parts.path.rstrip("/").lower().endswith("/v1"):
        raise ReportError(
            f"--url is ccproxy's own address, not the API base URL the SDKs take: got {shown}; "
            "drop the trailing /v1 (http://HOST:PORT)"
        )


def filter_item(name: str) -> str:
    """``name`` as one item of a /logs comma-list filter, read back as exactly this name: a backslash
    before each ``\\``, ``,``, ``!`` and blank (the API takes ``,`` as a separator, a leading ``!``
    as an exclusion and drops blanks around an item)."""
    return "".join(f"\\{char}" if char in "\\,!" or char.isspace() else char for char in name)


def id_batches(session_ids: list[str]) -> list[list[str]]:
    """The (escaped) ids in runs the API takes in one ``session_id`` filter."""
    batches: list[list[str]] = []
    chars = 0
    for session_id in session_ids:
        size = len(quote(session_id, safe="")) + len("%2C")  # as it travels: percent-encoded, comma separated
        if not batches or len(batches[-1]) == MAX_LISTED_IDS or chars + size > MAX_LIST_QUERY_CHARS:
            batches.append([])
            chars = 0
        batches[-1].append(session_id)
        chars += size
    return batches


_HINTS = {
    401: " (set SECURITY__AUTH_TOKEN to the server's token)",
    403: " (set SECURITY__AUTH_TOKEN to the server's token)",
    404: " (the /logs API needs OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true on that server)",
}


class FileSource:
    """The DuckDB file, opened read-only (the built-in store's own queries read it); keys are
    labelled with ``key_names`` (fingerprint -> configured name), as the /logs API labels them."""

    name = "file"

    def __init__(self, cursor: Any, key_names: dict[str, str] | None = None) -> None:
        self.cursor = cursor
        self.key_names = key_names or {}

    def groups(self, start: datetime, end: datetime, grouping: Grouping) -> list[dict[str, Any]]:
        from ccproxy_duckdb.groups import groups

        found = groups(self.cursor, LogFilters(start_time=start, end_time=end), grouping)
        return name_key_groups(found, grouping, self.key_names)

    def sessions(self, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
        from ccproxy_duckdb.sessions import session_list

        found = session_list(self.cursor, LogFilters(start_time=start, end_time=end), limit, 0)[0]
        return name_session_keys(found, self.key_names)

    def session_groups(
        self, start: datetime, end: datetime, session_ids: list[str], breakdown: str
    ) -> list[dict[str, Any]]:
        """The groups of exactly these sessions, each with its parts by ``breakdown``."""
        from ccproxy_duckdb.groups import groups

        if not session_ids:
            return []
        only = LogFilters(start_time=start, end_time=end, session_id=NameFilter(include=tuple(session_ids)))
        grouping = Grouping("session", None, len(session_ids), breakdown)
        return name_key_groups(groups(self.cursor, only, grouping), grouping, self.key_names)

    def close(self) -> None:
        """Release the file (and its read lock)."""
        self.cursor.close()


def open_source(settings: Settings, url: str | None) -> ReportSource:
    """The API at ``url`` when given; else the file, or the local server's API when it holds the file or the
    records are in a shared store (ClickHouse)."""
    token = settings.security.auth_token.get_secret_value() if settings.security.auth_token else None
    if url:
        return ApiSource(url, token)
    if getattr(settings.observability, "log_storage_backend", "duckdb") != "duckdb":
        return ApiSource(_local_server_url(settings), token)  # a shared store: ask the server that writes to it
    duckdb_path = getattr(settings.observability, "duckdb_path", None)  # the duckdb plugin's setting
    if duckdb_path is None:
        raise ReportError("the duckdb plugin is disabled or not installed: pass --url of a running ccproxy")
    path = Path(duckdb_path).expanduser()
    if not path.exists():
        raise ReportError(
            f"no stored access records at {path}: set OBSERVABILITY__DUCKDB_PATH (or --config), "
            "or pass --url of a running ccproxy"
        )
    foreign = foreign_file(path)
    if foreign is not None:
        raise ReportError(f"cannot read {path}: it is {foreign}; set OBSERVABILITY__DUCKDB_PATH to ccproxy's file")
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True, config=SAFE_OPTIONS)
    except duckdb.IOException as exc:
        if _LOCKED not in str(exc).lower():
            raise ReportError(f"cannot open {path}: {' '.join(str(exc).split())}") from None
        holder = re.search(r"\(PID (\d+)\)", str(exc))
        note = f"{path} is in use by another process{' ' + holder.group() if holder else ''}"
        found = holder_url(int(holder.group(1)), settings.server.port) if holder else None
        return ApiSource(found or _local_server_url(settings), token, note)
    try:
        _check_columns(connection, path)
    except ReportError:
        connection.close()
        raise
    return FileSource(connection, configured_key_names(settings.attribution))


def _local_server_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::", "") else settings.server.host
    return f"http://{host}:{settings.server.port}"


def _check_columns(connection: Any, path: Path) -> None:
    """Refuse another program's file, and tell an older ccproxy's file to be migrated first."""
    names = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = 'access_logs'"
        ).fetchall()
    }
    # Starting ccproxy on another program's file would add ccproxy's tables to it: never advise that.
    if not names.issuperset(_FIRST_COLUMNS):
        raise ReportError(
            f"{path} holds no ccproxy access records: set OBSERVABILITY__DUCKDB_PATH (or --config) to ccproxy's "
            "file, or pass --url of a running ccproxy"
        )
    if not names.issuperset(ACCESS_LOG_COLUMNS):
        raise ReportError(
            f"{path} predates columns this ccproxy reads: start ccproxy once (it migrates the file), then run the report again"
        )
    # An earlier migration left rows of the first schema without it: they would all show as of unknown cost.
    if connection.execute("SELECT count(*) > 0 FROM access_logs WHERE priced IS NULL").fetchone()[0]:
        raise ReportError(
            f"{path} has rows an earlier ccproxy left without their priced flag: start ccproxy once (it mends the "
            "file), then run the report again"
        )
