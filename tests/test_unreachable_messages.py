"""What a client and the record are told when the provider cannot be reached: where, and the system's
reason, in words an operator can act on."""

from __future__ import annotations

import asyncio
import socket
import threading

import aiohttp
import pytest

from ccproxy_core.forwarding.upstream import unanswered_request


def _failure_of(url: str) -> BaseException:
    async def fetch() -> BaseException:
        async with aiohttp.ClientSession() as session:
            try:
                await session.get(url)
            except aiohttp.ClientError as exc:
                return exc
        raise AssertionError(f"{url} answered")

    return asyncio.run(fetch())


@pytest.fixture
def plain_port():
    """A port that answers plain HTTP, whatever it is sent (a TLS base URL pointed at it fails its handshake)."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_a_tls_failure_is_named_as_one_not_as_the_system_error_its_number_spells(plain_port):
    status, error_type, message = unanswered_request("anthropic", _failure_of(f"https://127.0.0.1:{plain_port}/"))
    assert (status, error_type) == (502, "upstream_unreachable")
    assert message.startswith(f"cannot reach anthropic at 127.0.0.1:{plain_port}: [SSL")
    assert "Operation not permitted" not in message


def test_a_refused_connection_names_the_address_in_the_form_a_url_takes():
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    message = unanswered_request("openai", _failure_of(f"http://[::1]:{port}/"))[2]
    assert message == f"cannot reach openai at [::1]:{port}: Connection refused"
