"""A Redis Cluster of three masters with one replica each (the specification's three nodes,
replication factor 2), from the system's ``redis-server``, joined by ``redis-cli --cluster
create``. The one home of how the lake runs a cluster:

- ``lake up --redis-cluster`` (:func:`up`, :func:`down`, :func:`status`): TLS 1.3 only, with the
  lake's password, as the single embedded Redis, and a certificate of the lake's CA
  (``redis-cluster``: a server's and a client's, for the cluster bus asks for one). Ports are
  chosen free at the first start and kept in LAKE_HOME/redis-cluster/ports.json; each node's
  files (redis.conf, nodes.conf, append-only files, log, pid) are in
  LAKE_HOME/redis-cluster/<port>/.
  While ports.json exists the lake's Redis *is* this cluster (:func:`lake_client.config.
  Settings.redis_url` names its first node, ``Settings.redis_cluster`` is true), so ``lake up``
  starts it again instead of the single Redis, and the bridge, ``lake serve`` and the monitoring
  stack use it. Remove the folder after ``lake down`` to go back to the single Redis.
- the container image (lake_client/entrypoint.py: roles ``redis-node``, ``redis-cluster-create``),
  where each node runs in its own container under its host name.
- the tests' own clusters (tests/redis_cluster.py: plaintext, no password, a temporary folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from lake_client.config import Settings, local_cluster_ports
from lake_client.errors import ClusterError
from lake_client.local import tls
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    ServerUser,
    mkdir,
    prepare_home,
    process_alive,
    run,
    secret,
    server_user,
    tail_file,
    wait_gone,
    write_private,
)

MASTERS = 3
REPLICAS_PER_MASTER = 1
NODES = MASTERS * (1 + REPLICAS_PER_MASTER)
SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000
FOLDER = "redis-cluster"  # under LAKE_HOME
# The nodes' certificate: a server's and a client's, for the cluster bus asks each node for
# one (whatever tls-auth-clients says).
CERT = "redis-cluster"
NODE_TIMEOUT_MS = 5000  # a master unreachable this long is failed over to its replica
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
_NAMES = ("redis-server", "redis")


def free_ports(n: int) -> list[int]:
    """n free loopback ports p whose cluster bus ports p + 10000 are free too, none of them the
    bus port of another (a node that cannot bind its bus port exits)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + BUS_OFFSET > 65535 or {port, port + BUS_OFFSET, port - BUS_OFFSET} & set(ports):
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        ports.append(port)
    return ports


@dataclass(frozen=True)
class NodeTls:
    """A node's TLS files: it serves ``cert`` and verifies its peers (and the other nodes, on
    the cluster bus and for replication) against ``ca``."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class Cluster:
    """Six nodes on ``host``:``ports``, each in ``home``/<port>. Plaintext when ``tls`` is None
    (the tests' clusters); ``password`` is asked of clients and of the other nodes."""

    home: Path
    ports: list[int] = field(default_factory=lambda: free_ports(NODES))
    password: str | None = None
    tls: NodeTls | None = None
    host: str = "127.0.0.1"
    node_timeout_ms: int = NODE_TIMEOUT_MS
    persistent: bool = True  # append-only files (the tests' clusters keep nothing)
    user: ServerUser | None = None  # who runs the nodes (lake_client.local.processes)

    # -- configuration ---------------------------------------------------------------------

    def folder(self, port: int) -> Path:
        return self.home / str(port)

    def conf(self, port: int, *, daemonize: bool = True, announce: str | None = None) -> str:
        """A node's redis.conf. ``announce``: the host name the node gives clients and the other
        nodes (in containers, where each node is its own host), instead of its address."""

        def q(value: object) -> str:
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

        folder = self.folder(port)
        lines = [
            "# Written by lake_client.local.redis_cluster at each start: edits here are lost.",
            f"bind {self.host}",
            "protected-mode no" if self.password is None else "protected-mode yes",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {self.node_timeout_ms}",
            # A replica takes over however long its master has been gone.
            "cluster-replica-validity-factor 0",
            # A master syncs a replica at once, not after waiting 5 s for others.
            "repl-diskless-sync-delay 0",
            f"dir {q(folder)}",
            f"daemonize {'yes' if daemonize else 'no'}",
            f"pidfile {q(folder / 'redis.pid')}",
            f"logfile {q(folder / 'redis.log') if daemonize else q('')}",
            "always-show-logo no",
            "maxmemory-policy volatile-lru",
            f"appendonly {'yes' if self.persistent else 'no'}",
            "appendfsync everysec",
            'save ""',
        ]
        if self.tls is None:
            lines.append(f"port {port}")
        else:
            lines += [
                "port 0",  # TLS only, as the single embedded Redis
                f"tls-port {port}",
                f"tls-cert-file {q(self.tls.cert)}",
                f"tls-key-file {q(self.tls.key)}",
                f"tls-ca-cert-file {q(self.tls.ca)}",
                'tls-protocols "TLSv1.3"',
                "tls-auth-clients no",  # the password authenticates clients
                "tls-replication yes",
                "tls-cluster yes",
            ]
        if self.password is not None:
            lines += [f"requirepass {q(self.password)}", f"masterauth {q(self.password)}"]
        if announce is not None:
            lines += [
                f"cluster-announce-hostname {q(announce)}",
                "cluster-preferred-endpoint-type hostname",
            ]
        return "\n".join(lines) + "\n"

    # -- clients ---------------------------------------------------------------------------

    def _client_options(self, timeout: float) -> dict[str, object]:
        options: dict[str, object] = {
            "password": self.password,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        if self.tls is not None:
            options |= {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_check_hostname": True}
        return options

    def node(self, port: int, timeout: float = 1.0) -> redis.Redis:
        """A client of one node (no cluster redirections)."""
        return redis.Redis(host=self.host, port=port, **self._client_options(timeout))  # type: ignore[arg-type]

    def client(self, timeout: float = 1.0) -> RedisCluster:
        """A cluster client that starts from any of the nodes."""
        return RedisCluster(
            startup_nodes=[ClusterNode(self.host, p) for p in self.ports],  # type: ignore[no-untyped-call]
            **self._client_options(timeout),  # type: ignore[arg-type]
        )

    # -- running ---------------------------------------------------------------------------

    def pid(self, port: int) -> int | None:
        """The pid of the node's running redis-server, else None."""
        try:
            pid = int((self.folder(port) / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid, _NAMES) else None

    def start(self, say: Say | None = None) -> Cluster:
        """Start the nodes that do not run, join them into a cluster unless they form one
        already (a restart: each node's nodes.conf remembers it), and wait until every slot is
        served and each master's replica has its writes."""
        server = shutil.which("redis-server")
        if server is None:
            raise ClusterError("redis-server is not installed", hint=SETUP_HINT)
        for port in self.ports:
            if self.pid(port) is not None:
                continue
            folder = self.folder(port)
            mkdir(folder, 0o700, self.user)
            conf = folder / "redis.conf"
            write_private(conf, self.conf(port), self.user)
            if say is not None:
                say(f"starting Redis Cluster node on port {port}…")
            result = run(
                [server, str(conf)],
                what="redis-server",
                timeout=START_TIMEOUT_S,
                user=self.user,
                cwd=folder,
                check=False,
            )
            if result.returncode != 0:
                raise ClusterError(
                    f"the Redis Cluster node on port {port} did not start:\n"
                    + "\n".join(
                        p for p in (result.stdout.strip(), tail_file(folder / "redis.log")) if p
                    ),
                    hint=f"read {folder / 'redis.log'}",
                )
        for port in self.ports:
            self.wait(lambda p=port: self.node(p).ping(), f"node {port} to answer")  # type: ignore[misc]
        if not self.created():
            if say is not None:
                say(f"joining {NODES} nodes into a cluster of {MASTERS} masters…")
            self.create([f"{self.host}:{p}" for p in self.ports])
        self.wait(self.healthy, "every slot to be served")
        self.wait(self.replicas_in_sync, "each replica to have its master's writes")
        return self

    def created(self) -> bool:
        """Whether the nodes already form the cluster (every slot assigned, all nodes known)."""
        with contextlib.closing(self.node(self.ports[0])) as node:
            reply = node.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        info = cluster_info(reply)
        return info.get("cluster_slots_assigned") == str(SLOTS) and int(
            info.get("cluster_known_nodes", "0")
        ) >= len(self.ports)

    def create(self, addresses: list[str]) -> None:
        create(addresses, self.password, None if self.tls is None else self.tls.ca)

    def healthy(self) -> bool:
        """Every live node says the cluster is ok (all slots served)."""
        live = [p for p in self.ports if self.pid(p) is not None]
        for port in live:
            with contextlib.closing(self.node(port)) as node:
                reply = node.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
                if cluster_info(reply).get("cluster_state") != "ok":
                    return False
        return bool(live)

    def masters(self) -> list[int]:
        """The ports of the masters, as the cluster sees them."""
        with contextlib.closing(self.client()) as client:
            return sorted(int(node.port) for node in client.get_primaries())  # type: ignore[no-untyped-call]

    def replicas_in_sync(self) -> bool:
        """Each master's replica has its writes: a write on each master is acknowledged by the
        replica (WAIT). A replica's link is up before that: after the first sync a master holds
        its writes back until the replica's first acknowledgement (up to a second), and a master
        killed in between would take them with it."""
        with contextlib.closing(self.client()) as client:
            masters = {int(node.port) for node in client.get_primaries()}  # type: ignore[no-untyped-call]
            keys: dict[int, str] = {}
            for i in range(10_000):  # a key in each master's slots
                key = f"ready:{i}"
                keys.setdefault(int(client.get_node_from_key(key).port), key)  # type: ignore[no-untyped-call]
                if masters <= set(keys):
                    break
        for port, key in keys.items():
            with contextlib.closing(self.node(port)) as node:
                node.set(key, 1)
                acknowledged = node.wait(REPLICAS_PER_MASTER, 100)
                node.delete(key)
            if acknowledged < REPLICAS_PER_MASTER:
                return False
        return True

    def reload_tls(self, port: int) -> bool:
        """Make the node serve the certificate now in its file (after a renewal): when what it
        serves differs, CONFIG SET its TLS files, which Redis reads again (new connections get
        the new certificate). True when it did; a node that is down is left alone."""
        if self.tls is None:
            return False
        try:
            on_disk = ssl.PEM_cert_to_DER_cert(self.tls.cert.read_text())
            if tls.served_certificate("127.0.0.1", port, self.tls.ca) == on_disk:
                return False
            options = self._client_options(5.0)
            with redis.Redis(host="127.0.0.1", port=port, **options) as node:  # type: ignore[arg-type]
                node.config_set(
                    "tls-cert-file", str(self.tls.cert), "tls-key-file", str(self.tls.key)
                )
        except (OSError, ValueError, redis.RedisError):
            return False
        return True

    def stop(self, *, kill: bool = False) -> None:
        """Stop every node: SIGTERM (which saves), SIGKILL after STOP_TIMEOUT_S; or at once."""
        pids = [pid for pid in map(self.pid, self.ports) if pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        for pid in pids:
            if not wait_gone(pid, _NAMES, STOP_TIMEOUT_S):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid, _NAMES, 5.0)

    @staticmethod
    def wait(check: Callable[[], object], what: str, timeout: float = START_TIMEOUT_S) -> None:
        """Until ``check()`` is true (errors of a cluster still forming count as not yet)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (redis.RedisError, RedisClusterException, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise ClusterError(
            f"the Redis Cluster did not get ready: waited {timeout:.0f} s for {what}"
            + (f" ({last})" if last else "")
        )


def create(addresses: list[str], password: str | None, ca: Path | None) -> None:
    """``redis-cli --cluster create`` of six nodes at ``addresses`` (ip:port): the slots spread
    over three masters, a replica each. TLS when ``ca`` is given."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise ClusterError("redis-cli is not installed", hint=SETUP_HINT)
    argv = [cli, *(["--tls", "--cacert", str(ca)] if ca is not None else [])]
    argv += ["--cluster", "create", *addresses]
    argv += ["--cluster-replicas", str(REPLICAS_PER_MASTER), "--cluster-yes"]
    env = dict(os.environ)
    if password is not None:
        env["REDISCLI_AUTH"] = password  # not on the command line, where ps shows it
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    if result.returncode != 0:
        raise ClusterError(
            "redis-cli --cluster create failed:\n" + (result.stdout + result.stderr)[-1500:]
        )


def cluster_info(reply: object) -> dict[str, str]:
    """CLUSTER INFO as a dict, whichever way redis-py parsed it."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


# -- `lake up --redis-cluster` ----------------------------------------------------------------


def ports_file(home: Path) -> Path:
    return home / FOLDER / "ports.json"


def configured(home: Path) -> bool:
    """Whether this LAKE_HOME's Redis is the local cluster (``lake up --redis-cluster`` ran)."""
    return ports_file(home).is_file()


def for_settings(s: Settings, *, create: bool = False) -> Cluster:
    """The local cluster of LAKE_HOME; ``create``: choose its ports if none are kept yet."""
    paths = Paths(s.home)
    ports = local_cluster_ports(s.home)
    if not ports:
        if not create:
            raise ClusterError(
                "no local Redis Cluster in this LAKE_HOME", hint="run `lake up --redis-cluster`"
            )
        ports = free_ports(NODES)
    user = server_user(paths)
    files = tls.files(paths)
    return Cluster(
        home=s.home / FOLDER,
        ports=ports,
        password=secret(paths.redis_password),
        tls=NodeTls(files.cert(CERT), files.key(CERT), files.ca_cert),
        user=user,
    )


def up(s: Settings, say: Say) -> Cluster:
    """Start the local cluster (creating it on first use); idempotent. The caller holds the
    LAKE_HOME lock (lake_client.local.exclusive)."""
    paths = Paths(s.home)
    prepare_home(paths, server_user(paths))
    cluster = for_settings(s, create=True)
    tls.ensure_server_cert(paths, cluster.user, CERT, say, client=True)
    mkdir(cluster.home, 0o755, None)
    if not configured(s.home):
        ports_file(s.home).write_text(json.dumps(cluster.ports) + "\n")
    cluster.start(say)
    return cluster


def down(s: Settings) -> None:
    """Stop the local cluster's nodes, if any run (their data and ports are kept)."""
    if configured(s.home):
        for_settings(s).stop()


def status(s: Settings) -> list[str]:
    """Lines for `lake status`: each node, its role, and whether the cluster is ok."""
    if not configured(s.home):
        return []
    cluster = for_settings(s)
    lines = []
    try:
        running = any(cluster.pid(port) is not None for port in cluster.ports)
        state = ("ok" if cluster.healthy() else "not ok") if running else "not running"
    except (redis.RedisError, OSError):
        state = "not answering"
    lines.append(f"Redis Cluster: {state} ({MASTERS} masters, {REPLICAS_PER_MASTER} replica each)")
    for port in cluster.ports:
        role = "not running"
        if cluster.pid(port) is not None:
            try:
                with contextlib.closing(cluster.node(port)) as node:
                    reply = node.execute_command("ROLE")[0]  # type: ignore[no-untyped-call]
                    role = reply.decode() if isinstance(reply, bytes) else str(reply)
                    role = "replica" if role == "slave" else role
            except (redis.RedisError, OSError):
                role = "not answering"
        lines.append(f"  node 127.0.0.1:{port}: {role}")
    return lines
