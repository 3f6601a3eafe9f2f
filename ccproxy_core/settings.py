"""Settings: one model with nested sections, read from CLI flags, environment, .env and a TOML file.

Precedence, highest first: CLI flag > environment > .env > config file > default.
Environment variables use ``__`` between section and field:
``OBSERVABILITY__METRICS_ENDPOINT_ENABLED=true``.
"""

from __future__ import annotations

import math
import os
import re
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_config_file: ContextVar[Path | None] = ContextVar("ccproxy_config_file", default=None)


def default_config_path() -> Path:
    """``$CCPROXY_CONFIG``, else ``$XDG_CONFIG_HOME/ccproxy/config.toml`` (``~/.config/...``)."""
    if explicit := os.environ.get("CCPROXY_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ccproxy" / "config.toml"


class ServerSettings(BaseModel):
    """Where ccproxy listens."""

    host: str = "127.0.0.1"
    """SERVER__HOST. Loopback by default; set 0.0.0.0 to serve other machines."""
    port: int = Field(8000, ge=0, le=65535)
    """SERVER__PORT (0 picks a free port)."""
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """SERVER__MAX_REQUEST_BYTES. Bodies larger than this are refused with 413 (default 32 MiB)."""


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
    """UPSTREAM__READ_TIMEOUT_SECONDS. Longest silence allowed between upstream bytes."""
    max_connections: int = Field(1000, ge=1)
    """UPSTREAM__MAX_CONNECTIONS. Size of each provider's own connection pool."""
    pool_timeout_seconds: float = Field(10.0, gt=0)
    """UPSTREAM__POOL_TIMEOUT_SECONDS. Longest wait for a free pooled connection; then 504."""
    max_decoded_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """UPSTREAM__MAX_DECODED_BYTES. Most bytes ccproxy decompresses of one answer to read its
    usage; beyond, the answer still passes whole but its usage is not read (a decompression bomb)."""
    openai_stream_include_usage: bool = False
    """UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE. Add ``stream_options.include_usage`` to OpenAI chat
    streams that do not say, so their tokens and cost are known: the one change ccproxy may make
    to a request (the client then gets one more chunk, the usage, before ``[DONE]``)."""
    price_corrections_file: str | None = None
    """UPSTREAM__PRICE_CORRECTIONS_FILE. A TOML file of price corrections applied on top of the
    built-in ones (see docs/records.md); unset: only the built-in ones."""

    @field_validator("anthropic_base_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return normalise_base_url(value)

    @field_validator("price_corrections_file")
    @classmethod
    def _readable_corrections(cls, value: str | None) -> str | None:
        if value:
            from ccproxy_core.errors import SettingsError
            from ccproxy_core.price_corrections import load_corrections

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
        raise ValueError("must be an http:// or https:// URL with a host, such as https://api.openai.com/v1")
    if parsed.query or parsed.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...)")
    path = parsed.path.rstrip("/")
    path = path.removesuffix("/v1")
    return f"{parsed.scheme}://{parsed.netloc}{path}"


class ObservabilitySettings(BaseModel):
    """Which observability plugins are on, and how they behave."""

    metrics_endpoint_enabled: bool = False
    """OBSERVABILITY__METRICS_ENDPOINT_ENABLED: serve Prometheus metrics on /metrics."""
    logs_endpoints_enabled: bool = False
    """OBSERVABILITY__LOGS_ENDPOINTS_ENABLED: serve the /logs query API."""
    dashboard_enabled: bool = False
    """OBSERVABILITY__DASHBOARD_ENABLED: serve the live dashboard on /dashboard."""
    logs_collection_enabled: bool = False
    """OBSERVABILITY__LOGS_COLLECTION_ENABLED: store every access record."""
    log_storage_backend: Literal["duckdb", "none"] = "duckdb"
    """OBSERVABILITY__LOG_STORAGE_BACKEND: duckdb or none."""
    duckdb_path: str = "~/.local/share/ccproxy/metrics.duckdb"
    """OBSERVABILITY__DUCKDB_PATH: the DuckDB file (~ expanded, folders created)."""
    pushgateway_url: str | None = None
    """OBSERVABILITY__PUSHGATEWAY_URL: push metrics there when set (user:pass@ allowed)."""
    pushgateway_interval_seconds: float = Field(15.0, gt=0)
    """OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS: seconds between pushes."""
    pushgateway_job: str = "ccproxy"
    """OBSERVABILITY__PUSHGATEWAY_JOB: the Pushgateway job name."""
    pushgateway_instance: str | None = None
    """OBSERVABILITY__PUSHGATEWAY_INSTANCE: grouping key ``instance``; default host:port."""
    log_retention_days: float | None = Field(None, gt=0)
    """OBSERVABILITY__LOG_RETENTION_DAYS: delete stored rows older than this; unset keeps all."""
    log_queue_size: int = Field(10_000, ge=1)
    """OBSERVABILITY__LOG_QUEUE_SIZE: records waiting for the writer before new ones are dropped."""
    log_batch_size: int = Field(1_000, ge=1)
    """OBSERVABILITY__LOG_BATCH_SIZE: records per insert."""
    log_flush_interval_seconds: float = Field(1.0, gt=0)
    """OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS: longest wait before queued records are written."""
    stream_max_subscribers: int = Field(100, ge=1)
    """OBSERVABILITY__STREAM_MAX_SUBSCRIBERS: concurrent /logs/stream clients."""
    stream_queue_size: int = Field(1_000, ge=1)
    """OBSERVABILITY__STREAM_QUEUE_SIZE: events buffered per subscriber before it is dropped."""
    stream_replay_size: int = Field(1_000, ge=0)
    """OBSERVABILITY__STREAM_REPLAY_SIZE: recent events kept for Last-Event-ID reconnects."""
    metrics_model_label_cap: int = Field(100, ge=1)
    """OBSERVABILITY__METRICS_MODEL_LABEL_CAP: distinct model labels before others become ``other``."""
    otel_enabled: bool = False
    """OBSERVABILITY__OTEL_ENABLED: export one OpenTelemetry span per proxied request (OTLP/HTTP, set by OTEL_* variables)."""
    otel_metrics_enabled: bool = False
    """OBSERVABILITY__OTEL_METRICS_ENABLED: with OpenTelemetry on, also export the GenAI client metrics."""
    budgets_enabled: bool = False
    """OBSERVABILITY__BUDGETS_ENABLED: enforce the ``[[budgets]]`` of the config file."""
    budgets_webhook_url: str | None = None
    """OBSERVABILITY__BUDGETS_WEBHOOK_URL: POST a notice here when a budget crosses 50, 80 and 100%."""
    budgets_webhook_format: Literal["json", "slack"] = "json"
    """OBSERVABILITY__BUDGETS_WEBHOOK_FORMAT: ``json`` (ccproxy's fields) or ``slack`` (``{"text": ...}``)."""


class SecuritySettings(BaseModel):
    """Access to ccproxy's own endpoints."""

    auth_token: SecretStr | None = None
    """SECURITY__AUTH_TOKEN: when set, /logs, /dashboard and /metrics need ``Authorization: Bearer <token>``."""


class CorsSettings(BaseModel):
    """Which web pages may call the proxied provider APIs from a browser."""

    allowed_origins: Annotated[list[str], NoDecode] = []
    """CORS__ALLOWED_ORIGINS: origins (``https://app.example``) whose browser preflights to the
    provider routes are allowed, comma separated; ``*`` allows any. Empty (the default): none."""

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin: use scheme://host[:port] or *")
        return value


class LoggingSettings(BaseModel):
    """ccproxy's own log lines."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """LOGGING__LEVEL."""
    format: Literal["text", "json"] = "text"
    """LOGGING__FORMAT: text for people, json for log shippers."""
    access_log: bool = True
    """LOGGING__ACCESS_LOG: one line per proxied request."""

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class PluginSettings(BaseModel):
    """Which plugins load."""

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


_BUDGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BUDGET_SCOPE_KINDS = ("project", "api_key", "session", "model")


class BudgetSettings(BaseModel):
    """One ``[[budgets]]`` table of the config file: a spending limit over a calendar period."""

    name: str
    """Letters, digits, ``_ . -``; shown in headers, metrics and notices."""
    scope: str = "all"
    """``all``, or ``project:<name>``, ``api_key:<id>``, ``session:<id>``, ``model:<name>``."""
    period: Literal["day", "week", "month"] = "day"
    """The calendar period the limit applies to; weeks start on Monday."""
    timezone: str = "UTC"
    """IANA time zone in which periods start and end (``Europe/Paris``)."""
    limit_usd: float = Field(gt=0)
    """US dollars per period."""
    action: Literal["block", "warn"] = "block"
    """``block``: refuse requests once spent; ``warn``: let them through with a header, a log line and a metric."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _BUDGET_NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        kind, _, target = value.partition(":")
        if value != "all" and (kind not in BUDGET_SCOPE_KINDS or not target):
            raise ValueError("must be all, project:<name>, api_key:<id>, session:<id> or model:<name>")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Paris") from None
        return value

    @field_validator("limit_usd")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of dollars")
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
    observability: ObservabilitySettings = ObservabilitySettings()
    security: SecuritySettings = SecuritySettings()
    cors: CorsSettings = CorsSettings()
    logging: LoggingSettings = LoggingSettings()
    plugins: PluginSettings = PluginSettings()
    budgets: list[BudgetSettings] = []
    """``[[budgets]]`` tables of the config file (or BUDGETS as a JSON list); enforced with OBSERVABILITY__BUDGETS_ENABLED."""

    @field_validator("budgets")
    @classmethod
    def _unique_budget_names(cls, value: list[BudgetSettings]) -> list[BudgetSettings]:
        names = [budget.name for budget in value]
        if len(names) != len(set(names)):
            raise ValueError("every budget needs a name of its own")
        return value

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
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)
