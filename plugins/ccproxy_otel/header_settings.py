"""The exporters' header variables, checked before the SDK reads them.

The SDK logs a header list it cannot parse whole, the collector's API key with it, and exports
without it. ccproxy reads each list first with the SDK's own parser, its warnings held back,
and refuses one it cannot read at start-up, without showing its value.
"""

from __future__ import annotations

import logging
import os

from opentelemetry.util.re import parse_env_headers

from ccproxy_core.errors import StartupError

HEADER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
)
_SDK_PARSER_LOG = logging.getLogger("opentelemetry.util.re")


class _HeldBack(logging.Filter):
    """Keeps the parser's warnings (which quote the value) out of the log, noting that there were some."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.refused = True
        return False


def check_header_variables() -> None:
    """Raise ``StartupError`` naming the first header variable the SDK cannot read as ``name=value,...``."""
    for name in HEADER_VARIABLES:
        value = os.environ.get(name)
        if value and not _readable(value):
            raise StartupError(
                f"{name} is not a comma-separated list of name=value pairs (as in "
                "x-honeycomb-team=YOUR_KEY,x-other=value, values URL-encoded); its value is not shown"
            )


def _readable(value: str) -> bool:
    held_back, level = _HeldBack(), _SDK_PARSER_LOG.level
    _SDK_PARSER_LOG.addFilter(held_back)
    _SDK_PARSER_LOG.setLevel(logging.WARNING)  # heard whatever LOGGING__LEVEL says
    try:
        parse_env_headers(value, liberal=True)  # as the exporters read it
    finally:
        _SDK_PARSER_LOG.setLevel(level)
        _SDK_PARSER_LOG.removeFilter(held_back)
    return not held_back.refused
