"""Usage and outcome of OpenAI's Responses API and Realtime API, from bodies, SSE and WebSocket events.

Responses API (``POST /v1/responses``; the same events arrive over its WebSocket)
    A response object has ``model``, ``status`` (``completed``, ``failed``, ``incomplete``,
    ``in_progress``, ``cancelled``), ``error`` (``{code, message}``), ``incomplete_details``
    (``{reason}``) and ``usage``: ``input_tokens`` (cached ones included),
    ``input_tokens_details.cached_tokens``, ``output_tokens`` (reasoning included) and
    ``output_tokens_details.reasoning_tokens``; ``service_tier`` is the tier that served it;
    each ``file_search_call`` item of its ``output`` is billed per call, and each ``web_search_call``
    whose ``action`` is a ``search`` (``open_page`` and ``find_in_page`` are free), at a higher price
    when the tool offered was ``web_search_preview`` and the model does not reason; a
    ``code_interpreter_call`` or ``image_generation_call`` leaves the cost unknown. A
    stream is a sequence of ``response.*`` events; ``response.created`` carries the response
    without usage, and exactly one of ``response.completed``, ``response.failed`` or
    ``response.incomplete`` ends it with the final response. A stream-level failure is an ``error`` event (``code``, ``message``).

Realtime API (``/v1/realtime`` WebSocket)
    Each answer ends with ``response.done`` whose ``response.usage`` has ``input_tokens``,
    ``output_tokens`` and ``input_token_details.cached_tokens``; ``response.status`` is
    ``completed``, ``cancelled``, ``failed`` or ``incomplete``.

Counts are moved to ccproxy's convention (``input_tokens`` excludes cache reads) by the
shared OpenAI usage reader. A failed or incomplete response is an error of the exchange
even though its HTTP status was 200.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.sse_parser import DONE_LINE, iter_data_fields, search_data_lines
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers.base import (
    StreamReader,
    StreamState,
    decode_event,
    read_error,
    read_label,
    read_model,
    spells_with_escapes,
)
from ccproxy_core.providers.openai import read_usage, require_output_count
from ccproxy_core.safe_values import safe_text

RESPONSE_TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})
REALTIME_TERMINAL_EVENTS = frozenset({"response.done"})
_EVENTS_OF_INTEREST = re.compile(rb'"(?:response\.(?:created|completed|failed|incomplete|done)|error)"')
# Any output delta with content is a first token: text, refusal, reasoning, a tool's input, audio.
_FIRST_TOKEN = re.compile(rb'"type"\s*:\s*"response\.[a-z_.]+\.delta"')
_DELTA_CONTENT = re.compile(rb'"delta"\s*:\s*"[^"]')
_BILLED_TOOL_CALLS = {"web_search_call": "web_search_requests", "file_search_call": "file_search_requests"}
# Billed per container (code interpreter) or per image (image generation), neither shown in the usage.
_UNPRICED_TOOL_CALLS = frozenset({"code_interpreter_call", "image_generation_call"})
PREVIEW_SEARCH_KCOUNT_WITHOUT_REASONING = Decimal(25)
"""USD per thousand calls of the ``web_search_preview`` tool by a model without reasoning (gpt-4o, gpt-4.1);
$10 with reasoning, and for the ``web_search`` tool on any model (OpenAI's pricing page, built-in tools)."""
MAX_TOOLS_READ = 128
MAX_OUTPUT_ITEMS_COUNTED = 10_000
MAX_RESPONSE_ID_CHARS = 128
_FAILED_STATUSES = {"failed": "response_failed", "incomplete": "response_incomplete"}
# A cancelled response ended because its client asked (a cancel call, a Realtime client speaking over it): no error.
_FINAL_STATUSES = frozenset({"completed", "cancelled", *_FAILED_STATUSES})


def read_response_object(usage: Usage, payload: dict[str, Any], finished: bool = True) -> None:
    """A whole response object (``POST /v1/responses`` body, or the ``response`` of an event);
    ``finished`` when nothing more of it will come (a whole body, a terminal event's)."""
    read_model(usage, payload.get("model"))
    read_usage(usage, payload.get("usage"))
    require_output_count(usage, payload.get("usage"))
    # The tier that served it ("default", "flex", "priority"), which sets the price, is only
    # known once the response is finished: before, it echoes the request's ("auto", "priority"),
    # and a stream cut before its end must not record a tier nothing was served at. An object without a
    # status (a compaction, ``response.compaction``, has none) is finished when it comes whole.
    status = payload.get("status")
    if _text(status) in _FINAL_STATUSES or (status is None and "status" not in payload and finished):
        usage.service_tier = read_label(payload.get("service_tier"))
    response_id = payload.get("id")
    if isinstance(response_id, str) and 0 < len(response_id) <= MAX_RESPONSE_ID_CHARS:
        usage.response_id = response_id
    usage.response_status = read_label(payload.get("status")) or usage.response_status
    usage.finish_reason = _finish_reason(payload) or usage.finish_reason
    usage.background = usage.background or payload.get("background") is True
    _read_status(usage, payload)
    _count_tool_calls(usage, payload.get("output"))
    if usage.web_search_requests and _searched_with_preview_tool_without_reasoning(payload):
        usage.web_search_kcount = PREVIEW_SEARCH_KCOUNT_WITHOUT_REASONING


def _finish_reason(payload: dict[str, Any]) -> str | None:
    """Why a finished response ended: its ``incomplete_details.reason`` (Realtime: ``status_details.reason``),
    else its final ``status``."""
    status = _text(payload.get("status"))
    if status not in _FINAL_STATUSES:
        return None
    details = payload.get("incomplete_details") or payload.get("status_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return read_label(reason) or read_label(status)


def _count_tool_calls(usage: Usage, output: Any) -> None:
    """Built-in tool calls billed per call (web search, file search), from the output items."""
    if not isinstance(output, list) or not output:
        return
    counts = dict.fromkeys(_BILLED_TOOL_CALLS.values(), 0)
    for item in output[:MAX_OUTPUT_ITEMS_COUNTED]:
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(kind, str):
            continue
        field = _BILLED_TOOL_CALLS.get(kind)
        if field is not None and _is_billed_call(item):
            counts[field] += 1
        elif kind in _UNPRICED_TOOL_CALLS:
            usage.unpriced_charge = kind
    for field, count in counts.items():
        if count:
            setattr(usage, field, count)


def _is_billed_call(item: dict[str, Any]) -> bool:
    """A web search call is billed when its action is a search; opening a page or finding in it is free
    (OpenAI's web search guide, "Output and citations"). A call without an action is taken as a search."""
    if item["type"] != "web_search_call":
        return True
    action = item.get("action")
    return not isinstance(action, dict) or action.get("type") in (None, "search")


def _searched_with_preview_tool_without_reasoning(payload: dict[str, Any]) -> bool:
    """The response offered ``web_search_preview`` (its ``tools`` echo the request's) and says its model
    does not reason (``reasoning.effort`` null)."""
    reasoning = payload.get("reasoning")
    if not isinstance(reasoning, dict) or reasoning.get("effort") is not None:
        return False
    tools = payload.get("tools")
    if not isinstance(tools, list):
        return False
    kinds = [tool.get("type") for tool in tools[:MAX_TOOLS_READ] if isinstance(tool, dict)]
    return any(isinstance(kind, str) and kind.startswith("web_search_preview") for kind in kinds)


def read_response_event(usage: Usage, event: dict[str, Any]) -> bool:
    """One Responses or Realtime server event; True when it ends an answer."""
    kind = event.get("type")
    wrapped = event.get("error")
    if kind == "error" or (kind is None and wrapped):
        # A stream-level error: the event itself is the error object (``code``, ``message``), or
        # wraps one under ``error`` (Realtime); an untyped ``{"error": ...}``, as the SDKs read it.
        read_error(usage, wrapped if wrapped else _as_error(event), prefer_code=True)
        usage.error_type = usage.error_type or "stream_error"
        usage.failed = True
        return True
    kind = _text(kind)
    terminal = kind in RESPONSE_TERMINAL_EVENTS or kind in REALTIME_TERMINAL_EVENTS
    response = event.get("response")
    if isinstance(response, dict) and kind is not None and kind.startswith("response."):
        read_response_object(usage, response, finished=terminal)
    return terminal


def read_response_body(usage: Usage, payload: dict[str, Any]) -> None:
    """A JSON body of a Responses route: the response object, or the usual error body."""
    if "error" in payload and payload.get("object") != "response":
        read_error(usage, payload.get("error"), prefer_code=True)
        return
    read_response_object(usage, payload)


class ResponsesStreamReader(StreamReader):
    """Decodes only the events that carry the model, the usage or an error; the first
    ``*.delta`` of output is the first token; the terminal event ends the stream."""

    __slots__ = ()

    def read_block(self, usage: Usage, state: StreamState, block: bytes) -> None:
        if b"[DONE]" in block and (done := DONE_LINE.search(block)) is not None:
            state.over = True  # the openai SDK stops at it on every stream: what follows never reaches the client
            block = block[: done.start() + done[0].startswith(b"\n")]  # the lines before it
        if not state.first_token_seen and search_data_lines(_FIRST_TOKEN, block) and _DELTA_CONTENT.search(block):
            state.first_token_seen = True
        if _EVENTS_OF_INTEREST.search(block) is None and not spells_with_escapes(block):
            return
        for data in iter_data_fields(block):
            if _EVENTS_OF_INTEREST.search(data) is not None or spells_with_escapes(data):
                event = decode_event(usage, state, data)
                if isinstance(event, dict) and read_response_event(usage, event):
                    state.terminal_seen = True
                    state.error_seen = state.error_seen or usage.failed
                    if event.get("type") != "error":  # the answer's end (an error event may precede it)
                        state.over = True
                        return


def _read_status(usage: Usage, payload: dict[str, Any]) -> None:
    status = _text(payload.get("status"))
    if status is None or status not in _FAILED_STATUSES:
        return
    error, details = payload.get("error"), payload.get("incomplete_details") or payload.get("status_details")
    if status == "incomplete" and isinstance(details, dict) and details.get("reason") == "steered":
        return  # stopped at its client's word, to go on in a successor: as a cancelled one, no error
    usage.failed = True
    if not isinstance(error, dict) and isinstance(details, dict):
        error = details.get("error")  # Realtime: a failed response gives its cause in its status details
    if isinstance(error, dict):
        read_error(usage, error, prefer_code=True)
    if usage.error_type is None:
        usage.error_type = _FAILED_STATUSES[status]
    if usage.error_message is None:
        reason = details.get("reason") if isinstance(details, dict) else None
        message = f"response {status}" + (f": {reason}" if isinstance(reason, str) else "")
        usage.error_message = safe_text(message, 200)  # its ellipsis tells the masking a URL may run on past the cut


def _as_error(event: dict[str, Any]) -> dict[str, Any]:
    return {"code": event.get("code"), "message": event.get("message"), "type": event.get("error_type")}


def _text(value: Any) -> str | None:
    """``value`` when it is text: a provider may send a list or an object where a label belongs."""
    return value if isinstance(value, str) else None
