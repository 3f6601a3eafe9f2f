"""One access-log line per proxied request, readable or JSON (LOGGING__FORMAT)."""

from __future__ import annotations

import logging

from ccproxy_core.accounting.record import AccessRecord

access_logger = logging.getLogger("ccproxy.access")


class AccessLogger:
    """Writes the access line of each record. Records hold no secrets, so nothing needs masking here."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def emit(self, record: AccessRecord) -> None:
        if not self.enabled or not access_logger.isEnabledFor(logging.INFO):
            return
        # Under `ccproxy serve` the line is built and written by the log-line thread; an app
        # embedded elsewhere logs it through the logging module as usual.
        from ccproxy_core.runtime.logging_setup import queue_access_line

        if not queue_access_line(record):
            access_logger.info(describe(record), extra={"access": record})


def describe(record: AccessRecord) -> str:
    """``POST /v1/messages 200 claude-sonnet-4-5 812ms in=12 out=40 cache_r=0 cache_w=0 $0.000636 id=...``"""
    cost = "-" if record.cost_usd is None else f"${record.cost_usd:.6f}"
    error = f" error={record.error_type}" if record.error_type else ""
    stream = " stream" if record.streaming else ""
    return (
        f"{record.method} {record.path} {record.status_code} {record.model or '-'}{stream} "
        f"{record.duration_ms:.0f}ms in={_count(record.tokens_input)} out={_count(record.tokens_output)} "
        f"cache_r={_count(record.cache_read_tokens)} cache_w={_count(record.cache_write_tokens)} {cost}{error} "
        f"id={record.request_id}"
    )


def _count(tokens: int | None) -> int | str:
    """A count the answer did not give is ``-``, as an unknown cost is."""
    return "-" if tokens is None else tokens
