"""GenAI semantic-convention attributes of one access record.

Every value comes from the record, which never holds a secret; request and response
headers, bodies, paths, queries, client addresses and error messages are never exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.runtime.settings import UpstreamSettings

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
"""Older name of the provider attribute, still read by many back ends."""
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
FINISH_REASONS = "gen_ai.response.finish_reasons"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
HTTP_STATUS = "http.response.status_code"
REQUEST_ID = "ccproxy.request_id"
CLIENT_STATUS = "ccproxy.status_code"
COST_USD = "ccproxy.cost_usd"

# Operations of the GenAI conventions; other routes are named by their template.
OPERATIONS = {
    "/v1/messages": "chat",
    "/v1/chat/completions": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}


@dataclass(frozen=True, slots=True)
class Server:
    """Where a provider's requests go, as ``server.address`` and ``server.port``."""

    address: str
    port: int


def provider_servers(upstream: UpstreamSettings) -> dict[str, Server]:
    """Each provider's upstream host and port (never the URL's user or password)."""
    servers = {}
    for service_type, url in (("anthropic", upstream.anthropic_base_url), ("openai", upstream.openai_base_url)):
        parts = urlsplit(url)
        if parts.hostname:
            servers[service_type] = Server(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    return servers


def operation_name(record: AccessRecord) -> str:
    return OPERATIONS.get(record.endpoint, record.endpoint)


def span_name(record: AccessRecord) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, as the conventions ask."""
    operation = operation_name(record)
    return f"{operation} {record.model}" if record.model else operation


def error_type(record: AccessRecord) -> str | None:
    """The provider's or ccproxy's error type; ``http_<status>``, as the record's own, when a failed answer has none."""
    if record.error_type:
        return record.error_type
    return f"http_{record.status_code}" if record.status_code >= 400 else None


def input_tokens(record: AccessRecord) -> int | None:
    """All prompt tokens, cached ones included, as the conventions count them (the record excludes the cache)."""
    parts = (record.tokens_input, record.cache_read_tokens, record.cache_write_tokens)
    return None if all(part is None for part in parts) else sum(part or 0 for part in parts)


def common_attributes(record: AccessRecord, server: Server | None) -> dict[str, str | int]:
    """The attributes spans and metrics share."""
    attributes: dict[str, str | int] = {
        OPERATION_NAME: operation_name(record),
        PROVIDER_NAME: record.service_type,
    }
    if record.model:
        attributes[REQUEST_MODEL] = record.model
    if record.response_model:
        attributes[RESPONSE_MODEL] = record.response_model
    if server is not None:
        attributes[SERVER_ADDRESS] = server.address
        attributes[SERVER_PORT] = server.port
    return attributes


SpanValue = str | int | float | bool | tuple[str, ...]


def span_attributes(record: AccessRecord, server: Server | None) -> dict[str, SpanValue]:
    """Every attribute of the request's span."""
    attributes: dict[str, SpanValue] = dict(common_attributes(record, server))
    attributes[SYSTEM] = record.service_type
    attributes[REQUEST_STREAM] = record.streaming
    # The span is the call to the provider: its status is the provider's, absent when none answered; the
    # client's (499 for one that left, 502 for a broken answer) is ccproxy's own attribute.
    if record.upstream_status is not None:
        attributes[HTTP_STATUS] = record.upstream_status
    attributes[CLIENT_STATUS] = record.status_code
    attributes[REQUEST_ID] = record.request_id
    optional: dict[str, SpanValue | None] = {
        FINISH_REASONS: (record.finish_reason,) if record.finish_reason else None,
        INPUT_TOKENS: input_tokens(record),
        OUTPUT_TOKENS: record.tokens_output,
        CACHE_READ_TOKENS: record.cache_read_tokens,
        CACHE_WRITE_TOKENS: record.cache_write_tokens,
        TIME_TO_FIRST_CHUNK: record.ttft_ms / 1000 if record.ttft_ms is not None else None,
        COST_USD: float(record.cost_usd) if record.cost_usd is not None else None,
        ERROR_TYPE: error_type(record),
    }
    attributes.update({name: value for name, value in optional.items() if value is not None})
    return attributes


def unix_nanos(moment: datetime) -> int:
    """A timezone-aware time as integer nanoseconds since the epoch, without float rounding."""
    whole_seconds = int(moment.timestamp() // 1)
    return whole_seconds * 1_000_000_000 + moment.microsecond * 1_000
