"""``ccproxy report`` finds the server that holds the DuckDB file by the process DuckDB names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ccproxy_core.runtime.report.holder import holder_url, listening_addresses

from .test_attribution_integration import rows
from .test_report import fill, run_report, write_config

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="listening sockets are read from /proc")


def test_the_report_asks_the_holding_server_on_a_port_its_settings_do_not_name(proxy_factory, tmp_path):
    # As `ccproxy serve --port N` with no [server] port in the settings the report reads.
    proxy, claude_session, _ = fill(proxy_factory)
    stored = rows(proxy.url, 4)
    config = write_config(tmp_path, 1)  # nothing listens on port 1
    answer = run_report(config, "session", "--json")
    assert answer.returncode == 0, answer.stderr
    report = json.loads(answer.stdout)
    assert report["source"] == "api"
    sessions = {row["session_id"]: row for row in report["rows"]}
    claude_cost = sum(r["cost_usd"] for r in stored if r["session_id"] == claude_session)
    assert sessions[claude_session]["requests"] == 3 and abs(sessions[claude_session]["cost_usd"] - claude_cost) < 1e-9


def test_listening_sockets_of_a_process_are_read_with_their_addresses():
    with socket.create_server(("127.0.0.1", 0)) as ipv4, socket.socket(socket.AF_INET6) as ipv6:
        ipv6.bind(("::1", 0))
        ipv6.listen()
        with socket.create_connection(ipv4.getsockname()) as connected:  # connected, not listening: left out
            client_port = connected.getsockname()[1]
            found = listening_addresses(os.getpid())
        assert ("127.0.0.1", ipv4.getsockname()[1]) in found
        assert ("::1", ipv6.getsockname()[1]) in found
    assert all(port != client_port for _, port in found)


# Programs that may hold the file: a web server whose /health is no ccproxy's, one that answers no HTTP
# (a Jupyter kernel's ZMQ port), one that answers a byte a second.
SERVERS = {
    "other-http": "import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')",
    "not-http": (
        "import socket, sys\nserver = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "while True:\n    client, _ = server.accept(); client.sendall(b'\\xff\\x00\\x01zmq\\r\\n\\r\\n'); client.close()"
    ),
    "drip": (
        "import socket, sys, time\nserver = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "while True:\n    client, _ = server.accept(); client.sendall(b'HTTP/1.1 200 OK\\r\\n')\n"
        "    for _ in range(60): time.sleep(0.2); client.sendall(b'x')"
    ),
}


@pytest.mark.parametrize("kind", SERVERS)
def test_a_holder_that_serves_no_ccproxy_gives_no_url_within_the_probes_time(tmp_path, kind):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    other = subprocess.Popen(
        [sys.executable, "-c", SERVERS[kind], str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if ("127.0.0.1", port) in listening_addresses(other.pid):
                break
            time.sleep(0.05)
        assert listening_addresses(other.pid) == [("127.0.0.1", port)]
        started = time.monotonic()
        assert holder_url(other.pid, port) is None  # before: a traceback (not-http) or no end (drip)
        assert time.monotonic() - started < 5
    finally:
        other.kill()
        other.wait()
    assert listening_addresses(other.pid) == []  # gone: nothing to read
