"""The served app tunes the garbage collector while it runs and puts it back when it stops."""

from __future__ import annotations

import gc
import socket
import threading

import httpx

from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.serve import YOUNG_COLLECTION_THRESHOLD, Server, uvicorn_config
from ccproxy_core.testing import make_settings, wait_until


def test_young_collections_are_rarer_while_serving_and_restored_after():
    before = gc.get_threshold()
    assert before[0] != YOUNG_COLLECTION_THRESHOLD
    settings = make_settings("http://127.0.0.1:9")  # never called: the test only asks /health
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(uvicorn_config(create_app(settings), settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True
        thread.join(30)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
