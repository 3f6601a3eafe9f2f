"""The GenAI client metrics of the semantic conventions: token usage and operation duration."""

from __future__ import annotations

from opentelemetry.metrics import Meter

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_otel.attributes import ERROR_TYPE, Server, common_attributes, error_type, input_tokens

# The bucket boundaries the conventions advise for these two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_TYPE = "gen_ai.token.type"


class GenAIMetrics:
    """``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def record(self, record: AccessRecord, server: Server | None) -> None:
        """Add one finished request (cheap: the SDK aggregates in memory; a reader thread exports)."""
        attributes = common_attributes(record, server)
        failure = error_type(record)
        self.operation_duration.record(
            record.duration_seconds, {**attributes, ERROR_TYPE: failure} if failure else attributes
        )
        prompt = input_tokens(record)
        if prompt is not None:
            self.token_usage.record(prompt, {**attributes, TOKEN_TYPE: "input"})
        if record.tokens_output is not None:
            self.token_usage.record(record.tokens_output, {**attributes, TOKEN_TYPE: "output"})
