"""Building and running the mock upstream server (aiohttp, for speed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from ccproxy_core.testing.mock_upstream import api_handlers, handlers, websockets
from ccproxy_core.testing.mock_upstream.anthropic_wire import AnthropicWire
from ccproxy_core.testing.mock_upstream.faults import default_plan
from ccproxy_core.testing.mock_upstream.handlers import MOCK_STATE, MockState
from ccproxy_core.testing.mock_upstream.openai_wire import OpenAIWire
from ccproxy_core.testing.mock_upstream.options import MockOptions
from ccproxy_core.testing.mock_upstream.recorder import AnswerStats, RequestRecorder

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted; above it the provider's 413 (real providers allow 32 MB)."""


def create_mock_app(options: MockOptions | None = None) -> web.Application:
    """A fresh mock upstream app; all its state (counters, recorded requests) lives on the app."""
    options = options or MockOptions()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[MOCK_STATE] = MockState(
        options=options,
        default_plan=default_plan(options),
        anthropic=AnthropicWire(),
        openai=OpenAIWire(),
        recorder=RequestRecorder(options.recorded_requests_limit),
        stats=AnswerStats(),
    )
    router = app.router
    router.add_post("/v1/messages", handlers.anthropic_messages)
    router.add_post("/v1/messages/count_tokens", handlers.anthropic_count_tokens)
    router.add_post("/v1/chat/completions", handlers.openai_chat_completions)
    router.add_get("/v1/models", handlers.list_models, allow_head=False)
    router.add_get("/v1/models/{model_id}", handlers.get_model, allow_head=False)
    router.add_get("/_mock/requests", handlers.recorded_requests, allow_head=False)
    router.add_delete("/_mock/requests", handlers.clear_recorded_requests)
    router.add_get("/_mock/stats", handlers.answer_stats, allow_head=False)
    router.add_get("/_mock/health", handlers.health, allow_head=False)
    api_handlers.add_routes(app)
    websockets.add_routes(app)
    router.add_route("*", "/{tail:.*}", handlers.not_found)
    return app


async def start_mock_server(
    options: MockOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = 1.0,
) -> web.AppRunner:
    """Start serving on ``host:port`` (0 picks a free port); stop with ``await runner.cleanup()``.

    :func:`server_url` gives the address actually bound. ``shutdown_timeout`` is how long
    cleanup waits for answers still being sent before cancelling them.
    """
    # handler_cancellation: a client that hangs up stops its answer at once, as on a real provider.
    runner = web.AppRunner(
        create_mock_app(options), access_log=None, shutdown_timeout=shutdown_timeout, handler_cancellation=True
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def server_url(runner: web.AppRunner) -> str:
    """``http://host:port`` of the first address ``runner`` listens on."""
    host, port = runner.addresses[0][:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_mock_upstream(host: str, port: int, options: MockOptions) -> None:
    """Serve until Ctrl-C or SIGTERM, then close cleanly (the ``ccproxy mock-upstream`` command)."""
    try:
        with asyncio.Runner(loop_factory=fast_event_loop_factory()) as runner:
            runner.run(_serve_until_stopped(host, port, options))
    except KeyboardInterrupt:
        pass


async def _serve_until_stopped(host: str, port: int, options: MockOptions) -> None:
    runner = await start_mock_server(options, host, port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C is stopped like SIGTERM, by the loop's own handler: left to asyncio.Runner's
    # Python-level one (which cancels this task), it once kept the command running past 10 s.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stopped.set)
    try:
        print(f"ccproxy mock upstream listening on {server_url(runner)} (Ctrl-C to stop)", flush=True)
        await stopped.wait()
    finally:
        await runner.cleanup()
        print("ccproxy mock upstream stopped", file=sys.stderr, flush=True)


def fast_event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (it comes with uvicorn[standard]), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
