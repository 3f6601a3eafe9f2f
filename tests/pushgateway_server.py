"""A real Prometheus Pushgateway (Debian package prometheus-pushgateway) for tests, stoppable and restartable."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import free_port

USERNAME = "pusher"
PASSWORD = "Gateway:P@ss/w0rd-never-logged"
# bcrypt hash of PASSWORD (cost 10), as the Pushgateway's --web.config.file wants it.
PASSWORD_BCRYPT = "$2b$10$Qm9vdHN0cmFwU2FsdEZvceVM3M6FvYejHAus.TedvO4Ketqmd0uYe"


class Pushgateway:
    """A real Pushgateway process on a fixed loopback port, which can be stopped and started again."""

    def __init__(self, binary: str, workdir: Path, basic_auth: bool = False) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"pushgateway-{self.port}.log"
        self.auth = (USERNAME, PASSWORD) if basic_auth else None
        self.web_config = None
        if basic_auth:
            self.web_config = workdir / "pushgateway-web.yml"
            self.web_config.write_text(f"basic_auth_users:\n  {USERNAME}: {PASSWORD_BCRYPT}\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [self.binary, f"--web.listen-address=127.0.0.1:{self.port}", "--persistence.file="]
        if self.web_config is not None:
            command.append(f"--web.config.file={self.web_config}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"pushgateway exited: {self.log_path.read_text()}")
            assert time.monotonic() < deadline, "pushgateway did not become ready in 15 s"
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/-/ready", auth=self.auth, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def pushed(self, name: str, **labels: str) -> float:
        """The sum of ``name`` samples on the gateway's /metrics whose labels include ``labels``."""
        response = httpx.get(self.url + "/metrics", auth=self.auth, timeout=5)
        response.raise_for_status()
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def wait_for(self, name: str, value: float, timeout: float = 15.0, **labels: str) -> None:
        """Poll until ``pushed(name, **labels) == value``."""
        deadline = time.monotonic() + timeout
        while (seen := self.pushed(name, **labels)) != value:
            assert time.monotonic() < deadline, f"{name}{labels} is {seen} on the gateway, expected {value}"
            time.sleep(0.05)
