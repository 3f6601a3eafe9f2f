"""Reading the provider's answer on the side, for the record: decoding, usage, and how a stream is parsed.

The client gets the answer's bytes unchanged; these functions only look at them.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from ccproxy_core.accounting.batch_results import BatchResultsParser
from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import NO_USAGE_READERS, StreamUsageParser, usage_from_json
from ccproxy_core.forwarding.billed_once import BilledOnce
from ccproxy_core.forwarding.decoding import DecodingFailed
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.responses import PASS_THROUGH, BodyParser
from ccproxy_core.json_text import load_json, too_costly_to_decode

log = logging.getLogger("ccproxy.proxy")
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
"""Labels of a web page: no provider answers a metered route with one."""
MEDIA_ENDPOINTS = frozenset({"/v1/audio/speech", "/v1/audio/transcriptions", "/v1/audio/translations"})
"""Metered routes whose answers may be audio or text (speech, a transcript as text, SRT or VTT)."""
FILE_CONTENT_ENDPOINT = "/v1/files/{file_id}/content"
"""A file as it was uploaded: the one route where even a web page may be the provider's answer."""
NO_CONTENT = frozenset({204, 205, 304})
"""Statuses whose answers have no body (RFC 9110 15.3.5, 15.3.6, 15.4.5)."""
WHOLE_BODY_BYTES = 64 * 1024
"""Answers up to this size that are not JSON are still read whole; larger ones pass through as they arrive."""
ACCOUNTED_IN_THREAD_BYTES = 1024 * 1024
"""Whole answers larger than this are decoded and read in a worker thread, not on the event loop: a
64 MiB answer would hold every other request for a few hundred ms."""
COMPRESSED_IN_THREAD_BYTES = 1024
"""The same for gzip and deflate answers larger than this (1 KiB of them decodes to 1 MiB at most, a few KB
to 64 MiB); brotli and zstd answers, and codings in a row, are read in a thread whatever their size."""


async def account_whole_answer(exchange: Exchange, upstream: aiohttp.ClientResponse, decoder, payload: bytes) -> None:
    """Usage and outcome of an answer read whole, into ``exchange`` (see :func:`read_whole_answer`)."""
    if exchange.accounting_lost:
        return
    if decoder is None:
        in_thread = len(payload) > ACCOUNTED_IN_THREAD_BYTES
    else:  # only a small body of a coding whose output is bounded by its input is sure to decode quickly
        in_thread = len(payload) > COMPRESSED_IN_THREAD_BYTES or not decoder.expands_boundedly
    if in_thread:
        await asyncio.to_thread(_account, exchange, upstream, decoder, payload)
    else:
        _account(exchange, upstream, decoder, payload)


def _account(exchange: Exchange, upstream: aiohttp.ClientResponse, decoder, payload: bytes) -> None:
    try:
        read_whole_answer(exchange, upstream, decoded_for_accounting(exchange, decoder, payload))
    except Exception:  # a reader's mistake over odd bytes must never cost the client its answer
        log.exception("could not read the answer of request %s for its usage", exchange.context.request_id)
        exchange.accounting_lost = True


def decoded_for_accounting(exchange: Exchange, decoder, payload: bytes) -> bytes:
    """``payload`` decoded for reading usage; past the decoding limit, nothing, and the record says usage was lost."""
    if decoder is None:
        return payload
    try:
        decoded = decoder.decode(payload)
    except DecodingFailed as exc:
        decoded, decoder.over_limit = b"", True
        exchange.note_failure(exc.error_type, exc.describe())
    if decoder.over_limit:
        exchange.accounting_lost = True
    exchange.cut_mid_frame = decoder.cut_mid_frame and not decoder.over_limit  # stopped mid-frame on purpose
    return decoded


def read_whole_answer(exchange: Exchange, upstream: aiohttp.ClientResponse, payload: bytes) -> None:
    """Usage (and whether a JSON answer was not JSON) from an answer read whole, into ``exchange``."""
    if exchange.accounting_lost:
        return
    if too_costly_to_decode(payload):  # passed on as it came; what it says about usage is not read
        exchange.accounting_lost = True
        return
    labelled = exchange.context.streaming or upstream.content_type == "text/event-stream"
    if labelled and upstream.status == 200 and payload.lstrip().startswith(_SSE_FIELDS):
        _read_as_stream(exchange, payload)  # a stream labelled as something else: the SDKs read it as asked
        return
    exchange.usage = usage_from_json(exchange.context.service_type, payload, exchange.reader)
    if 300 <= upstream.status < 400 and upstream.status != 304:  # 304 Not Modified: no redirect
        _note_redirect(exchange, upstream)
        return
    if upstream.status in NO_CONTENT and _answers_a_message(exchange):
        _note_no_content(exchange, upstream)
        return
    expects_json = upstream.content_type == "application/json" or _answers_only_json(exchange, upstream)
    if upstream.status < 400 and expects_json and exchange.usage.response_model is None:
        if not payload:  # no JSON at all: where only JSON answers, no answer of the provider's
            exchange.invalid_json = _answers_only_json(exchange, upstream) and not _nothing_to_say(exchange, upstream)
            return
        valid = _is_json(payload)
        if valid is None:
            exchange.accounting_lost = True
        elif not valid:
            exchange.invalid_json = True


_SSE_FIELDS = (b"event:", b"data:", b"id:", b"retry:", b":")
_GENERIC_TYPES = frozenset({"application/octet-stream", "text/plain"})
"""What an answer without a ``Content-Type`` is taken for, and a plain text one."""


def _unlabelled_stream(exchange: Exchange, upstream: aiohttp.ClientResponse) -> bool:
    """A stream asked for and answered 200, unsized, with no type or a generic one: the SDKs read it as the
    stream it is (a sized one is read whole, and as a stream if it is one)."""
    streamed = exchange.context.streaming and upstream.status == 200 and upstream.content_length is None
    return streamed and upstream.content_type in _GENERIC_TYPES


def _range_from_the_start(upstream: aiohttp.ClientResponse) -> bool:
    """Whether a partial answer (206) is one range that starts at the first byte (``bytes 0-...``)."""
    return upstream.headers.get("content-range", "").strip().lower().startswith("bytes 0-")


def _sized_answer_to_a_whole_request(exchange: Exchange, upstream: aiohttp.ClientResponse) -> bool:
    """An answer labelled a stream, of a known small size, to a request that asked for none: the SDKs read
    it as the JSON they asked for, so it is read whole, and as a stream only if it is one. A larger or unsized
    one passes as it arrives: it may be a stream indeed (one opened by a GET, or sent to a request that asked
    for none), which a client must get as it comes."""
    if exchange.context.streaming or upstream.content_type != "text/event-stream" or upstream.status != 200:
        return False
    length = upstream.content_length
    return length is not None and length <= WHOLE_BODY_BYTES


def _read_as_stream(exchange: Exchange, payload: bytes) -> None:
    parser = StreamUsageParser(exchange.context.service_type, exchange.reader)
    parser.feed(payload)
    exchange.usage, exchange.stream_state = parser.result(), parser.final_state()


def _nothing_to_say(exchange: Exchange, upstream: aiohttp.ClientResponse) -> bool:
    """An answer with no body by its nature: to HEAD, or ``204``, ``205`` or ``304``."""
    return exchange.context.method == "HEAD" or upstream.status in NO_CONTENT


def _answers_a_message(exchange: Exchange) -> bool:
    """A metered call of a route ccproxy knows: a ``POST`` whose answer is a message, a completion, a response
    (an unknown ``/v1/...`` path may be a call answered with no content by design, such as a call's hang-up)."""
    context = exchange.context
    return context.method == "POST" and exchange.reader not in NO_USAGE_READERS and not context.endpoint.endswith("*")


def _note_no_content(exchange: Exchange, upstream: aiohttp.ClientResponse) -> None:
    """A body-less status (204, 205, 304) to a metered call is no answer: the SDKs raise on a 304 and hand
    back no message (a text, or nothing to decode) for the others, so its record is an error."""
    exchange.usage.failed = True
    exchange.usage.error_type = f"http_{upstream.status}"
    exchange.usage.error_message = (
        f"the provider answered {upstream.status} with no content to a call that answers a message"
    )


def _note_redirect(exchange: Exchange, upstream: aiohttp.ClientResponse) -> None:
    """A redirect is passed to the client, never followed (it would take the request and its key elsewhere);
    on a metered route it is no answer, so its record is an error."""
    if exchange.reader not in NO_USAGE_READERS:
        exchange.usage.failed = True
        exchange.usage.error_type = f"http_{upstream.status}"
        exchange.usage.error_message = "the provider redirected the request; ccproxy passes redirects on to the client"


def streamed_body_parser(
    exchange: Exchange, upstream: aiohttp.ClientResponse, prices: PriceBook, billed_once: BilledOnce
) -> BodyParser | None:
    """How to read an answer passed on as it arrives; ``None``: read it whole.

    Event streams, batch results and any large body that is not JSON (file contents) are
    streamed; JSON answers and small bodies are read whole. Batch results are grouped by the
    input sizes where ``prices`` change, and leave out those an earlier fetch cut short counted
    (``billed_once``).
    """
    if _sized_answer_to_a_whole_request(exchange, upstream):
        return None
    if upstream.content_type == "text/event-stream" or _unlabelled_stream(exchange, upstream):
        return StreamUsageParser(exchange.context.service_type, exchange.reader)
    if upstream.content_type in PAGE_TYPES and _answers_only_json(exchange, upstream):
        exchange.invalid_json = True  # a captive portal's page where results or JSON belong: no need to read it
        return PASS_THROUGH
    if exchange.reader == "batch_results":
        if upstream.status == 206 and not _range_from_the_start(upstream):
            # Results are counted by their place from the first; which ones a piece from further on holds
            # is not known (a resumed download may start mid-line): its cost is unknown, not guessed.
            exchange.accounting_lost = True
            return PASS_THROUGH
        return BatchResultsParser(prices.input_thresholds(), billed_once.batch_results_counted(exchange))
    if upstream.content_type == "application/json" or upstream.status in NO_CONTENT:  # no body to wait for
        return None
    length = upstream.content_length
    if length is not None and length <= WHOLE_BODY_BYTES:
        return None
    if _answers_only_json(exchange, upstream):
        exchange.invalid_json = True  # a large or unsized page where JSON belongs: no need to read it
    return PASS_THROUGH


def _answers_only_json(exchange: Exchange, upstream: aiohttp.ClientResponse) -> bool:
    """Whether this answer must be JSON to be the provider's.

    A metered route answers JSON (or an event stream): a web page with 200 there (a captive
    portal, a gateway's challenge) is no answer of the provider's. Free routes, the audio routes
    and routes ccproxy does not know (``/v1/*``) may answer otherwise by design; there only a page
    is refused, except where the answer is a file as uploaded.
    """
    endpoint = exchange.context.endpoint
    if exchange.reader in NO_USAGE_READERS or endpoint in MEDIA_ENDPOINTS or endpoint.endswith("*"):
        return upstream.content_type in PAGE_TYPES and endpoint != FILE_CONTENT_ENDPOINT
    return True


def _is_json(payload: bytes) -> bool | None:
    """Whether ``payload`` is JSON; ``None`` when it is nested too deeply to tell."""
    try:
        load_json(payload)
    except ValueError:
        return False
    except RecursionError:
        return None
    return True


class AnswerBudget:
    """Bounds the bytes of whole answers that all requests together hold while reading them for usage
    (UPSTREAM__MAX_HELD_ANSWER_BYTES); one event loop takes and gives back, so no lock."""

    def __init__(self, total_bytes: int, one_answer_bytes: int) -> None:
        self.available = max(total_bytes, one_answer_bytes)  # room for the largest answer held
        self.passed_on = 0
        """Answers passed on as they arrived, their usage unread, for want of room."""

    def take(self, exchange: Exchange, size: int) -> bool:
        """Hold ``size`` more bytes for ``exchange``; False when they do not fit."""
        if size > self.available:
            self.passed_on += 1
            return False
        self.available -= size
        exchange.held_answer_bytes += size
        return True

    def give_back(self, exchange: Exchange) -> None:
        """Everything ``exchange`` holds, once its answer is sent (or abandoned)."""
        self.available += exchange.held_answer_bytes
        exchange.held_answer_bytes = 0


async def read_answer_chunks(
    exchange: Exchange, upstream: aiohttp.ClientResponse, limit: int, budget: AnswerBudget
) -> tuple[list[bytes], bool]:
    """The answer's chunks and True, or the first ones and False once they pass ``limit`` bytes, or
    the bytes all answers together may hold."""
    chunks: list[bytes] = []
    size = 0
    if _declared_too_large(upstream, limit):
        return chunks, False  # never held whole: passed on from its first byte, not after the limit's worth
    async for chunk in upstream.content.iter_any():
        if exchange.first_byte_at is None:
            exchange.first_byte_at = time.perf_counter()
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not budget.take(exchange, len(chunk)):
            return chunks, False
    return chunks, True


def _declared_too_large(upstream: aiohttp.ClientResponse, limit: int) -> bool:
    """Whether the answer's body, by its ``Content-Length``, is larger than ``limit`` (a 204 or a 304 has none,
    whatever length it states)."""
    length = upstream.content_length
    return length is not None and length > limit and upstream.status not in NO_CONTENT
