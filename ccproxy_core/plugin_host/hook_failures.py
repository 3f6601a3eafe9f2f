"""The failures of plugins' request hooks: each counted, their log lines rate limited by kind of failure."""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter

from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

log = logging.getLogger("ccproxy.plugins")

MAX_KINDS = 16
"""Kinds of failure given lines of their own per plugin and hook; any more share one rate limit."""
_OTHER_KINDS = "other failures"
_PLACEHOLDER = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdfr]")


class HookFailures:
    """The failures of one plugin's implementation of one request hook.

    A plugin that fails on every request would otherwise write a traceback per request, so the
    lines of each kind of failure (an exception's type and the line that raised it, or what the
    plugin did wrong) are rate limited apart: the first of each kind is always logged. The count
    in ``hook_errors`` (and ``ccproxy_plugin_errors_total``) stays exact.
    """

    __slots__ = ("plugin", "hook", "_errors", "_logs", "_extra")

    def __init__(self, plugin: str, hook: str, errors: Counter[tuple[str, str]]) -> None:
        self.plugin, self.hook, self._errors = plugin, hook, errors
        self._logs: dict[str, RateLimitedLog] = {}
        self._extra = {"plugin": plugin, "hook": hook}

    def raised(self) -> None:
        """Count and log the exception being handled (call it only from an ``except`` block).

        Never raises: the exception is the plugin's, and formatting it may run the plugin's code.
        """
        self._errors[(self.plugin, self.hook)] += 1
        try:
            self._log_of(_raised_kind()).log(
                "plugin %s raised in %s", self.plugin, self.hook, exc_info=True, extra=self._extra
            )
        except BaseException:  # noqa: BLE001, S110 - the failure is counted; a line it cannot give is no new one
            pass

    def misbehaved(self, what: str, *args: object) -> None:
        """Count and log a failure that raised nothing: ``what % args`` says what the plugin did."""
        self._errors[(self.plugin, self.hook)] += 1
        self._log_of(_PLACEHOLDER.sub("…", what)).log(f"plugin %s: {what}", self.plugin, *args, extra=self._extra)

    def report_held_back(self) -> None:
        """Log, kind by kind, the failures counted but not logged one by one (no later line will say)."""
        for kind, kind_log in self._logs.items():
            kind_log.log_held_back("plugin %s failed in %s: %s", self.plugin, self.hook, kind, now_or_never=True)

    def _log_of(self, kind: str) -> RateLimitedLog:
        found = self._logs.get(kind)
        if found is None:
            if len(self._logs) >= MAX_KINDS:
                kind = _OTHER_KINDS
                found = self._logs.get(kind)
            if found is None:
                found = self._logs[kind] = RateLimitedLog(log, level=logging.ERROR)
        return found


def _raised_kind() -> str:
    """The exception being handled, by its type and the place it was raised; read without running its code."""
    kind, _, trace = sys.exc_info()
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    place = f"{trace.tb_frame.f_code.co_filename}:{trace.tb_lineno}" if trace is not None else "an unknown place"
    return f"{type.__dict__['__qualname__'].__get__(kind)} at {place}"
