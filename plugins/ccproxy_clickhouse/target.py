"""Where the store lives: OBSERVABILITY__CLICKHOUSE_URL parsed, and clients made from it.

``clickhouse://[user[:password]@]host[:port][/database]`` over the native protocol (port 9000
unless given). The password only ever leaves this module inside a client: :meth:`Target.masked`
is what log lines, errors and ``config show`` print.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from clickhouse_driver import Client

from ccproxy_core.errors import StartupError

SETTING = "OBSERVABILITY__CLICKHOUSE_URL"
DEFAULT_PORT = 9000
CONNECT_TIMEOUT_SECONDS = 3
SEND_RECEIVE_TIMEOUT_SECONDS = 30
_EXAMPLE = "clickhouse://user:password@host:9000/database"


@dataclass(frozen=True, slots=True)
class Target:
    """One ClickHouse server and the database ccproxy uses on it."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""

    def masked(self) -> str:
        """The URL with the password replaced by ``***`` (safe to print)."""
        secret = ":***" if self.password else ""
        return f"clickhouse://{self.user}{secret}@{self.host}:{self.port}/{self.database}"

    def at(self, host: str, port: int) -> Target:
        """The same credentials and database on another server (another shard of the cluster)."""
        return replace(self, host=host, port=port)

    def client(self, timeout: float = SEND_RECEIVE_TIMEOUT_SECONDS, database: str | None = None) -> Client:
        """A new native-protocol client (not thread-safe: one per thread), each call waiting at most ``timeout``
        seconds for the server. Connects on first use."""
        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database if database is None else database,
            connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout),
            send_receive_timeout=timeout,
        )


def parse_url(url: str) -> Target:
    """Parse the setting; :class:`StartupError` names the setting and the expected form (never the password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise StartupError(f"{SETTING} is not a valid URL: expected {_EXAMPLE}") from None
    if parts.scheme != "clickhouse":
        raise StartupError(f"{SETTING} must start with clickhouse:// (the native protocol), e.g. {_EXAMPLE}")
    if not parts.hostname:
        raise StartupError(f"{SETTING} has no host: expected {_EXAMPLE}")
    database = unquote(parts.path.strip("/")) or "default"
    if not database.replace("_", "").isalnum():
        raise StartupError(f"{SETTING} names database {database!r}: use letters, digits and _ only")
    return Target(
        host=parts.hostname,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
    )
