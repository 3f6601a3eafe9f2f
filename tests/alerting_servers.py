"""Real Prometheus and Alertmanager processes for tests, and a webhook receiver that collects alerts.

Prometheus (Debian package ``prometheus``) and Alertmanager (``prometheus-alertmanager``)
run on free loopback ports with their data in the test's temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from ccproxy_core.testing import free_port
from tests.tools import tool_path


class WebhookReceiver:
    """An HTTP server that keeps every Alertmanager webhook notification POSTed to it."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._changed:
                    receiver.notifications.append(json.loads(body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        with self._changed:
            return [alert for notification in self.notifications for alert in notification["alerts"]]

    def wait_for(self, wanted: list[dict[str, str]], timeout: float) -> list[dict[str, Any]]:
        """Every alert received once, for each label set in ``wanted``, an alert carrying those
        labels has arrived; fails naming the missing ones. Alerts of one rule with different labels
        arrive separately, so waiting for the name alone can return before the second one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while missing := [labels for labels in wanted if not self._has(labels)]:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({alert["labels"]["alertname"] for alert in self.alerts()})
                    raise AssertionError(f"alerts never delivered: {missing}; delivered: {seen}")
                self._changed.wait(left)
            return self.alerts()

    def _has(self, labels: dict[str, str]) -> bool:
        return any(labels.items() <= alert["labels"].items() for alert in self.alerts())

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Server:
    """A Prometheus-family server process on a free loopback port."""

    def __init__(self, command: list[str], port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log_path.read_text()}")
            assert time.monotonic() < deadline, f"{command[0]} not ready in 30 s: {log_path.read_text()}"
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_alertmanager(workdir: Path, webhook_url: str) -> Server:
    """Alertmanager sending every alert, grouped by name and labels, to ``webhook_url`` within a second."""
    config = {
        "route": {
            "receiver": "test-webhook",
            "group_by": ["alertname", "instance", "service_type", "error_type", "resource"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "test-webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": False}]}],
    }
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        tool_path("alertmanager"),
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # a single instance: no gossip port
    ]
    return Server(command, port, workdir / "alertmanager.log")


def start_prometheus(workdir: Path, rules: Path, target: str, alertmanager_url: str) -> Server:
    """Prometheus scraping ``target`` (host:port) as job ccproxy every second, evaluating ``rules`` every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "ccproxy", "static_configs": [{"targets": [target]}]}],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}]},
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        tool_path("prometheus"),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return Server(command, port, workdir / "prometheus.log")
