"""A highly available embedded lake (`lake up --replicas N`): Patroni manages the embedded
cluster as one primary and N streaming replicas, with etcd as its store.

Node 0 is the embedded cluster itself (``LAKE_HOME/pg`` on ``LAKE_PG_PORT``): `lake up` creates
it as for one server (initdb, the lake's database), adds the replication role, stops it and hands
it to Patroni, which takes it over as the leader. Node i >= 1 lives in ``LAKE_HOME/ha/pg<i>``,
made by Patroni with pg_basebackup from the leader. Every node takes the lake's settings from
Patroni's configuration, which is derived from the one definition of them
(:func:`lake_client.local.postgres.server_settings`), so lake.conf is no longer included.

Replication is synchronous (Patroni's ``synchronous_mode``): a commit returns once a standby has
flushed its WAL, and Patroni promotes only that standby, so an acknowledged commit survives the
loss of the primary. Replication connections use TLS (``hostssl replication`` for the role
``lake_replicator``, the server verified against the lake's CA). A primary that loses etcd demotes
itself (Patroni's default, no failsafe mode): no split brain, and no node is writable until etcd
is back.

Ports, given ``base`` = ``LAKE_HA_PORT`` or else ``LAKE_PG_PORT + 10``: replica i's PostgreSQL on
``base + i - 1``, node i's Patroni REST API on ``base + 10 + i``, etcd's client and peer ports
``base + 20`` and ``base + 21``, all on 127.0.0.1. The nodes' PostgreSQL ports are written to
``LAKE_HOME/ha/ports``: :func:`lake_client.config.load_settings` reads them, and the DSN then
names every node with ``target_session_attrs=read-write`` (every client reaches the primary,
whichever node it is). All nodes share the socket folder ``LAKE_HOME/run``.

Layout under ``LAKE_HOME/ha`` (owned by the server user): ``layout.json`` (the ports),
``ports``, ``etcd/`` (its data), ``patroni<i>.yml`` (mode 0600: passwords), ``pgpass<i>``,
``pg<i>/``; logs in ``LAKE_HOME/log``: ``etcd.log``, ``patroni<i>.log``, PostgreSQL's JSON logs of
node i >= 1 in ``log/pg<i>/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lake_client.config import HA_PORTS_FILE, Settings
from lake_client.errors import ClusterError
from lake_client.local import postgres
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    ServerUser,
    check_port_free,
    mkdir,
    process_alive,
    secret,
    server_user,
    tail_file,
    wait_gone,
    write_private,
)
from lake_client.local.tls import ensure_server_cert

SCOPE = "lake"  # Patroni's cluster name (etcd keys under /service/lake)
REPLICATION_USER = "lake_replicator"
# Patroni's timing: a leader that stops renewing its key (ttl) loses it after TTL_S; Patroni's
# loop runs every LOOP_WAIT_S; a store or PostgreSQL that does not answer within RETRY_TIMEOUT_S
# makes the primary demote itself (ttl >= loop_wait + 2 * retry_timeout, as Patroni requires).
TTL_S = 10
LOOP_WAIT_S = 1
RETRY_TIMEOUT_S = 4
START_TIMEOUT_S = 180.0  # a new replica's pg_basebackup included
STOP_TIMEOUT_S = 60.0
PATRONI_NAMES = ("patroni", "python3", "python")  # its command name as /proc shows it
ETCD_NAMES = ("etcd",)
HA_PORT_ENV = "LAKE_HA_PORT"
LAYOUT_FILE = "layout.json"
# Settings Patroni passes on the command line: only those in its store take effect.
_STORE_ONLY = frozenset(
    {
        "max_connections",
        "max_locks_per_transaction",
        "max_worker_processes",
        "max_prepared_transactions",
        "wal_level",
        "wal_log_hints",
        "track_commit_timestamp",
        "max_wal_senders",
        "max_replication_slots",
        "wal_keep_size",
    }
)
# What replication needs beside the lake's settings.
_REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "hot_standby": "on",
    "wal_log_hints": "on",  # pg_rewind: an old primary rejoins without a new base backup
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "256MB",
    "hot_standby_feedback": "on",  # a replica's readers keep the rows they read
}


@dataclass(frozen=True)
class Layout:
    """Where the nodes of a highly available lake live and listen."""

    home: Path
    pg_ports: tuple[int, ...]  # node 0 (the embedded cluster) first
    rest_ports: tuple[int, ...]  # each node's Patroni REST API
    etcd_ports: tuple[int, int]  # client, peer

    @property
    def folder(self) -> Path:
        return self.home / "ha"

    @property
    def nodes(self) -> int:
        return len(self.pg_ports)

    def name(self, node: int) -> str:
        return f"node{node}"

    def data_dir(self, node: int) -> Path:
        return Paths(self.home).pg_data if node == 0 else self.folder / f"pg{node}"

    def log_dir(self, node: int) -> Path:
        log = Paths(self.home).log
        return log if node == 0 else log / f"pg{node}"

    def config(self, node: int) -> Path:
        return self.folder / f"patroni{node}.yml"

    def pidfile(self, node: int) -> Path:
        return Paths(self.home).run / f"patroni{node}.pid"

    def log(self, node: int) -> Path:
        return Paths(self.home).log / f"patroni{node}.log"

    @property
    def etcd_dir(self) -> Path:
        return self.folder / "etcd"

    @property
    def etcd_pidfile(self) -> Path:
        return Paths(self.home).run / "etcd.pid"

    @property
    def etcd_log(self) -> Path:
        return Paths(self.home).log / "etcd.log"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_ports[0]}"

    def rest_url(self, node: int) -> str:
        return f"http://127.0.0.1:{self.rest_ports[node]}"

    def to_json(self) -> str:
        return json.dumps(
            {"pg": self.pg_ports, "rest": self.rest_ports, "etcd": self.etcd_ports}, indent=1
        )


def derived_layout(s: Settings, replicas: int) -> Layout:
    """The layout of `lake up --replicas N`: ports from LAKE_HA_PORT (or LAKE_PG_PORT + 10)."""
    if not 1 <= replicas <= 9:
        raise ClusterError(
            f"--replicas {replicas}: a highly available lake has 1 to 9 replicas",
            hint="use --replicas 2 (one primary, two replicas)",
        )
    raw = os.environ.get(HA_PORT_ENV, "").strip()
    base = int(raw) if raw.isdigit() else s.pg_port + 10
    if base + 21 > 65535:
        raise ClusterError(
            f"the HA ports from {base} run past 65535", hint=f"set {HA_PORT_ENV} lower"
        )
    return Layout(
        home=s.home,
        pg_ports=(s.pg_port, *(base + i for i in range(replicas))),
        rest_ports=tuple(base + 10 + i for i in range(replicas + 1)),
        etcd_ports=(base + 20, base + 21),
    )


def saved_layout(home: Path) -> Layout | None:
    """The layout `lake up --replicas N` wrote under ``home``; None for a one-server lake."""
    try:
        doc = json.loads((home / "ha" / LAYOUT_FILE).read_text(encoding="utf-8"))
        return Layout(
            home=home,
            pg_ports=tuple(int(p) for p in doc["pg"]),
            rest_ports=tuple(int(p) for p in doc["rest"]),
            etcd_ports=(int(doc["etcd"][0]), int(doc["etcd"][1])),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ClusterError(
            f"{home / 'ha' / LAYOUT_FILE} cannot be read: {exc}",
            hint="restore it, or move LAKE_HOME/ha away to run one server again",
        ) from exc


# -- configuration ----------------------------------------------------------------------------


def hba_lines() -> list[str]:
    """The one server's pg_hba.conf, and TLS replication connections of REPLICATION_USER."""
    replication = [
        f"hostssl replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
        f"hostssl replication {REPLICATION_USER} ::1/128 scram-sha-256",
    ]
    first, *rest = postgres.HBA_LINES
    return [first, *replication, *rest]


def parameters(s: Settings, layout: Layout, node: int) -> dict[str, str]:
    """A node's PostgreSQL settings: the lake's (postgres.server_settings), without what Patroni
    sets from its own keys (port, listen_addresses), with what replication needs."""
    paths = Paths(s.home)
    params = {
        name: postgres.unquote_conf(value)
        for name, value in postgres.server_settings(s, paths, layout.log_dir(node))
        if name not in ("port", "listen_addresses")
    }
    return params | _REPLICATION_SETTINGS


def patroni_config(s: Settings, layout: Layout, node: int, bindir: Path) -> dict[str, Any]:
    """Patroni's configuration of one node (written as JSON, which is YAML)."""
    paths = Paths(s.home)
    password = secret(paths.pg_password)
    tls = {"sslmode": "verify-full", "sslrootcert": str(s.ca_file)}
    params = parameters(s, layout, node)
    listen = ",".join(a.strip() for a in s.pg_listen.split(","))
    return {
        "scope": SCOPE,
        "name": layout.name(node),
        "restapi": {
            "listen": f"127.0.0.1:{layout.rest_ports[node]}",
            "connect_address": f"127.0.0.1:{layout.rest_ports[node]}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{layout.etcd_ports[0]}"]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL_S,
                "loop_wait": LOOP_WAIT_S,
                "retry_timeout": RETRY_TIMEOUT_S,
                "maximum_lag_on_failover": 1 << 20,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {k: v for k, v in params.items() if k in _STORE_ONLY},
                },
            },
        },
        "postgresql": {
            "listen": f"{listen}:{layout.pg_ports[node]}",
            "connect_address": f"127.0.0.1:{layout.pg_ports[node]}",
            "data_dir": str(layout.data_dir(node)),
            "bin_dir": str(bindir),
            "pgpass": str(layout.folder / f"pgpass{node}"),
            "use_unix_socket": True,
            "use_unix_socket_repl": False,
            "authentication": {
                "superuser": {"username": "postgres", "password": password},
                "replication": {
                    "username": REPLICATION_USER,
                    "password": secret(paths.secrets / "replication.password"),
                    **tls,
                },
                "rewind": {"username": "postgres", "password": password, **tls},
            },
            "parameters": {k: v for k, v in params.items() if k not in _STORE_ONLY},
            "pg_hba": hba_lines(),
            "basebackup": [{"checkpoint": "fast"}],
            # An old primary that pg_rewind cannot bring back is made anew from the leader.
            "remove_data_directory_on_rewind_failure": True,
            "remove_data_directory_on_diverged_timelines": True,
        },
        "watchdog": {"mode": "off"},
    }


# -- processes --------------------------------------------------------------------------------


def _pid(pidfile: Path, names: Sequence[str]) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid, names) else None


def patroni_pid(layout: Layout, node: int) -> int | None:
    return _pid(layout.pidfile(node), PATRONI_NAMES)


def etcd_pid(layout: Layout) -> int | None:
    return _pid(layout.etcd_pidfile, ETCD_NAMES)


def _spawn(
    argv: list[str], user: ServerUser, log: Path, pidfile: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a server process of its own session, its output appended to ``log``."""
    with log.open("ab") as out:
        user.own(log)
        proc = subprocess.Popen(
            user.argv(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=user.env(),
            cwd=cwd,
            start_new_session=True,  # not stopped by the caller's Ctrl-C
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc


def start_etcd(layout: Layout, user: ServerUser, say: Say) -> None:
    if etcd_pid(layout) is not None:
        return
    for port in layout.etcd_ports:
        check_port_free(port, "etcd", HA_PORT_ENV)
    mkdir(layout.etcd_dir, 0o700, user)
    client, peer = layout.etcd_url, f"http://127.0.0.1:{layout.etcd_ports[1]}"
    say(f"starting etcd on port {layout.etcd_ports[0]}…")
    proc = _spawn(
        [
            "etcd",
            "--name",
            SCOPE,
            "--data-dir",
            str(layout.etcd_dir),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"{SCOPE}={peer}",
            "--log-level",
            "warn",
        ],
        user,
        layout.etcd_log,
        layout.etcd_pidfile,
        layout.folder,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{client}/health", timeout=2) as reply,
        ):
            if json.loads(reply.read()).get("health") == "true":
                return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise ClusterError(
        f"etcd did not start:\n{tail_file(layout.etcd_log)}", hint=f"read {layout.etcd_log}"
    )


def start_node(s: Settings, layout: Layout, node: int, say: Say) -> None:
    """Write node's Patroni configuration and start its Patroni (which starts PostgreSQL)."""
    if patroni_pid(layout, node) is not None:
        return
    paths = Paths(s.home)
    user = server_user(paths)
    if _postmaster(layout.data_dir(node)) is None:
        check_port_free(layout.pg_ports[node], "PostgreSQL", HA_PORT_ENV)
    check_port_free(layout.rest_ports[node], "Patroni", HA_PORT_ENV)
    mkdir(layout.log_dir(node), 0o750, user)
    config = patroni_config(s, layout, node, postgres.pg_bindir(paths))
    write_private(layout.config(node), json.dumps(config, indent=1) + "\n", user)
    say(f"starting Patroni {layout.name(node)} (PostgreSQL on port {layout.pg_ports[node]})…")
    argv = ["patroni", str(layout.config(node))]
    _spawn(argv, user, layout.log(node), layout.pidfile(node), layout.folder)


def _stop(pid: int | None, names: Sequence[str], timeout: float) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, names, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, names, 10.0)


def stop_node(layout: Layout, node: int) -> None:
    """Stop a node's Patroni, which stops its PostgreSQL (fast) first."""
    _stop(patroni_pid(layout, node), PATRONI_NAMES, STOP_TIMEOUT_S)


def kill_node(layout: Layout, node: int) -> None:
    """SIGKILL a node's Patroni and its postmaster at once: the machine is gone (for the tests
    and the bench). Its PostgreSQL children exit when they find the postmaster gone."""
    pids = [patroni_pid(layout, node), _postmaster(layout.data_dir(node))]
    for pid in pids:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in pids:
        if pid is not None:
            wait_gone(pid, (*PATRONI_NAMES, "postgres"), 10.0)


def _postmaster(data_dir: Path) -> int | None:
    """The pid of the postmaster running in data_dir, None if none runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_alive(pid, ("postgres", "postmaster")) else None


def stop_etcd(layout: Layout) -> None:
    _stop(etcd_pid(layout), ETCD_NAMES, 30.0)


# -- state ------------------------------------------------------------------------------------


def cluster(layout: Layout, timeout: float = 2.0) -> dict[str, Any] | None:
    """Patroni's view of the cluster (GET /cluster) from the first node that answers."""
    for node in range(layout.nodes):
        url = f"{layout.rest_url(node)}/cluster"
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(url, timeout=timeout) as r,
        ):
            doc = json.loads(r.read())
            if isinstance(doc, dict):
                return doc
    return None


def members(layout: Layout) -> dict[str, dict[str, Any]]:
    """name -> Patroni's member entry (role leader / sync_standby / replica, state, lag)."""
    doc = cluster(layout) or {}
    return {str(m["name"]): m for m in doc.get("members", []) if "name" in m}


def leader(layout: Layout) -> int | None:
    """The node that holds the leader key and runs, None if none does."""
    for name, member in members(layout).items():
        if member.get("role") == "leader" and member.get("state") == "running":
            return int(name.removeprefix("node"))
    return None


def _healthy(layout: Layout, node: int) -> bool:
    """Whether node's Patroni says its PostgreSQL runs (GET /health: 200)."""
    try:
        with urllib.request.urlopen(f"{layout.rest_url(node)}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:  # urllib.error.HTTPError (503: not running) is one
        return False


def wait_leader(layout: Layout, timeout: float = START_TIMEOUT_S) -> int:
    """Until a node runs as the leader; its number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = leader(layout)
        if found is not None:
            return found
        time.sleep(0.3)
    raise ClusterError(
        f"no Patroni node became the leader within {timeout:.0f} s:\n{tail_file(layout.log(0))}",
        hint=f"read the logs in {Paths(layout.home).log}",
    )


def wait_ready(layout: Layout, timeout: float = START_TIMEOUT_S) -> None:
    """Until a leader runs and every other node streams from it, one of them synchronously."""
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        seen = members(layout)
        roles = [m.get("role") for m in seen.values()]
        running = all(m.get("state") in ("running", "streaming") for m in seen.values())
        if (
            len(seen) == layout.nodes
            and running
            and roles.count("leader") == 1
            and (layout.nodes == 1 or "sync_standby" in roles)
            # each node's own answer too: a killed node's entry outlives it until its ttl
            and all(_healthy(layout, n) for n in range(layout.nodes))
        ):
            return
        time.sleep(0.5)
    logs = "\n".join(
        f"--- {layout.log(n)} ---\n{tail_file(layout.log(n), 8)}" for n in range(layout.nodes)
    )
    raise ClusterError(
        f"the highly available lake did not come up within {timeout:.0f} s "
        f"(members: {json.dumps(seen)}):\n{logs}",
        hint=f"read the logs in {Paths(layout.home).log}",
    )


# -- up and down ------------------------------------------------------------------------------


def _hand_over(s: Settings, layout: Layout, say: Say) -> None:
    """Make the one server node 0: the replication role, then stopped, its settings from Patroni."""
    paths = Paths(s.home)
    user = server_user(paths)
    postgres.up(s, say)  # initdb and the lake's database on first use
    password = secret(paths.secrets / "replication.password")
    with postgres.connect(s.dsn("postgres")) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_USER,)
        ).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                verb, sql.Identifier(REPLICATION_USER), sql.Literal(password)
            )
        )
    postgres.down(s)
    conf = paths.pg_data / "postgresql.conf"
    kept = [
        line
        for line in conf.read_text(encoding="utf-8").splitlines()
        if line.strip() != postgres.INCLUDE_LINE
    ]
    write_private(conf, "\n".join(kept) + "\n", user)
    paths.lake_conf.unlink(missing_ok=True)
    mkdir(layout.folder, 0o700, user)
    write_private(layout.folder / LAYOUT_FILE, layout.to_json() + "\n", user)
    say(f"the embedded cluster is now node0 of a Patroni cluster ({layout.nodes} nodes)")


def up(s: Settings, replicas: int | None, say: Say, layout: Layout | None = None) -> Settings:
    """Start etcd and every node's Patroni (creating the nodes on first use); wait until a
    leader runs and the replicas stream. Returns the settings with the nodes' ports. ``layout``
    (the tests': free ports) replaces the derived one when the lake is made."""
    for program in ("patroni", "etcd"):
        if shutil.which(program) is None:
            raise ClusterError(f"{program} is not installed", hint=SETUP_HINT)
    saved = saved_layout(s.home)
    if saved is None:
        layout = layout or derived_layout(s, replicas or 2)
        _hand_over(s, layout, say)
    else:
        layout = saved
    if replicas is not None and replicas != layout.nodes - 1:
        raise ClusterError(
            f"this lake runs {layout.nodes - 1} replicas, not {replicas}",
            hint=f"run `lake up --replicas {layout.nodes - 1}` (changing the count is not "
            "supported yet)",
        )
    paths = Paths(s.home)
    user = server_user(paths)
    listen = [a.strip() for a in s.pg_listen.split(",")]
    ensure_server_cert(paths, user, postgres.SERVER_CERT, say, extra_names=listen)
    start_etcd(layout, user, say)
    # Nodes without data are made from the leader: they start once there is one (else an empty
    # node could win the race and bootstrap a cluster of its own).
    made = [
        n for n in range(layout.nodes) if n == 0 or (layout.data_dir(n) / "PG_VERSION").exists()
    ]
    for node in made:
        start_node(s, layout, node, say)
    if len(made) < layout.nodes:
        wait_leader(layout)
        for node in range(layout.nodes):
            start_node(s, layout, node, say)
    wait_ready(layout)
    write_private(s.home / HA_PORTS_FILE, " ".join(map(str, layout.pg_ports)) + "\n", user)
    ready = dataclasses.replace(s, ha_ports=layout.pg_ports)
    _ensure_database(ready)
    return ready


def _ensure_database(s: Settings) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with postgres.connect(s.dsn("postgres")) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (s.database,)
                ).fetchone()
                if found is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.database)))
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the primary does not accept connections: {exc}",
                    hint=f"see the logs in {Paths(s.home).log}",
                ) from exc
            time.sleep(0.5)


def down(s: Settings) -> bool:
    """Stop the replicas' Patroni, then the leader's, then etcd. False for a one-server lake."""
    layout = saved_layout(s.home)
    if layout is None:
        return False
    first = leader(layout)
    order = [n for n in range(layout.nodes) if n != first] + ([first] if first is not None else [])
    for node in order:
        stop_node(layout, node)
    stop_etcd(layout)
    return True


def running(layout: Layout) -> bool:
    return any(patroni_pid(layout, n) is not None for n in range(layout.nodes))


def read_dsn(s: Settings, database: str | None = None) -> str:
    """A DSN for reads: a replica when one answers, else the primary (target_session_attrs
    prefer-standby), so a reader goes on when the node it used is gone."""
    return s.dsn(database).replace(
        "target_session_attrs=read-write", "target_session_attrs=prefer-standby"
    )
