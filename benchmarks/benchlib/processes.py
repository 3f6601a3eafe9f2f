"""Start the mock upstream and ccproxy as separate processes, optionally pinned to CPUs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CCPROXY = str(Path(sys.executable).with_name("ccproxy"))

PLUGINS_ON = {
    "OBSERVABILITY__METRICS_ENDPOINT_ENABLED": "true",
    "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
    "OBSERVABILITY__LOG_STORAGE_BACKEND": "duckdb",
    "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
    "OBSERVABILITY__DASHBOARD_ENABLED": "true",
}
"""Every built-in plugin that serves one ccproxy process (Pushgateway needs a gateway: left out)."""


@dataclass
class Service:
    """A server process we started: its name, address and process."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory_kib(self) -> dict[str, int]:
        """Current (VmRSS) and peak (VmHWM) resident memory, in KiB, from /proc."""
        return read_memory_kib(self.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the process has used so far."""
        return read_cpu_seconds(self.pid)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, wait for a clean exit (queued records are written on shutdown), SIGKILL if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def read_memory_kib(pid: int) -> dict[str, int]:
    """``{"rss": VmRSS, "peak": VmHWM}`` of process ``pid`` in KiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount = line.split(":", 1)
                values["rss" if name == "VmRSS" else "peak"] = int(amount.split()[0])
    return values


def read_cpu_seconds(pid: int, thread_id: int | None = None) -> float:
    """User plus system CPU seconds of process ``pid`` and all its threads, from /proc/PID/stat;
    of its thread ``thread_id`` alone when given (/proc/PID/task/TID/stat)."""
    path = f"/proc/{pid}/stat" if thread_id is None else f"/proc/{pid}/task/{thread_id}/stat"
    with open(path, encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """``command`` run under ``taskset -c cpus`` when asked and available."""
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *command]
    return command


def clean_environment(workdir: Path) -> dict[str, str]:
    """The current environment without any ccproxy settings, and no config file or .env to find."""
    env = {k: v for k, v in os.environ.items() if "__" not in k and not k.startswith("CCPROXY")}
    env["XDG_CONFIG_HOME"] = str(workdir)
    return env


def start_mock(
    workdir: Path, cpus: str | None = None, delta_count: int = 20, delta_interval_ms: int = 0, latency_ms: int = 0
) -> Service:
    """``ccproxy mock-upstream`` on a free port; returns once it answers."""
    port = free_port()
    command = [
        CCPROXY,
        "mock-upstream",
        "--port",
        str(port),
        "--delta-count",
        str(delta_count),
        "--delta-interval-ms",
        str(delta_interval_ms),
        "--latency-ms",
        str(latency_ms),
    ]
    service = _spawn("mock", command, port, workdir, clean_environment(workdir), cpus)
    _wait_until_up(service, "/_mock/health")
    return service


def start_proxy(
    name: str,
    upstream: Service,
    workdir: Path,
    cpus: str | None = None,
    settings: dict[str, str] | None = None,
    workers: int = 1,
) -> Service:
    """``ccproxy serve [--workers N]`` on a free port forwarding to ``upstream``, with ``settings`` as environment."""
    port = free_port()
    env = clean_environment(workdir)
    env.update({"UPSTREAM__ANTHROPIC_BASE_URL": upstream.url, "UPSTREAM__OPENAI_BASE_URL": upstream.url})
    env.update(settings or {})
    command = [CCPROXY, "serve", "--port", str(port)] + (["--workers", str(workers)] if workers > 1 else [])
    service = _spawn(name, command, port, workdir, env, cpus)
    _wait_until_up(service, "/health")
    return service


def start_floor_proxy(upstream: Service, workdir: Path, cpus: str | None = None) -> Service:
    """The smallest proxy on ccproxy's stack (``floor_proxy.py``) on a free port, forwarding to ``upstream``."""
    port = free_port()
    env = clean_environment(workdir) | {"UPSTREAM": upstream.url, "PORT": str(port)}
    command = [sys.executable, str(Path(__file__).with_name("floor_proxy.py"))]
    service = _spawn("floor", command, port, workdir, env, cpus)
    _wait_until_up(service, "/_mock/health")
    return service


def plugins_on_settings(workdir: Path, name: str = "ccproxy") -> dict[str, str]:
    """Settings turning on metrics, DuckDB collection (a file in ``workdir``), the logs API and the dashboard."""
    return {**PLUGINS_ON, "OBSERVABILITY__DUCKDB_PATH": str(workdir / f"{name}.duckdb")}


def _spawn(name: str, command: list[str], port: int, workdir: Path, env: dict[str, str], cpus: str | None) -> Service:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            pinned(command, cpus), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Service(name=name, url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)


def _wait_until_up(service: Service, path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited at start-up; its output:\n{service.log_path.read_text()}")
        try:
            with urllib.request.urlopen(service.url + path, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                service.stop()
                raise RuntimeError(f"{service.name} did not answer {path} within {timeout} s") from None
            time.sleep(0.05)


def get_json(url: str) -> dict:
    """GET ``url`` and decode its JSON answer."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
