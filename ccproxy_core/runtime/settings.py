"""Settings: one model with nested sections, read from CLI flags, environment, .env and a TOML file.

Precedence, highest first: CLI flag > environment > .env > config file > default.
Environment variables use ``__`` between section and field:
``OBSERVABILITY__METRICS_ENDPOINT_ENABLED=true``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, SerializeAsAny, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ccproxy_core.runtime import address_lists
from ccproxy_core.runtime.attribution_settings import AttributionSettings
from ccproxy_core.runtime.budget_settings import BudgetSettings, validate_budgets

_config_file: ContextVar[Path | None] = ContextVar("ccproxy_config_file", default=None)


def default_config_path() -> Path:
    """``$CCPROXY_CONFIG``, else ``$XDG_CONFIG_HOME/ccproxy/config.toml`` (``~/.config/...``)."""
    if explicit := os.environ.get("CCPROXY_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ccproxy" / "config.toml"


class ServerSettings(BaseModel):
    """Where ccproxy listens."""

    host: str = Field("127.0.0.1", min_length=1)
    """SERVER__HOST. Loopback by default; set 0.0.0.0 to serve other machines (never empty: that would
    listen on every interface without saying so)."""
    port: int = Field(8000, ge=0, le=65535)
    """SERVER__PORT (0 picks a free port)."""
    workers: int = Field(1, ge=1, le=256)
    """SERVER__WORKERS (``ccproxy serve --workers N``). Processes serving the port; with 2 or more, one more
    process (the hub) runs every plugin and receives every worker's records (see docs/deployment.md)."""
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """SERVER__MAX_REQUEST_BYTES. Bodies larger than this are refused with 413 (default 32 MiB)."""
    max_buffered_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """SERVER__MAX_BUFFERED_BODY_BYTES. Request bodies over 64 KiB held in memory at once, all requests
    together (in each worker); a request whose body does not fit waits its turn, up to twice
    SERVER__BODY_TIMEOUT_SECONDS, then gets 503 (never below SERVER__MAX_REQUEST_BYTES)."""
    body_timeout_seconds: float = Field(30.0, gt=0)
    """SERVER__BODY_TIMEOUT_SECONDS. A request body that stops arriving for this long, or comes slower than
    1,024 bytes a second once this long has passed (64 KiB a second while another request waits for body room),
    is answered 408: it would otherwise hold its connection, and a large one its room in
    SERVER__MAX_BUFFERED_BODY_BYTES, for ever."""
    send_timeout_seconds: float = Field(60.0, gt=0)
    """SERVER__SEND_TIMEOUT_SECONDS. A client that reads nothing of its answer for this long, its connection
    still open, has the connection closed (recorded as ``client_disconnected``, 499): else it would hold a
    provider connection, and its record, for ever (a ``/logs`` page, or a whole answer left unread in the
    server's buffer: that memory). As nginx's ``send_timeout``."""
    shutdown_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    """SERVER__SHUTDOWN_TIMEOUT_SECONDS. On SIGTERM or SIGINT, how long requests in flight (streams included) may
    still run; then each is cut and recorded as such (one not yet answered gets a 503 from ccproxy)."""
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    """SERVER__MAX_HEADER_BYTES. Request line plus headers; more is answered 431 and the connection closed."""
    header_timeout_seconds: float = Field(10.0, gt=0)
    """SERVER__HEADER_TIMEOUT_SECONDS. A client must send its whole request head within this time, else it is closed."""
    keep_alive_timeout_seconds: float = Field(5.0, gt=0)
    """SERVER__KEEP_ALIVE_TIMEOUT_SECONDS. An idle keep-alive connection is closed after this long."""
    max_connections: int = Field(4096, ge=1)
    """SERVER__MAX_CONNECTIONS. Open client connections at once; beyond it new requests get 503."""
    max_model_chars: int = Field(256, ge=16, le=4096)
    """SERVER__MAX_MODEL_CHARS. Longest model name recorded (requested or reported); longer is cut. At most
    4096: the logs API selects names that long."""
    max_user_agent_chars: int = Field(512, ge=16)
    """SERVER__MAX_USER_AGENT_CHARS. Longest User-Agent recorded."""
    max_request_id_chars: int = Field(128, ge=16)
    """SERVER__MAX_REQUEST_ID_CHARS. A longer (or non-token) client x-request-id is replaced by a new id."""
    max_path_chars: int = Field(2048, ge=64)
    """SERVER__MAX_PATH_CHARS. Longest path recorded (the full path is still forwarded)."""
    max_query_chars: int = Field(2048, ge=64)
    """SERVER__MAX_QUERY_CHARS. Longest query string recorded (the full query is still forwarded)."""
    max_error_message_chars: int = Field(1000, ge=64)
    """SERVER__MAX_ERROR_MESSAGE_CHARS. Longest error message recorded or sent in a local error body."""


class UpstreamSettings(BaseModel):
    """The providers ccproxy forwards to."""

    anthropic_base_url: str = "https://api.anthropic.com"
    """UPSTREAM__ANTHROPIC_BASE_URL, with or without a trailing ``/v1`` (the SDKs' own forms)."""
    openai_base_url: str = "https://api.openai.com"
    """UPSTREAM__OPENAI_BASE_URL, with or without a trailing ``/v1`` (the SDKs' own forms)."""
    anthropic_api_key: SecretStr | None = None
    """UPSTREAM__ANTHROPIC_API_KEY, sent as x-api-key only when the client sends no key."""
    openai_api_key: SecretStr | None = None
    """UPSTREAM__OPENAI_API_KEY, sent as a Bearer token only when the client sends no key."""
    connect_timeout_seconds: float = Field(10.0, gt=0)
    """UPSTREAM__CONNECT_TIMEOUT_SECONDS. No connection by then: 504 to the client."""
    read_timeout_seconds: float = Field(600.0, gt=0)
    """UPSTREAM__READ_TIMEOUT_SECONDS. Longest silence allowed between upstream bytes; sending the request and
    reading the answer's head take at most this and the connect timeout together, and the body's time at
    256 KiB/s."""
    max_connections: int = Field(1000, ge=1)
    """UPSTREAM__MAX_CONNECTIONS. Size of each provider's own connection pool."""
    pool_timeout_seconds: float = Field(10.0, gt=0)
    """UPSTREAM__POOL_TIMEOUT_SECONDS. Longest wait for a free pooled connection; then 504."""
    max_decoded_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """UPSTREAM__MAX_DECODED_BYTES. Most bytes of one answer ccproxy holds or decompresses to read its
    usage; beyond, the answer still passes whole, as it arrives, but its usage is not read (a huge
    answer, a decompression bomb)."""
    max_held_answer_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    """UPSTREAM__MAX_HELD_ANSWER_BYTES. Most bytes of whole answers all requests together hold to read their
    usage (at least UPSTREAM__MAX_DECODED_BYTES); an answer that finds no room passes whole, as it
    arrives, its usage not read."""
    max_websocket_message_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """UPSTREAM__MAX_WEBSOCKET_MESSAGE_BYTES. The largest message a provider or a client may send on a
    forwarded WebSocket (each is held whole to be passed on); a larger one closes the socket with 1009:
    from the provider, its open answer is recorded as cut off; from the client, the message is not
    forwarded and the answers still open are recorded as the client's close."""
    openai_stream_include_usage: bool = False
    """UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE. Add ``stream_options.include_usage`` to OpenAI chat
    streams that do not say, so their tokens and cost are known: the one change ccproxy may make
    to a request (the client then gets one more chunk, the usage, before ``[DONE]``)."""
    openai_regional_processing: bool | None = None
    """UPSTREAM__OPENAI_REGIONAL_PROCESSING. Whether OpenAI answers come from its data residency hosts
    (``eu.api.openai.com`` and the like), which bill models released since 5 March 2026 at 1.1 times the
    list price (and models of unknown release there are unpriced); unset: when the base URL's host is one
    (set it for a gateway in front of one)."""
    price_corrections_file: str | None = None
    """UPSTREAM__PRICE_CORRECTIONS_FILE. A TOML file of price corrections applied on top of the
    built-in ones (see docs/records.md); unset: only the built-in ones."""

    @field_validator("anthropic_base_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        url = normalise_base_url(value)
        if urlsplit(url).username is not None:
            # aiohttp refuses to send a URL's credentials next to a client's Authorization header.
            key_setting = "UPSTREAM__" + str(info.field_name).replace("base_url", "api_key").upper()
            raise ValueError(f"must not hold credentials (user:password@): put the key in {key_setting}")
        return url

    @field_validator("anthropic_api_key", "openai_api_key")
    @classmethod
    def _sendable_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Whitespace around a key (the newline of a secret read from a file) is dropped: no key has any."""
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if any(not char.isprintable() for char in key):
            raise ValueError("holds a control character, which cannot be sent in an HTTP header")
        return SecretStr(key) if key else None

    @field_validator("price_corrections_file")
    @classmethod
    def _readable_corrections(cls, value: str | None) -> str | None:
        if value:
            from ccproxy_core.accounting.price_corrections import load_corrections
            from ccproxy_core.errors import SettingsError

            try:
                load_corrections(value)
            except SettingsError as exc:
                raise ValueError(str(exc)) from None
        return value


def normalise_base_url(value: str) -> str:
    """``https://host[/prefix]`` from the forms SDKs accept: a trailing ``/`` or ``/v1`` is dropped.

    ccproxy appends the client's own path (``/v1/messages``), so a base URL ending in
    ``/v1`` would otherwise send ``/v1/v1/...``.
    """
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must start with http:// or https:// and name a host, such as https://api.openai.com/v1")
    if parsed.query or parsed.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...)")
    try:
        port = parsed.port
    except ValueError:  # not a number, or above 65535
        port = 0
    after_address = parsed.netloc.rpartition("]")[2] if "[" in parsed.netloc else ""
    if port == 0 or (after_address and not after_address.startswith(":")):  # http://[::1]9100
        raise ValueError("has a port that is not a number from 1 to 65535, such as http://127.0.0.1:9100")
    if not address_lists.is_dns_name_or_ip(parsed.hostname or ""):
        raise ValueError(
            f"names a host that is not a DNS name or IP address ({parsed.hostname}): labels of letters, digits "
            "and '-' between single dots, none over 63 characters, such as https://api.anthropic.com"
        )
    path = parsed.path.rstrip("/")
    if path.lower().endswith(
        _ENDPOINT_PATHS
    ):  # pasted from an API reference: every request would go to .../messages/v1/...
        cut = path.lower().rfind("/v1/")
        raise ValueError(
            f"ends with an endpoint's path ({path[cut:]}): give the base URL, such as "
            f"{parsed.scheme}://{parsed.netloc}{path[:cut]}; ccproxy appends each request's own path"
        )
    path = path.removesuffix("/v1")
    return f"{parsed.scheme}://{parsed.netloc}{path}"


_ENDPOINT_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings")


class ObservabilitySettings(BaseModel):
    """The ``[observability]`` section: the built-in plugins' settings (``OBSERVABILITY__*``).

    Each built-in plugin owns its fields (its ``PluginSpec.settings`` model); once the
    plugins are loaded, this section becomes the merge of their models
    (:func:`ccproxy_core.plugin_host.plugin_settings.bind_plugin_settings`). Until then it holds the raw
    values read from the sources. A field declared here directly is the core's, and stays.
    """

    model_config = ConfigDict(extra="allow")


class SecuritySettings(BaseModel):
    """Access to ccproxy's own endpoints."""

    auth_token: SecretStr | None = None
    """SECURITY__AUTH_TOKEN: when set, /logs, /dashboard and /metrics need ``Authorization: Bearer <token>``."""
    allowed_hosts: Annotated[list[str], NoDecode] = []
    """SECURITY__ALLOWED_HOSTS: Host names accepted besides loopback names and SERVER__HOST, comma
    separated (``*`` accepts any). A server listening on 0.0.0.0 or :: accepts any Host unless this is set."""
    allowed_origins: Annotated[list[str], NoDecode] = []
    """SECURITY__ALLOWED_ORIGINS: browser origins (``https://app.example``) allowed to call ccproxy, with
    CORS; comma separated. Requests from any other web page are refused."""
    trusted_proxies: Annotated[list[str], NoDecode] = []
    """SECURITY__TRUSTED_PROXIES: addresses of reverse proxies whose X-Forwarded-For/-Proto are believed;
    comma separated (``*`` trusts any). Empty: forwarding headers are ignored."""

    @field_validator("auth_token")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty: unset it to run without a token, or set a long random value")
        return value

    @field_validator("allowed_hosts", "allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return address_lists.comma_or_json_list(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return address_lists.origins(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return address_lists.allowed_hosts(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        return address_lists.trusted_proxies(value)


class LoggingSettings(BaseModel):
    """ccproxy's own log lines."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """LOGGING__LEVEL."""
    format: Literal["text", "json"] = "text"
    """LOGGING__FORMAT: text for people, json for log shippers."""
    access_log: bool = True
    """LOGGING__ACCESS_LOG: one line per proxied request, whatever LOGGING__LEVEL says."""

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class PluginSettings(BaseModel):
    """Which plugins load, and each third-party plugin's own table (``[plugins.<name>]``).

    A plugin's table becomes a typed field once the plugin is loaded
    (:func:`ccproxy_core.plugin_host.plugin_settings.bind_plugin_settings`).
    """

    model_config = ConfigDict(extra="allow")

    disabled: Annotated[list[str], NoDecode] = []
    """PLUGINS__DISABLED: plugin names never to load, comma separated."""
    strict: bool = False
    """PLUGINS__STRICT: a plugin that fails to load stops start-up (for plugin development)."""

    @field_validator("disabled", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class Settings(BaseSettings):
    """All of ccproxy's settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        nested_model_default_partial_update=True,
    )

    server: ServerSettings = ServerSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    # SerializeAsAny: the bound section is a subclass with the plugins' fields; dump them all.
    observability: SerializeAsAny[ObservabilitySettings] = ObservabilitySettings()
    security: SecuritySettings = SecuritySettings()
    attribution: AttributionSettings = AttributionSettings()
    logging: LoggingSettings = LoggingSettings()
    plugins: SerializeAsAny[PluginSettings] = PluginSettings()
    budgets: list[BudgetSettings] = []
    """``[[budgets]]`` tables of the config file (or BUDGETS as a JSON list); enforced with OBSERVABILITY__BUDGETS_ENABLED."""

    @field_validator("budgets", mode="wrap")
    @classmethod
    def _named_budget_errors(cls, value: Any, handler: Callable[[Any], list[BudgetSettings]]) -> list[BudgetSettings]:
        return validate_budgets(value, handler)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(_TomlFile(settings_cls, toml_file=config_file))
        return tuple(sources)


class _TomlFile(TomlConfigSettingsSource):
    """The config file, a leading byte-order mark (as Windows editors write) skipped."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return tomllib.loads(file_path.read_text(encoding="utf-8-sig"))
