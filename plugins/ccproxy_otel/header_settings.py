"""The exporters' header variables, checked before the SDK reads them.

The SDK logs a header list it cannot parse whole, the collector's API key with it, and exports
without it. ccproxy refuses such a list at start-up instead, without showing its value.
"""

from __future__ import annotations

import os
import re

from ccproxy_core.errors import StartupError

HEADER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
)
# A header name (an HTTP token), "=", then a value of printable ASCII without "," ";" or "\": the
# OpenTelemetry exporter specification's form, spaces in values allowed as the SDK allows them.
_NAME_VALUE = re.compile(r"[ \t]*[!#-'*+\-.0-9A-Z^-z|~]+[ \t]*=[ !#-+\--:<-\[\]-~]*")


def check_header_variables() -> None:
    """Raise ``StartupError`` naming the first header variable that is not a ``name=value,...`` list."""
    for name in HEADER_VARIABLES:
        value = os.environ.get(name)
        if value and not all(_NAME_VALUE.fullmatch(item) for item in value.split(",") if item.strip()):
            raise StartupError(
                f"{name} is not a comma-separated list of name=value pairs (as in "
                "x-honeycomb-team=YOUR_KEY,x-other=value, values URL-encoded); its value is not shown"
            )
