"""The ClickHouse store's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import SecretStr, field_serializer, field_validator

from ccproxy_core.plugin_host.log_store import LogCollectionSettings
from ccproxy_core.safe_values import redact_secrets


class ClickHouseSettings(LogCollectionSettings):
    """Storing every access record in ClickHouse, one server or a cluster."""

    clickhouse_url: SecretStr | None = None
    """OBSERVABILITY__CLICKHOUSE_URL: ``clickhouse://[user:password@]host:port/database`` (native protocol)."""
    clickhouse_cluster: str | None = None
    """OBSERVABILITY__CLICKHOUSE_CLUSTER: a cluster of the server's remote_servers; read and write through a Distributed table."""

    @field_validator("clickhouse_cluster")
    @classmethod
    def _cluster_name(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not value.strip().replace("_", "").replace("-", "").isalnum():
            raise ValueError("must be a cluster name of the server's remote_servers: letters, digits, _ and -")
        return value.strip() or None if value is not None else None

    @field_serializer("clickhouse_url", when_used="json")
    def _masked_clickhouse_url(self, value: SecretStr | None) -> str | None:
        # config show tells where the store is, never its password.
        return redact_secrets(value.get_secret_value()) if value is not None else None
