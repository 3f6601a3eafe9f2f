"""At DEBUG, a forwarded WebSocket's frames are logged by kind and size, never by their text.

A frame is a conversation, and a provider's error may echo the client's key in it, in a form no
mask recognises (a key that is not ``sk-`` shaped, or a piece of one). Both sides are checked on a
real ``ccproxy serve``: the client's socket (logged by uvicorn, under its own logger name) and the
provider's (logged by the websockets library).
"""

from __future__ import annotations

import json

import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from tests.hostile_upstream import hostile_upstream
from tests.test_reliability_signals import ServeProcess

CLIENT_KEY = "gwtoken-Vb7Qm2Xr9Lk4Tz"
ECHO = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "code": f"rejected {CLIENT_KEY}"}})
CREATE = json.dumps({"type": "response.create", "model": "gpt-5", "input": "a private question"})


def test_frames_at_debug_show_their_kind_and_size_on_both_sockets_never_their_text(tmp_path):
    with hostile_upstream() as provider:
        provider.socket_answers = [[ECHO]]
        env = {"UPSTREAM__OPENAI_BASE_URL": provider.url, "LOGGING__LEVEL": "DEBUG"}
        server = ServeProcess(tmp_path, env).start()
        try:
            url = server.url.replace("http://", "ws://") + "/v1/responses"
            with websockets.sync.client.connect(
                url, additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"}
            ) as socket:
                socket.send(CREATE)
                assert socket.recv(timeout=10) == ECHO  # the client still gets the provider's frame whole
        finally:
            server.stop()
    log = server.stderr
    for text in (ECHO, CREATE):
        # Before: "> TEXT '{\"type\": \"error\", ... rejected gwtoken-Vb7Qm2Xr9Lk4Tz\"}}' [...]" from uvicorn.error.
        assert f"TEXT [{len(text.encode())} bytes]" in log
    assert CLIENT_KEY not in log and "Vb7Qm2Xr9" not in log
    assert "a private question" not in log


def test_a_client_text_that_is_not_utf8_is_one_warning_line_not_a_traceback(tmp_path):
    with hostile_upstream() as provider:
        server = ServeProcess(tmp_path, {"UPSTREAM__OPENAI_BASE_URL": provider.url}).start()
        try:
            url = server.url.replace("http://", "ws://") + "/v1/responses"
            with websockets.sync.client.connect(url) as socket:
                socket.send(b"\xff\xfe not UTF-8", text=True)
                with pytest.raises(ConnectionClosed):
                    socket.recv(timeout=10)
                assert socket.close_code == 1007
        finally:
            server.stop()
    # Before: "ERROR uvicorn.error: Invalid UTF-8 sequence received from client." and a traceback, per connection.
    assert "a WebSocket client sent text that is not UTF-8: its socket was closed (1007)" in server.stderr
    assert "Traceback" not in server.stderr and "ERROR" not in server.stderr
