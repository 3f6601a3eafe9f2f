"""The servers of a cluster, as the server this instance connects to knows them (``system.clusters``).

Used for what a Distributed table cannot do by itself without a distributed DDL queue
(which needs ZooKeeper): creating the local table on every shard, and emptying them all.
"""

from __future__ import annotations

from clickhouse_driver import Client

from .target import Target


def cluster_servers(client: Client, target: Target, cluster: str) -> list[Target]:
    """One target per server of ``cluster`` (every replica of every shard), with this instance's credentials.

    Raises ``LookupError`` when the server has no such cluster in its ``remote_servers``.
    """
    rows = client.execute(
        "SELECT host_name, port FROM system.clusters WHERE cluster = %(cluster)s ORDER BY shard_num, replica_num",
        {"cluster": cluster},
    )
    if not rows:
        raise LookupError(f"ClickHouse at {target.masked()} has no cluster named {cluster!r} in its remote_servers")
    return [target.at(host, int(port)) for host, port in rows]


def is_same_server(a: Target, b: Target) -> bool:
    """True when both name the same host and port (the local shard)."""
    local = {"localhost", "127.0.0.1", "::1"}
    same_host = a.host == b.host or (a.host in local and b.host in local)
    return same_host and a.port == b.port
