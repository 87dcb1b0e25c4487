"""A real Redis Cluster on loopback ports for the tests: three masters, each with a replica,
started from the system's redis-server and joined with `redis-cli --cluster create`. Nodes can
be killed to force a failover. Everything lives in a temporary folder and goes with stop()."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

NODE_TIMEOUT_MS = 1000  # a dead master is replaced after about this long


def free_ports(n: int) -> list[int]:
    """n free loopback ports p whose cluster bus ports p + 10000 are free too, none of them the
    bus port of another (a node that cannot bind its bus port exits)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or {port, port + 10000, port - 10000} & set(ports):
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


@dataclass
class LocalRedisCluster:
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lake-rc-")))
    ports: list[int] = field(default_factory=lambda: free_ports(6))
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> LocalRedisCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no servers left behind by a cluster that did not come up
            raise

    def _start(self) -> LocalRedisCluster:
        for port in self.ports:
            folder = self.home / str(port)
            folder.mkdir()
            self.procs[port] = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    "--appendonly",
                    "no",
                    "--save",
                    "",
                    "--dir",
                    str(folder),
                    "--logfile",
                    str(folder / "redis.log"),
                    "--maxmemory-policy",
                    "volatile-lru",
                    # A replica takes over however long its master has been gone.
                    "--cluster-replica-validity-factor",
                    "0",
                    # A master syncs a replica at once, not after waiting 5 s for others.
                    "--repl-diskless-sync-delay",
                    "0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p).ping())  # type: ignore[misc]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in self.ports],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._wait(self.healthy)
        self._wait(self._replicas_in_sync)
        return self

    def _replicas_in_sync(self) -> bool:
        """Each master's replica has its writes: a write on each master is acknowledged by the
        replica (WAIT). A replica's link is up before that: after the first sync a master holds
        its writes back until the replica's first acknowledgement (up to a second), and a master
        killed in between would take them with it."""
        client = self.client()
        try:
            masters = {int(node.port) for node in client.get_primaries()}
            keys: dict[int, str] = {}
            for i in range(10_000):  # a key in each master's slots
                key = f"ready:{i}"
                keys.setdefault(int(client.get_node_from_key(key).port), key)
                if masters <= set(keys):
                    break
        finally:
            client.close()
        for port, key in keys.items():
            node = redis.Redis(port=port, socket_timeout=1)
            try:
                node.set(key, 1)
                acknowledged = node.wait(1, 100)
                node.delete(key)
            finally:
                node.close()
            if acknowledged < 1:
                return False
        return True

    def client(self) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports],
            socket_timeout=1,
            socket_connect_timeout=1,
        )

    def healthy(self) -> bool:
        """Every live node says the cluster is ok (all slots served)."""
        live = [p for p in self.ports if self.procs[p].poll() is None]
        for port in live:
            info = redis.Redis(port=port, socket_timeout=1, decode_responses=True).execute_command(
                "CLUSTER INFO"
            )
            state = info.get("cluster_state") if isinstance(info, dict) else None
            if state is None:
                state = "ok" if "cluster_state:ok" in str(info) else "fail"
            if state != "ok":
                return False
        return bool(live)

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)
            return int(node.port)
        finally:
            client.close()

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def wait_failover(self, dead: int, key: str, timeout: float = 30) -> None:
        """Until a live node serves `key`, which the dead master held, and the cluster is ok."""
        self._wait(lambda: self.healthy() and self.master_of(key) != dead, timeout)

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

        self._wait(promoted)
        return replica

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)

    @staticmethod
    def _wait(check: object, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"redis cluster not ready: {last}")
