"""Token usage, response model and provider error, read from a response as it passes through.

The readers themselves belong to the providers (``ccproxy_core/providers/``); this module
holds what they fill in (:class:`Usage`) and the two entry points the proxy uses: one for
a whole JSON body, one for a server-sent-event stream fed chunk by chunk.

Counts follow Anthropic's convention everywhere: ``input_tokens`` excludes cache reads
and writes (the OpenAI reader moves ``cached_tokens`` out of ``prompt_tokens``).

Nothing here raises on bad input: a body that is not JSON, or JSON of an unexpected
shape, gives an empty ``Usage``; an unknown service type reads nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.sse_json import holds_undecodable_data, may_hold_undecodable_data
from ccproxy_core.accounting.sse_parser import DONE_LINE, DataJoiner, OpenEventName, SSELineSplitter
from ccproxy_core.json_text import decode_json


@dataclass(slots=True)
class Usage:
    """What a response said about its cost and outcome; ``None`` where it said nothing."""

    input_tokens: int | None = None
    """Input tokens not read from or written to the cache (Anthropic's convention)."""
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    response_model: str | None = None
    """The model name the provider reports having used."""
    error_type: str | None = None
    """The provider's error type from an error body or event, e.g. ``"rate_limit_error"``."""
    error_message: str | None = None
    cache_write_1h_tokens: int | None = None
    """Of ``cache_write_tokens``, those written with the longer lifetime, billed higher than the
    default writes: Anthropic's one-hour writes, OpenAI's 12-hour ones."""
    reasoning_tokens: int | None = None
    """Of ``output_tokens``, those spent reasoning (OpenAI reports them; they are billed as output)."""
    web_search_requests: int | None = None
    """Server-side web searches the provider ran for this answer (billed per search)."""
    file_search_requests: int | None = None
    """Searches of the provider's file stores for this answer (OpenAI's file search, billed per call)."""
    web_search_kcount: Decimal | None = None
    """The price per thousand of this answer's web searches when the answer selects one the price list
    lacks (OpenAI's ``web_search_preview`` tool on a model without reasoning)."""
    unpriced_charge: str | None = None
    """A charge the answer shows and no price list gives (OpenAI's ``code_interpreter_call``, billed per
    container, or ``image_generation_call``, per image): the answer's cost cannot be known."""
    service_tier: str | None = None
    """The tier the provider says it served the answer at (``priority``, ``flex``, ``standard``, ...)."""
    speed: str | None = None
    """Anthropic's ``usage.speed`` (``fast`` in fast mode)."""
    inference_geo: str | None = None
    """Anthropic's ``usage.inference_geo``: ``us`` when the answer was kept to US-only inference."""
    steps: tuple[Usage, ...] | None = None
    """The sampling steps of one answer that the provider bills one by one (Anthropic's
    compaction: ``usage.iterations``); the counts above are then their sums."""
    audio_seconds: Decimal | None = None
    """The length of audio an answer is billed by, in seconds, where it counts no tokens (OpenAI's
    transcriptions by ``whisper-1``: ``usage: {"type": "duration", "seconds": ...}``)."""
    audio_input_tokens: int = 0
    """Of ``input_tokens``, audio ones (OpenAI's audio and Realtime models bill them higher)."""
    audio_cache_read_tokens: int = 0
    """Of ``cache_read_tokens``, audio ones."""
    audio_output_tokens: int = 0
    """Of ``output_tokens``, audio ones."""
    image_input_tokens: int = 0
    """Of ``input_tokens``, image ones (OpenAI's image models bill them at their own rate)."""
    image_cache_read_tokens: int = 0
    """Of ``cache_read_tokens``, image ones."""
    image_output_tokens: int = 0
    """Of ``output_tokens``, image ones."""
    finish_reason: str | None = None
    """Why the answer ended, in the provider's words: Anthropic's ``stop_reason``, OpenAI's
    ``finish_reason`` (of the first choice), a Responses object's incomplete reason or final status."""
    response_id: str | None = None
    """The id of a Responses API object (``resp_...``), for background responses."""
    response_status: str | None = None
    """Its ``status`` (``queued``, ``in_progress``, ``completed``, ...)."""
    background: bool = False
    """It runs in the background: its usage comes later, on retrieval."""
    counted_elsewhere: bool = False
    """The answer shows usage this record does not count, which may or may not have been counted
    elsewhere (a background response finished, started through another process): its cost is
    unknown, not 0."""
    tier_input_tokens: int | None = None
    """The input size that selects a tiered price, when it is not this usage's own: a sum of
    batch results, each priced by its own size."""
    bad_counts: bool = False
    """The answer gave a token count that is not a whole number >= 0: its cost cannot be known."""
    failed: bool = False
    """The answer itself says it failed (a failed or incomplete Responses object, an error
    event), whatever its HTTP status."""
    batch: Any = None
    """Finished batch requests read from batch results (``batch_results.BatchUsage``),
    priced per model at the batch rate."""

    @property
    def has_tokens(self) -> bool:
        """True when the answer reported its input token count, so its cost can be known.

        An answer that reports its output alone (``input_tokens: null``) was still billed for its
        prompt: pricing the output alone would give a cost the invoice does not show. An answer
        without output tokens (embeddings) is whole with its input count.
        """
        return self.input_tokens is not None

    @property
    def has_measure(self) -> bool:
        """True when the answer reported what it is billed by: its input tokens, or its audio's length."""
        return self.input_tokens is not None or self.audio_seconds is not None


NO_USAGE_READERS = frozenset({"none", "free", "batch_results"})
"""Route readers (``ProxyRoute.reader``) whose JSON bodies are read for errors only."""


def usage_from_json(service_type: str, body: bytes, reader: str = "usage") -> Usage:
    """Read the usage, model and error of a whole (non-streaming) JSON response body.

    ``reader`` is the route's: a stored object (``none``) may repeat the usage of the call
    that made it, so only its error is read.
    """
    from ccproxy_core.providers import PROVIDERS
    from ccproxy_core.providers.base import read_error, read_model

    usage = Usage()
    provider = PROVIDERS.get(service_type)
    if provider is not None:
        payload = decode_json(body)
        if isinstance(payload, dict):
            if reader in NO_USAGE_READERS:
                read_error(usage, payload.get("error"), prefer_code=service_type == "openai")
                if reader == "free":
                    read_model(usage, payload.get("model"))  # a moderation names the model that judged it
            elif reader in provider.route_readers:
                provider.route_readers[reader][0](usage, payload)
            else:
                provider.read_payload(usage, payload)
            # Sent with status 200 too, by gateways and providers under load: the call failed whatever the route.
            usage.failed = usage.failed or provider.error_envelope(payload)
    return usage


def request_model_and_stream(body: bytes) -> tuple[str | None, bool]:
    """The ``model`` and ``stream`` fields of a request body; ``(None, False)`` if not JSON.

    The whole body is decoded: a key named ``model`` or ``stream`` may also occur deep
    inside a request (in a tool's input), so only the top level can be trusted, and
    decoding it whole is the fastest exact way to reach it.
    """
    return model_and_stream(request_payload(body))


def request_payload(body: bytes | bytearray) -> dict[str, Any] | None:
    """The request body decoded once, when it is a JSON object; other readers (attribution) share it."""
    payload = decode_json(body) if body else None
    if payload is None and body and not _is_utf8(body):
        # Read as the scan of a large body reads it (bad bytes as U+FFFD), so its size never changes its record.
        payload = decode_json(bytes(body).decode("utf-8", "replace"))
    return payload if isinstance(payload, dict) else None


def _is_utf8(data: bytes | bytearray) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_MODEL_IN_OTHER_CASES = frozenset(
    "".join(letter.upper() if mask >> place & 1 else letter for place, letter in enumerate("model"))
    for mask in range(1, 32)
)


def model_and_stream(payload: dict[str, Any] | None) -> tuple[str | None, bool]:
    """The ``model`` and ``stream`` fields of a decoded request body (see :func:`request_model_and_stream`)."""
    if payload is None:
        return None, False
    model = payload.get("model")
    if names_model_in_other_cases(payload):
        model = None  # "MODEL" is the model to Go's decoder, which matches keys in any case: only the body can tell
    return (model if isinstance(model, str) and model else None), payload.get("stream") is True


def names_model_in_other_cases(payload: dict[str, Any] | None) -> bool:
    """Whether a decoded request body has a top-level key ``MODEL``, ``Model`` or the like, which Go's
    decoder reads as ``model`` (``forwarding.large_bodies.model_every_reader_takes`` then decides)."""
    return payload is not None and not _MODEL_IN_OTHER_CASES.isdisjoint(payload)


def _bare_end(lines: bytes) -> bool:
    """Whether the last ``data:`` line of ``lines`` is a whole end that carries nothing for the client:
    ``[DONE]`` or Anthropic's ``message_stop``. An SSE event that no blank line ended is dropped by the
    SDKs (as the specification says); without those two the client loses nothing, but a Responses
    ``response.completed`` (or a media stream's last event) dropped so is an answer the client never got."""
    data = [line for line in lines.split(b"\n") if line.startswith(b"data:")]
    value = data[-1][len(b"data:") :].strip() if data else b""
    if value == b"[DONE]":
        return True
    event = decode_json(value) if value else None
    return isinstance(event, dict) and event.get("type") == "message_stop"


def _is_text(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text."""
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class StreamUsageParser:
    """Reads usage, errors, the first token and the end of an SSE stream while it passes through.

    Feed it every chunk, in order; ask for ``result()`` at any time, including after a
    stream that was cut off. It keeps only the unfinished last line; the provider's
    reader decides which events are worth decoding (never every content delta).
    """

    __slots__ = ("_usage", "_lines", "_reader", "state", "_events", "_names", "_fed", "_ended")

    def __init__(self, service_type: str, reader: str = "usage") -> None:
        from ccproxy_core.providers import PROVIDERS
        from ccproxy_core.providers.base import StreamReader, StreamState

        self._usage = Usage()
        self._lines = SSELineSplitter()
        provider = PROVIDERS.get(service_type)
        if provider is None:
            self._reader: StreamReader = StreamReader()
        elif reader in provider.route_readers:
            self._reader = provider.route_readers[reader][1]()
        else:
            self._reader = provider.stream_reader()
        self.state = StreamState()
        self._events = DataJoiner()
        self._names = OpenEventName()
        self._fed = 0
        self._ended: tuple | None = None

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk, exactly as the provider sent it (decoded if it was compressed).

        Returns True when this chunk brought the first content token.
        """
        self._fed += 1
        if self.state.over:
            return False
        block = self._lines.feed(chunk)
        if not block:
            return False
        name = self._names.carried_into(block)
        # Nearly every chunk is one whole event; others wait for the blank line that ends theirs.
        if self._events.inside_event or not (block.endswith(b"\n\n") and block.count(b"data:") <= 1):
            block = self._events.join(block)
            if not block:
                return False
        if name:
            block = name + block  # the name of the event whose rest this block brings
        if not block.isascii():
            try:
                self._read_by_sdk(block).decode()
            except UnicodeDecodeError:
                self.state.unreadable = True  # SDKs fail on such a stream, whatever usage it carries
        if may_hold_undecodable_data(block) and holds_undecodable_data(block, self._reader):
            self.state.unreadable = True  # the SDKs raise on it, though its usage may still be read
        had_token = self.state.first_token_seen
        self._reader.read_block(self._usage, self.state, block)
        return not had_token and self.state.first_token_seen

    def _read_by_sdk(self, block: bytes) -> bytes:
        """The part of ``block`` the client's SDK decodes: the openai SDK stops at ``data: [DONE]``."""
        if self._reader.sdk_stops_at_done and b"[DONE]" in block and (done := DONE_LINE.search(block)):
            return block[: done.end()]
        return block

    def result(self) -> Usage:
        """The usage seen so far, as a new ``Usage`` the parser will not change later."""
        return copy.copy(self._ending()[0])

    def final_state(self):  # StreamState, imported lazily
        """The stream state including an unfinished last event or line (a ``[DONE]`` without its line end counts)."""
        return copy.copy(self._ending()[1])

    def _ending(self):  # (Usage, StreamState)
        """Usage and state as if the stream ended now: what was fed but not read (an unfinished last
        event or line) is read into copies, once for each point in the stream however often asked,
        so feeding may go on as if unasked; a piece cut short is not held against the usage."""
        if self._ended is not None and self._ended[0] == self._fed:
            return self._ended[1:]
        usage, state, reader = copy.copy(self._usage), copy.copy(self.state), copy.copy(self._reader)
        # After the end, an event no blank line ended reaches no client: the SDKs drop it, as the SSE specification says.
        leftover = b"" if self.state.over or self.state.ended else self._leftover()
        if self.state.ended and not self.state.over and not _is_text(self._leftover()):
            state.unreadable = True  # Anthropic's SDKs still decode its lines as UTF-8 text, and raise
        if leftover:
            leftover = self._names.line + leftover
            reader.read_block(usage, state, leftover)
            usage.bad_counts, state.unreadable = self._usage.bad_counts, self.state.unreadable
            if state.terminal_seen and not self.state.terminal_seen and not _bare_end(leftover):
                state.terminal_seen = False  # a last event without its blank line never reached the client
        reader.read_end(usage, state)
        self._ended = (self._fed, usage, state)
        return usage, state

    @property
    def lost(self) -> bool:
        """Whether a line or event too large to hold was skipped: what the stream said is not known.
        One the stream stopped inside is no loss: unended, it reached no client either."""
        return self._lines.dropped_ended_lines > 0 or self._events.dropped_ended_events > 0 or self.state.skipped

    def _leftover(self) -> bytes:
        """What was fed but not read: an event no blank line ended, and an unfinished last line."""
        return self._events.leftover(self._lines.tail)
