"""Unit tests of the pushgateway plugin: URL and credentials, grouping key, pushing, failure reports.

The pushes go to a small real HTTP server started here (it records what it receives);
the real Prometheus Pushgateway is exercised in test_pushgateway_integration.py.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter

from ccproxy_core.errors import StartupError
from ccproxy_core.runtime.app import create_app
from ccproxy_core.testing import make_settings
from ccproxy_pushgateway.pusher import Pusher, PushPlan, create_push_metrics, push_timeout
from ccproxy_pushgateway.target import grouping_key, parse_push_url

PASSWORD = "pa:ss/w%40rd-never-logged"


def test_credentials_are_taken_out_of_the_url_and_masked_for_display():
    target = parse_push_url("https://pusher:pa%3Ass%2Fw%2540rd-never-logged@gateway.example:9091/prefix")
    assert target.url == "https://gateway.example:9091/prefix"
    assert target.display_url == "https://***@gateway.example:9091/prefix"
    assert (target.username, target.password) == ("pusher", "pa:ss/w%40rd-never-logged")
    assert "never-logged" not in repr(target)


def test_a_url_without_credentials_or_scheme_is_plain_http():
    target = parse_push_url("gateway.example:9091")
    assert (target.url, target.display_url, target.username) == ("http://gateway.example:9091",) * 2 + (None,)


@pytest.mark.parametrize(
    "bad_url",
    [
        "ftp://user:secret-pw@host:21",
        "http://user:secret-pw@host:9091/?a=1",
        "http://",
        "http:/user:secret-pw@pushgw:9091",  # one slash: the credentials would be in the path
        "//user:secret-pw@pushgw:9091",
        "http://pushgw:9091/user:secret-pw@x",
    ],
)
def test_a_bad_url_is_refused_without_repeating_the_password(bad_url):
    with pytest.raises(ValueError, match="OBSERVABILITY__PUSHGATEWAY_URL") as raised:
        parse_push_url(bad_url)
    assert "secret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://pushgateway:notaport",
        "http://user:secret-pw@host:99999",
        "host:0",
        "http://user:secret-pw@:9091",
        "not a url",
        "http://user:secret-pw@not a host",
        "http://gate$way:9091",
        "http://pushgateway:9091/a path",
    ],
)
def test_a_url_whose_port_or_host_is_not_one_is_refused_at_start_up(bad_url):
    with pytest.raises(ValueError, match="OBSERVABILITY__PUSHGATEWAY_URL") as raised:
        parse_push_url(bad_url)
    assert "secret-pw" not in str(raised.value)


@pytest.mark.parametrize("good_url", ["http://[::1]:9091", "https://push-gw_1.example.", "http://10.0.0.7"])
def test_ip_addresses_and_dns_names_with_or_without_a_port_are_taken(good_url):
    assert parse_push_url(good_url).url == good_url


def test_the_grouping_key_is_the_configured_instance_or_host_and_port():
    configured = make_settings("http://127.0.0.1:1", observability={"pushgateway_instance": "blue-1"})
    assert grouping_key(configured) == {"instance": "blue-1"}
    default = make_settings("http://127.0.0.1:1", server={"port": 8123})
    assert grouping_key(default) == {"instance": f"{socket.gethostname()}:8123"}


def test_the_push_timeout_stays_between_one_and_ten_seconds():
    assert [push_timeout(seconds) for seconds in (0.2, 5, 15, 600)] == [1.0, 5, 10.0, 10.0]


class RecordingGateway:
    """A tiny HTTP server that answers pushes with ``status`` and keeps what it received."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                gateway.received.append((self.command, self.path, dict(self.headers), body))
                self.send_response(gateway.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    server = RecordingGateway()
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def make_pusher(url: str, interval: float = 60.0) -> tuple[Pusher, CollectorRegistry]:
    registry = CollectorRegistry()
    Counter("ccproxy_requests_total", "Requests.", registry=registry).inc(3)
    plan = PushPlan(
        registry=registry,
        target=parse_push_url(url),
        job="ccproxy",
        grouping_key={"instance": "unit:1"},
        interval_seconds=interval,
    )
    return Pusher(plan, create_push_metrics(registry)), registry


async def test_a_push_puts_the_registry_under_job_and_instance(gateway):
    pusher, registry = make_pusher(gateway.url)
    assert await pusher.push_once()
    method, path, headers, body = gateway.received[0]
    assert (method, path) == ("PUT", "/metrics/job/ccproxy/instance/unit%3A1")
    assert b"ccproxy_requests_total 3.0" in body
    assert "Authorization" not in headers
    assert registry.get_sample_value("ccproxy_pushgateway_pushes_total") == 1
    assert registry.get_sample_value("ccproxy_pushgateway_last_success_timestamp_seconds") > 0


async def test_basic_auth_credentials_go_in_the_header_and_nowhere_in_the_logs(gateway, caplog):
    host_and_port = gateway.url.removeprefix("http://")
    pusher, _ = make_pusher(f"http://pusher:{quote(PASSWORD, safe='')}@{host_and_port}")
    gateway.status = 401
    with caplog.at_level(logging.DEBUG):
        assert not await pusher.push_once()
        gateway.status = 200
        assert await pusher.push_once()
        await pusher.stop()
    expected = "Basic " + base64.b64encode(f"pusher:{PASSWORD}".encode()).decode()
    assert all(headers["Authorization"] == expected for _, _, headers, _ in gateway.received)
    assert len(gateway.received) == 3  # two pushes and the final one
    assert "***@127.0.0.1" in caplog.text
    for secret in (PASSWORD, "pa%3Ass", "never-logged", expected.split()[1]):
        assert secret not in caplog.text


def failure_reports(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "failed" in record.getMessage()]


async def test_failures_are_counted_every_time_but_reported_with_backoff(caplog):
    pusher, registry = make_pusher(closed_port_url())
    with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
        for _ in range(10):
            assert not await pusher.push_once()
    assert registry.get_sample_value("ccproxy_pushgateway_push_failures_total") == 10
    assert registry.get_sample_value("ccproxy_pushgateway_last_success_timestamp_seconds") == 0
    reports = failure_reports(caplog)
    assert [report.rsplit(" (", 1)[-1] for report in reports] == [
        "1 failure(s) in a row; still trying every 60s, next report at failure 2)",
        "2 failure(s) in a row; still trying every 60s, next report at failure 4)",
        "4 failure(s) in a row; still trying every 60s, next report at failure 8)",
        "8 failure(s) in a row; still trying every 60s, next report at failure 16)",
    ]
    assert "Connection refused" in reports[0]


async def test_reports_are_at_most_64_failures_apart(caplog):
    pusher, _ = make_pusher(closed_port_url())
    with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
        for _ in range(200):
            await pusher.push_once()
    assert [int(report.split(" failure(s)")[0].split("(")[-1]) for report in failure_reports(caplog)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        192,
    ]


async def test_pushing_resumes_by_itself_and_says_so(gateway, caplog):
    pusher, registry = make_pusher(gateway.url)
    gateway.status = 503
    with caplog.at_level(logging.INFO, logger="ccproxy.pushgateway"):
        for _ in range(3):
            assert not await pusher.push_once()
        gateway.status = 200
        assert await pusher.push_once()
    assert caplog.records[-1].getMessage() == f"pushes to {gateway.url} resumed after 3 failed attempt(s)"
    assert "HTTPError: HTTP Error 503" in failure_reports(caplog)[0]
    assert pusher.consecutive_failures == 0
    assert registry.get_sample_value("ccproxy_pushgateway_push_failures_total") == 3


async def test_a_gateway_that_never_answers_times_out_without_piling_up_pushes(caplog):
    # A listening socket nobody accepts from: connections complete, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        pusher, registry = make_pusher(f"http://127.0.0.1:{silent.getsockname()[1]}", interval=0.2)
        with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
            assert not await pusher.push_once()
            assert not await pusher.push_once()
    reports = failure_reports(caplog)
    # our 1 s deadline or urllib's own 1 s socket timeout, whichever fires first
    assert "no answer within 1s" in reports[0] or "timed out" in reports[0], reports
    assert registry.get_sample_value("ccproxy_pushgateway_push_failures_total") == 2


class TricklingGateway:
    """Answers every push with a status line, then one byte of a header that never ends, every 0.1 s."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cut_off = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(300):
                    connection.sendall(b"z")
                    time.sleep(0.1)
            except OSError:  # the pusher shut the connection down
                self.cut_off += 1


async def test_a_gateway_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(caplog):
    # urllib's timeout bounds each read, not the push: before, such a push never ended, every later
    # push failed as "still waiting" for it, and its thread kept the process from exiting.
    gateway = TricklingGateway()
    pusher, registry = make_pusher(gateway.url, interval=0.2)  # a push may take 1 s
    with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
        assert not await pusher.push_once()
        await wait_until(lambda: gateway.cut_off == 1, seconds=5)
        await wait_until(lambda: not [t for t in threading.enumerate() if t.name == "ccproxy-pushgateway-push"])
        assert not await pusher.push_once()
        await wait_until(lambda: gateway.cut_off == 2, seconds=5)
    gateway.listener.close()
    reports = failure_reports(caplog)
    assert not [report for report in reports if "still waiting" in report], reports
    assert registry.get_sample_value("ccproxy_pushgateway_push_failures_total") == 2


async def test_pushes_to_a_trickling_gateway_each_fail_on_their_own_never_as_still_waiting(caplog):
    # The next push is due when the last one's deadline passes (the interval is the timeout): it
    # once found that push still ending and failed too, losing every other slot.
    gateway = TricklingGateway()
    pusher, _ = make_pusher(gateway.url, interval=0.2)  # a push may take 1 s
    with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
        pusher.start()
        await wait_until(lambda: gateway.cut_off >= 3)
        await pusher.stop()
    gateway.listener.close()
    reports = [record.getMessage() for record in caplog.records]
    assert not [report for report in reports if "still waiting" in report], reports
    assert "timed out: no whole answer within 1s" in reports[0]


async def wait_until(condition, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):  # raises TimeoutError when the condition never holds
        while not condition():  # noqa: ASYNC110 - the condition changes on the test server's thread, not the loop
            await asyncio.sleep(0.01)


async def test_the_loop_pushes_at_once_then_on_the_interval_and_stop_pushes_once_more(gateway):
    pusher, registry = make_pusher(gateway.url, interval=0.05)
    pusher.start()
    await wait_until(lambda: len(gateway.received) >= 3)
    Counter("ccproxy_late_total", "Counted after the last interval push.", registry=registry).inc()
    await pusher.stop()
    pushes_at_stop = len(gateway.received)
    assert b"ccproxy_late_total 1.0" in gateway.received[-1][3]
    await asyncio.sleep(0.2)
    assert len(gateway.received) == pushes_at_stop  # the loop is gone


def test_pushing_without_a_metrics_registry_stops_start_up_with_a_clear_message():
    settings = make_settings(
        "http://127.0.0.1:9", observability={"pushgateway_url": "http://127.0.0.1:9"}, plugins={"disabled": ["metrics"]}
    )
    with pytest.raises(StartupError, match="remove 'metrics' from PLUGINS__DISABLED"):
        with TestClient(create_app(settings)):
            pass


@pytest.mark.parametrize("bad_url", ["ftp://u:hunter2@host", "http://u:hunter2@not a url"])
def test_a_bad_pushgateway_url_stops_start_up_naming_the_setting_not_the_password(bad_url):
    settings = make_settings("http://127.0.0.1:9", observability={"pushgateway_url": bad_url})
    with pytest.raises(StartupError, match="OBSERVABILITY__PUSHGATEWAY_URL") as raised:
        with TestClient(create_app(settings)):
            pass
    assert "hunter2" not in str(raised.value)


async def test_a_gateway_that_answers_garbage_cannot_forge_log_lines(caplog):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def answer_garbage() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"\x00\xffNOT HTTP\r\nFORGED ccproxy line\x1b[2J\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        pusher, _ = make_pusher(url)
        with caplog.at_level(logging.WARNING, logger="ccproxy.pushgateway"):
            assert not await pusher.push_once()
        thread.join(10)
    [report] = failure_reports(caplog)
    assert "NOT HTTP" in report and not any(char in report for char in "\r\n\x00\x1b")


def test_a_key_pasted_into_the_gateway_path_is_masked_for_display():
    key = "sk-ant-api03-PASTEDINPATH0123456789abcdefghijklmnop"
    target = parse_push_url(f"http://gateway.example:9091/{key}")
    assert target.url == f"http://gateway.example:9091/{key}"  # pushed where configured
    assert "PASTEDINPATH" not in target.display_url and target.display_url.startswith("http://gateway.example:9091/sk-")
