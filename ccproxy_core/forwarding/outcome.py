"""The one place where the outcome of an exchange is decided: status, error type, error message.

Everything observed about an exchange goes in (how the transport ended, the provider's
status, what its body or stream said) and one :class:`Outcome` comes out, which the record
is built from. The order of the rules is the order of precedence:

1. ccproxy answered itself or the transport failed (``failure``): its type, and its status
   when ccproxy chose one (413, 502, 504, 499), else the status the client already got.
2. The provider answered with an error status: the type and message of its error body,
   else ``http_<status>``.
3. A stream that carried the provider's error event after HTTP 200: that error; the status
   stays what the client saw.
4. A stream that carried bytes that are not UTF-8, or an event of interest that is not JSON:
   ``upstream_invalid_stream``. Else, a stream that ended without the provider's terminal event:
   ``upstream_stream_incomplete``.
5. A compressed answer that ended inside a zstd frame, which the SDKs refuse at its end:
   ``upstream_invalid_encoding`` (its usage still counts: the provider sent it).
6. An answer labelled JSON that is not JSON, or an answer that is not JSON where the route answers
   only JSON (a web page anywhere metered): ``upstream_invalid_json``.
7. A whole answer that says itself it failed after HTTP 200 (a ``failed`` or ``incomplete``
   Responses API object): that error.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccproxy_core.accounting.usage import Usage

_CUT_MID_FRAME = (
    "the answer ends inside a zstd frame of its content-encoding; the SDKs refuse it (Zstandard data is incomplete)"
)


@dataclass(frozen=True, slots=True)
class Failure:
    """Something that went wrong outside the provider's own answer (noted by the proxy)."""

    error_type: str
    message: str
    status: int | None = None
    """The status ccproxy answers with; ``None`` when the client already had the provider's."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class Observed:
    """What the proxy saw of one exchange, as the decision's input."""

    client_status: int
    """The status sent (or to be sent) to the client."""
    upstream_status: int | None
    usage: Usage
    failure: Failure | None = None
    streamed: bool = False
    """The answer was a server-sent-event stream."""
    stream_error: bool = False
    stream_terminated: bool = False
    stream_unreadable: bool = False
    invalid_json: bool = False
    cut_mid_frame: bool = False


def decide(observed: Observed) -> Outcome:
    """The outcome of an exchange; see the module docstring for the rules."""
    failure, usage = observed.failure, observed.usage
    if failure is not None:
        status = failure.status if failure.status is not None else observed.client_status
        return Outcome(status, failure.error_type, failure.message)
    status = observed.client_status
    upstream = observed.upstream_status
    if upstream is not None and upstream >= 400:
        message = usage.error_message or f"the provider answered HTTP {upstream} without an error message to read"
        return Outcome(status, usage.error_type or f"http_{upstream}", message)
    if observed.streamed:
        if observed.stream_error or usage.error_type:
            return Outcome(status, usage.error_type or "stream_error", usage.error_message or "")
        if observed.stream_unreadable:
            return Outcome(
                status,
                "upstream_invalid_stream",
                "the stream carried bytes that are not UTF-8 or an event that is not JSON",
            )
        if not observed.stream_terminated:
            return Outcome(
                status, "upstream_stream_incomplete", "the stream ended before the provider's end-of-answer event"
            )
    if observed.cut_mid_frame:
        return Outcome(status, "upstream_invalid_encoding", _CUT_MID_FRAME)
    if observed.invalid_json:
        return Outcome(status, "upstream_invalid_json", "the provider answered with a body that is not valid JSON")
    if usage.failed:
        return Outcome(status, usage.error_type or "response_failed", usage.error_message or "")
    return Outcome(status, None, None)
