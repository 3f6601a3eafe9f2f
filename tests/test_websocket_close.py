"""A WebSocket close crosses ccproxy as it was sent: its code and reason, both ways, and in the record."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from ccproxy_core import hookimpl
from ccproxy_core.forwarding.websocket_close import MAX_REASON_BYTES, sendable_code, sendable_reason
from tests.hostile_upstream import hostile_upstream

MODEL = "gpt-5"
CREATE = json.dumps({"type": "response.create", "model": MODEL, "input": "hi"})
STARTED = json.dumps(
    {"type": "response.created", "response": {"id": "resp_1", "model": MODEL, "status": "in_progress"}}
)
DELTA = json.dumps({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hel"})


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def open_socket(proxy):
    return websockets.sync.client.connect(proxy.url.replace("http://", "ws://") + "/v1/responses")


@pytest.mark.parametrize("drops", [False, True], ids=["waits for the reply", "closes its connection at once"])
def test_the_providers_close_reaches_the_client_with_its_reason_and_names_the_cut_answer(
    provider, proxy_factory, recorder, drops
):
    # Closing at once: before, aiohttp's reply to the close failed on the closed connection and left 1006 in
    # its place, the client got 1011 and the record "code 1006".
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, DELTA]]
    provider.socket_close = (4000, "session limit reached for sk-proj-Zq8vLr2Xw9Tn4Kp7Yc3Hb6Md")
    provider.socket_close_drops = drops
    with open_socket(proxy) as socket:
        socket.send(CREATE)
        assert [socket.recv(), socket.recv()] == [STARTED, DELTA]
        with pytest.raises(ConnectionClosed):
            socket.recv()
        # As the provider closed it: its code, and its reason unchanged (the client's own business).
        assert (socket.close_code, socket.close_reason) == provider.socket_close
    [record] = recorder.wait_for_ends(1)
    assert (record.method, record.status_code, record.error_type) == ("WEBSOCKET", 200, "upstream_stream_aborted")
    assert "code 4000: session limit reached for" in record.error_message
    assert "Zq8vLr2Xw9Tn4Kp7Yc3Hb6Md" not in record.error_message  # a key-like value is masked in the record


def test_the_clients_close_reaches_the_provider_with_its_code_and_reason(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED]]
    with open_socket(proxy) as socket:
        socket.send(CREATE)
        assert socket.recv() == STARTED
        socket.close(code=4001, reason="user pressed Ctrl-C")
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (499, "client_disconnected")
    assert provider.client_closes == [(4001, "user pressed Ctrl-C")]


COMPLETED = json.dumps(
    {
        "type": "response.completed",
        "response": {
            "id": "resp_1",
            "model": MODEL,
            "status": "completed",
            "usage": {"input_tokens": 5, "output_tokens": 2},
        },
    }
)


class SlowSecondAdmission:
    """Takes its time (within its 1 s limit) to admit every answer after the first."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    async def admit_request(self):
        self.asked += 1
        if self.asked > 1:
            await asyncio.sleep(0.5)  # well within the limit, also on a loaded machine


def test_an_answer_the_close_cuts_while_plugins_admit_it_is_still_recorded(provider, proxy_factory, recorder):
    # Before, the close cancelled the admission: on_request_start had fired, on_request_end never did.
    proxy = proxy_factory(plugins=[SlowSecondAdmission(), recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, COMPLETED]]
    provider.socket_close = (1000, "done")
    with open_socket(proxy) as socket:
        socket.send(CREATE)
        socket.send(CREATE)  # held by the plugin while the provider answers the first, then closes
        assert [socket.recv(), socket.recv()] == [STARTED, COMPLETED]
        with pytest.raises(ConnectionClosed):
            socket.recv()
    first, second = sorted(recorder.wait_for_ends(2), key=lambda record: record.timestamp)
    assert (first.status_code, first.error_type, first.tokens_output) == (200, None, 2)
    assert (second.error_type, second.upstream_status) == ("upstream_stream_aborted", None)
    assert "before this answer was forwarded" in second.error_message
    assert len(recorder.starts) == 2 and provider.socket_received == [CREATE]
    assert (second.cost_usd, second.priced) == (0, True)  # it never reached the provider


def test_a_provider_message_over_the_limit_closes_the_socket_and_is_recorded(provider, proxy_factory, recorder):
    # Before, a provider's message was held however large: one of 400 MB took 1.1 GB.
    proxy = proxy_factory(
        plugins=[recorder], upstream_url=provider.url, upstream={"max_websocket_message_bytes": 1024 * 1024}
    )
    huge = json.dumps({"type": "response.output_text.delta", "delta": "x" * (2 * 1024 * 1024)})
    provider.socket_answers = [[STARTED, huge]]
    with open_socket(proxy) as socket:
        socket.send(CREATE)
        assert socket.recv() == STARTED
        with pytest.raises(ConnectionClosed):
            socket.recv()
        assert socket.close_code == 1009  # message too big
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_stream_aborted")
    # Before: "the provider closed the WebSocket mid-answer (code 1009: ccproxy closed it: ...)", which it did not.
    assert record.error_message.startswith("ccproxy closed the provider's WebSocket mid-answer (code 1009): ")


def test_a_client_message_passes_up_to_the_same_limit_as_the_providers(provider, proxy_factory, recorder):
    # Before, the server's own cap (16 MiB) closed the socket on a larger message, with no record.
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, COMPLETED]]
    large = json.dumps({"type": "response.create", "model": "gpt-5", "instructions": "x" * (17 * 1024 * 1024)})
    with open_socket(proxy) as socket:
        socket.send(large)
        assert [socket.recv(), socket.recv()] == [STARTED, COMPLETED]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.model) == (200, None, "gpt-5")
    assert provider.socket_received == [large]


def test_a_client_message_over_the_limit_closes_the_socket_and_is_not_forwarded(provider, proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder], upstream_url=provider.url, upstream={"max_websocket_message_bytes": 1024 * 1024}
    )
    with open_socket(proxy) as socket:
        # Uncompressed, the server may close while the message is still going out: the send itself then fails,
        # and the reset of what the client still sent may reach it before the close frame does.
        sent = False
        with contextlib.suppress(ConnectionClosed, OSError):
            socket.send(json.dumps({"type": "response.create", "instructions": "x" * (2 * 1024 * 1024)}))
            sent = True
        with pytest.raises(ConnectionClosed):
            socket.recv()
        assert socket.close_code == 1009 if sent else socket.close_code in (1009, 1006)  # message too big
    assert provider.socket_received == []


def test_an_answer_asked_for_in_a_binary_frame_is_recorded_like_one_asked_in_text(provider, proxy_factory, recorder):
    # Before, only text frames were looked at: an answer asked for in binary went unrecorded and unadmitted.
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, COMPLETED]]
    with open_socket(proxy) as socket:
        socket.send(CREATE.encode())  # bytes: a binary frame
        assert [socket.recv(), socket.recv()] == [STARTED, COMPLETED]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 2)
    assert provider.socket_received == [CREATE.encode()]  # forwarded as it came, binary


@pytest.mark.parametrize(
    ("code", "stand_in", "sent"),
    [
        (None, 1011, 1000),
        (1000, 1011, 1000),
        (4999, 1011, 4999),
        (1005, 1011, 1011),
        (1006, 1000, 1000),
        (1015, 1011, 1011),
    ],
)
def test_a_code_that_may_not_be_sent_gets_the_stand_in(code, stand_in, sent):
    assert sendable_code(code, stand_in) == sent


def test_a_reason_is_cut_to_what_a_close_frame_carries_on_a_character_boundary():
    reason = sendable_reason("é" * 100)  # 200 bytes in UTF-8
    assert reason == "é" * (MAX_REASON_BYTES // 2) and len(reason.encode()) <= MAX_REASON_BYTES
    assert sendable_reason(None) == "" and sendable_reason("\udcff ok") == "? ok"


def test_a_socket_answers_times_are_in_order_and_its_overhead_never_negative(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, COMPLETED], [STARTED, COMPLETED]]
    with open_socket(proxy) as socket:
        for _ in range(2):
            socket.send(CREATE)
            assert [socket.recv(), socket.recv()] == [STARTED, COMPLETED]
    for record in recorder.wait_for_ends(2):
        # Before: -0.1 ms or so each time (sent to the provider "before" the message was read).
        assert record.proxy_overhead_ms is not None and record.proxy_overhead_ms >= 0
        assert 0 <= record.ttfb_ms <= record.duration_ms


def test_a_client_asking_for_compression_gets_none(provider, proxy_factory, recorder):
    # A compressed frame of 1 MB could inflate to the whole 64 MiB message cap, on every socket at once.
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    provider.socket_answers = [[STARTED, COMPLETED]]
    url = proxy.url.replace("http://", "ws://") + "/v1/responses"
    with websockets.sync.client.connect(url, compression="deflate") as socket:
        assert socket.response.headers.get("sec-websocket-extensions") is None  # before: permessage-deflate
        socket.send(CREATE)
        assert [socket.recv(), socket.recv()] == [STARTED, COMPLETED]
    assert recorder.wait_for_ends(1)[0].tokens_output == 2
