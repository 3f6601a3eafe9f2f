"""Running the mock upstream in a background thread with its own event loop, for tests."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from ccproxy_core.testing.mock_upstream.app import fast_event_loop_factory, server_url, start_mock_server
from ccproxy_core.testing.mock_upstream.handlers import MOCK_STATE
from ccproxy_core.testing.mock_upstream.options import MockOptions
from ccproxy_core.testing.mock_upstream.recorder import AnswerStats, ReceivedRequest, RequestRecorder


class MockServer:
    """A mock upstream on a loopback port, served from its own thread and event loop.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is set once
    started. :meth:`requests` and :meth:`clear_requests` reach the recorded requests
    directly, without going through ``/_mock/requests``. On stop, answers still being
    sent get ``shutdown_timeout`` seconds to finish before they are cancelled.
    """

    def __init__(
        self, options: MockOptions | None = None, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 0.1
    ) -> None:
        self.options = options or MockOptions()
        self.url = ""
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recorder: RequestRecorder | None = None
        self._stats: AnswerStats | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> MockServer:
        """Start the server; return once it accepts connections. Raises if it cannot start."""
        if self._thread is not None:
            raise RuntimeError("this MockServer was already started; create a new one")
        self._thread = threading.Thread(target=self._serve, name="ccproxy-mock-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"mock upstream did not start within {timeout} s")
        if self._startup_error is not None:
            self._thread.join()
            raise RuntimeError(f"mock upstream could not start: {self._startup_error}") from self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end; calling it again does nothing."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"mock upstream thread did not stop within {timeout} s")

    def requests(self) -> list[ReceivedRequest]:
        """The requests received so far (up to ``options.recorded_requests_limit``), oldest first."""
        return self._started_recorder().snapshot()

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        self._started_recorder().clear()

    def stats(self) -> dict[str, int]:
        """Answers in progress, completed, and cut short by the client (as ``GET /_mock/stats``)."""
        if self._stats is None:
            raise RuntimeError("the mock upstream is not started")
        return self._stats.to_dict()

    def __enter__(self) -> MockServer:
        return self if self._thread is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _started_recorder(self) -> RequestRecorder:
        if self._recorder is None:
            raise RuntimeError("the mock upstream is not started")
        return self._recorder

    def _serve(self) -> None:
        factory = fast_event_loop_factory() or asyncio.new_event_loop
        loop = factory()
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(self._open(loop))
        except BaseException as error:  # noqa: BLE001 - reported to the starting thread by start()
            self._startup_error = error
            self._ready.set()
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self, loop: asyncio.AbstractEventLoop) -> web.AppRunner:
        runner = await start_mock_server(self.options, self._host, self._port, shutdown_timeout=self._shutdown_timeout)
        self._recorder = runner.app[MOCK_STATE].recorder
        self._stats = runner.app[MOCK_STATE].stats
        self.url = server_url(runner)
        self._loop = loop
        self._ready.set()
        return runner


def serve_mock_in_thread(options: MockOptions | None = None, host: str = "127.0.0.1", port: int = 0) -> MockServer:
    """Start a mock upstream in a background thread and return it, already accepting connections.

    ``with serve_mock_in_thread() as mock: ... mock.url ...`` stops it on exit;
    without ``with``, call ``mock.stop()``.
    """
    return MockServer(options, host, port).start()
