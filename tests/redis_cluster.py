"""A real Redis Cluster on loopback ports for the tests: lake_client.local.redis_cluster's
three masters with a replica each, plaintext and without a password, in a temporary folder that
goes with stop(). Nodes can be killed to force a failover."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from lake_client.local.redis_cluster import NODES, Cluster, free_ports

__all__ = ["LocalRedisCluster", "free_ports"]

NODE_TIMEOUT_MS = 1000  # a dead master is replaced after about this long


@dataclass
class LocalRedisCluster:
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lake-rc-")))
    ports: list[int] = field(default_factory=lambda: free_ports(NODES))

    @property
    def nodes(self) -> Cluster:
        return Cluster(
            home=self.home, ports=self.ports, node_timeout_ms=NODE_TIMEOUT_MS, persistent=False
        )

    def start(self) -> LocalRedisCluster:
        try:
            self.nodes.start()
        except BaseException:
            self.stop()  # no servers left behind by a cluster that did not come up
            raise
        return self

    def client(self) -> RedisCluster:
        return self.nodes.client()

    def healthy(self) -> bool:
        return self.nodes.healthy()

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`."""
        with contextlib.closing(self.client()) as client:
            return int(client.get_node_from_key(key).port)

    def kill(self, port: int) -> None:
        pid = self.nodes.pid(port)
        assert pid is not None, f"node {port} does not run"
        Cluster(home=self.home, ports=[port]).stop(kill=True)

    def wait_failover(self, dead: int, key: str, timeout: float = 30) -> None:
        """Until a live node serves `key`, which the dead master held, and the cluster is ok."""
        Cluster.wait(lambda: self.healthy() and self.master_of(key) != dead, "a failover", timeout)

    def fail_over(self, master: int) -> int:
        """A manual failover (CLUSTER FAILOVER on its replica, which first takes every write the
        master has): the replica's port, once it serves the master's slots."""
        with redis.Redis(port=master, decode_responses=True) as node:
            nodes = node.execute_command("CLUSTER NODES")
        master_id = next(n["node_id"] for a, n in nodes.items() if a.endswith(f":{master}"))
        replica = next(
            int(a.rsplit(":", 1)[1]) for a, n in nodes.items() if n["master_id"] == master_id
        )
        with redis.Redis(port=replica) as node:
            node.execute_command("CLUSTER FAILOVER")

        def promoted() -> bool:
            with redis.Redis(port=replica, decode_responses=True) as node:
                role = node.execute_command("ROLE")
            return bool(role[0] == "master") and self.healthy()

        Cluster.wait(promoted, "the replica to take over")
        return replica

    def stop(self) -> None:
        self.nodes.stop(kill=True)
        shutil.rmtree(self.home, ignore_errors=True)
