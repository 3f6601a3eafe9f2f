"""Real ClickHouse servers for tests: one server, or two as two shards of one cluster.

Each server gets its own config directory, data directory and free loopback ports, runs as
the current user (root included: clickhouse-server 18.16 does not refuse it), and can be
stopped and started again on the same ports and data (an outage).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from clickhouse_driver import Client

from ccproxy_core.testing import free_port
from tests.tools import tool_path

USER = "ccproxy"
PASSWORD = "ch-s3cret-pw"


def clickhouse_binary() -> str:
    """The clickhouse-server program (a test calling this is marked ``needs_tool("clickhouse")``)."""
    return tool_path("clickhouse")


def _users_xml() -> str:
    networks = "<networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
    return f"""<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password>{networks}<profile>default</profile><quota>default</quota></default>
    <{USER}><password>{PASSWORD}</password>{networks}<profile>default</profile><quota>default</quota></{USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def _remote_servers(cluster: str, ports: list[int]) -> str:
    shards = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{port}</port><user>{USER}</user>"
        f"<password>{PASSWORD}</password></replica></shard>"
        for port in ports
    )
    return f"<remote_servers><{cluster}>{shards}</{cluster}></remote_servers>"


class ClickHouseServer:
    """One clickhouse-server process with its own directories and ports."""

    def __init__(self, binary: str, workdir: Path, name: str, tcp_port: int | None = None) -> None:
        self.binary = binary
        self.dir = workdir / name
        self.port = tcp_port or free_port()
        self.process: subprocess.Popen | None = None
        self.remote_servers = ""

    @property
    def url(self) -> str:
        return f"clickhouse://{USER}:{PASSWORD}@127.0.0.1:{self.port}/ccproxy"

    def write_config(self) -> Path:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.dir / "users.xml").write_text(_users_xml())
        config = self.dir / "config.xml"
        config.write_text(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{self.dir}/server.log</log><errorlog>{self.dir}/server.err.log</errorlog></logger>
  <tcp_port>{self.port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{data}/</path>
  <tmp_path>{data}/tmp/</tmp_path>
  <user_files_path>{data}/user_files/</user_files_path>
  <format_schema_path>{data}/format_schemas/</format_schema_path>
  <users_config>{self.dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <timezone>UTC</timezone>
  {self.remote_servers}
</yandex>
""")
        return config

    def start(self, timeout: float = 60.0) -> ClickHouseServer:
        config = self.write_config()
        out = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen(
            [self.binary, f"--config-file={config}"], stdout=out, stderr=subprocess.STDOUT, cwd=self.dir
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"clickhouse-server exited: {(self.dir / 'server.err.log').read_text(errors='replace')[-2000:]}"
                )
            try:
                Client("127.0.0.1", port=self.port, connect_timeout=1).execute("SELECT 1")
                return self
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"clickhouse-server on port {self.port} not ready in {timeout} s") from None
                time.sleep(0.2)

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        client = Client("127.0.0.1", port=self.port, user=USER, password=PASSWORD)
        try:
            return client.execute(sql, params)
        finally:
            client.disconnect()


def start_cluster(binary: str, workdir: Path, cluster: str, shards: int = 2) -> list[ClickHouseServer]:
    """``shards`` servers, each one shard of ``cluster`` in every server's remote_servers."""
    servers = [ClickHouseServer(binary, workdir, f"shard{i + 1}") for i in range(shards)]
    section = _remote_servers(cluster, [server.port for server in servers])
    for server in servers:
        server.remote_servers = section
        server.start()
    return servers
