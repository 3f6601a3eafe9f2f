"""A mock LLM provider speaking Anthropic's and OpenAI's wire formats (``ccproxy mock-upstream``).

Tests, the demo and the benchmarks run ccproxy against it. Run it with
:func:`run_mock_upstream`, or in a test with ``with serve_mock_in_thread() as mock: mock.url``.

Routes
    ``POST /v1/messages`` (JSON, or SSE when ``"stream": true``), ``POST /v1/messages/count_tokens``,
    ``POST /v1/chat/completions`` (JSON, or SSE chunks ending ``data: [DONE]``),
    ``GET /v1/models`` and ``GET /v1/models/{model_id}`` (Anthropic's shape when the request has an
    ``anthropic-version`` header, else OpenAI's). OpenAI's Responses API: ``POST /v1/responses``
    (JSON or ``response.*`` events), ``GET``/``DELETE /v1/responses/{id}``, ``GET .../input_items``,
    and its WebSocket mode on ``GET /v1/responses`` (upgrade); the Realtime API on
    ``GET /v1/realtime`` (upgrade) (``responses_wire.py``, ``websockets.py``). ``POST /v1/embeddings``,
    ``/v1/completions``, ``/v1/moderations``, ``/v1/images/generations``, ``/v1/audio/transcriptions``
    (``openai_more.py``). Files of either provider (``/v1/files``, ``/v1/files/{id}``,
    ``/v1/files/{id}/content``), OpenAI Batches (``/v1/batches``, run at once on creation) and
    Anthropic Message Batches (``/v1/messages/batches``, ``.../{id}``, ``.../{id}/results``)
    (``files_batches.py``). Any other path: the provider's 404.
    ``GET /_mock/requests`` lists the last received requests (method, path, query, headers in
    received order and case, body as text and base64), ``DELETE /_mock/requests`` clears them,
    ``GET /_mock/stats`` counts answers in progress, completed, and cut short because the client
    hung up (``client_disconnects``; a client that hangs up stops its answer at once),
    ``GET /_mock/health`` answers ``{"status":"ok"}``. Secret header values (authorization,
    x-api-key, cookie, ...) are kept only as ``redact_secret(value)`` fingerprints.

Answer text and usage (deterministic, so tests can predict them)
    * The answer has ``delta_count`` deltas (default 20); delta ``i`` is word ``i`` (cycling) of
      ``tokens.ANSWER_WORDS``; a non-streamed answer is the same text in one piece.
    * Output tokens = 3 x delta_count, at least 1.
    * Prompt tokens = (characters of ``system`` and ``messages`` text) // 4, at least 1; text is
      every plain string and every string under a ``text`` or ``content`` key, at any depth.
    * Anthropic: without any ``cache_control`` in system/messages/tools, ``input_tokens`` is the
      prompt tokens and both cache counts are 0. With one, ``cache_read_input_tokens`` = prompt // 2,
      ``cache_creation_input_tokens`` = prompt // 4 (also reported as
      ``cache_creation.ephemeral_5m_input_tokens``), and ``input_tokens`` is the rest. In a stream,
      ``message_start`` carries the input and cache counts with ``output_tokens`` 1; ``message_delta``
      carries only the final ``output_tokens``.
    * count_tokens returns the whole prompt tokens.
    * OpenAI: ``prompt_tokens`` is the prompt tokens; ``prompt_tokens_details.cached_tokens`` is 0 under
      1024 prompt tokens, else (prompt // 2) rounded down to a multiple of 128. A stream carries usage
      only when ``stream_options.include_usage`` is true: a last chunk with ``choices: []``.

Rate-limit headers
    Fixed limits (Anthropic: 4000 requests, 2M input and 400k output tokens; OpenAI: 10000 requests,
    30M tokens). Requests remaining = limit - 1 - (requests this provider served before, wrapping);
    token remaining headers subtract only this request's tokens (Anthropic's input-token headers do
    not count cache reads). ``request-id`` (Anthropic) or ``x-request-id`` (OpenAI) names each request.

Per-request headers (override the server's :class:`MockOptions`; a bad value is a 400 naming it)
    ``x-mock-latency-ms``         pause before the response headers
    ``x-mock-delta-count``        deltas in the answer
    ``x-mock-delta-interval-ms``  pause before each streamed delta
    ``x-mock-status: <400-599>``  answer with that status and the provider's error body
                                  (529 -> overloaded_error, 429 -> rate_limit_error / type "requests")
    ``x-mock-error-type``         the error type to put in an injected error (status or stream error)
    ``x-mock-retry-after: <s>``   add ``retry-after: <s>`` to an injected error
    ``x-mock-abort-after: <n>``   stream n deltas, then close the connection mid-stream (a JSON answer:
                                  headers and half the body, then close)
    ``x-mock-stream-error-after: <n>``  stream n deltas, then the provider's in-stream error event
                                  (Anthropic ``event: error``, overloaded_error; OpenAI ``data: {"error":..}``,
                                  server_error) and a clean end of the body
    ``x-mock-malformed: 1``       200 whose body is not valid JSON (a stream: the first delta's data)
    ``x-mock-slow-bytes-ms: <ms>``  send the body 16 bytes at a time, pausing before each piece
    ``x-mock-cost-usd: <decimal>``  report that cost in the response header ``x-upstream-cost-usd``
    ``x-mock-truncate-after: <n>``  stream n deltas, then end the body cleanly without the terminal
                                  event (no ``message_stop`` / ``data: [DONE]``)
    ``x-mock-content-encoding: gzip|deflate|br|zstd``  compress the answer so, asked for or not (a
                                  stream is compressed incrementally, flushed after each event)
    ``x-mock-first-token-ms: <ms>``  pause between a stream's opening events and its first delta
    ``x-mock-input-tokens: <n>``  report n prompt tokens instead of counting them (long contexts)
    ``x-mock-web-searches: <n>``  Anthropic: ``usage.server_tool_use.web_search_requests`` = n (0 in
                                  ``message_start``, n in the final ``message_delta``)
    ``x-mock-service-tier: <tier>``  the tier the answer reports (Anthropic ``usage.service_tier``,
                                  OpenAI top-level ``service_tier`` of the body and every chunk)
    ``x-mock-speed: <speed>``     Anthropic ``usage.speed`` (``fast``)
    ``x-mock-reasoning-tokens: <n>``  OpenAI ``completion_tokens_details.reasoning_tokens`` (at most
                                  the completion tokens)
Faults combine; ``x-mock-status`` wins over an invalid body; unknown ``x-mock-*`` headers are a 400.
"""

from ccproxy_core.testing.mock_upstream.app import create_mock_app, run_mock_upstream, server_url, start_mock_server
from ccproxy_core.testing.mock_upstream.background import MockServer, serve_mock_in_thread
from ccproxy_core.testing.mock_upstream.faults import COST_RESPONSE_HEADER
from ccproxy_core.testing.mock_upstream.options import MockOptions
from ccproxy_core.testing.mock_upstream.recorder import ReceivedRequest, redact_secret

__all__ = [
    "COST_RESPONSE_HEADER",
    "MockOptions",
    "MockServer",
    "ReceivedRequest",
    "create_mock_app",
    "redact_secret",
    "run_mock_upstream",
    "serve_mock_in_thread",
    "server_url",
    "start_mock_server",
]
