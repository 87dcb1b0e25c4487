"""The container's entrypoint (docker/Dockerfile, docker/compose.yaml): ``lake-entrypoint ROLE``.

Roles that serve run in the foreground until SIGTERM or SIGINT, then stop cleanly (exit 0):

``db``       the embedded PostgreSQL (initdb on first run; TCP on LAKE_PG_LISTEN, TLS 1.3 only),
             the lake's database created and migrated, then watched; exit 1 if it dies.
``serve``    ``lake serve`` (HTTPS: /health/ready, /metrics, /status); extra arguments go to it.
``bridge``   ``lake bridge``; ``grpc``: ``lake grpc``. These three, and ``migrate`` (one-shot),
             first wait for the database (LAKE_WAIT_S, default 120 s), create it if missing and
             migrate (one container at a time: an advisory lock).
``redis-node``            one node of a Redis Cluster (TLS 1.3, the lake's CA, its own host name).
``redis-cluster-create``  one-shot: join LAKE_REDIS_NODES (host:port, comma-separated) into
                          3 masters with a replica each, unless they already form the cluster.
``init``     one-shot: the lake's CA and secrets on the shared volume, before the others start.
``health``   exit 0 when LAKE_HEALTH_URL (default https://127.0.0.1:9478/health/ready) answers
             200 over HTTPS verified against the lake's CA; ``health db`` and ``health
             redis-node`` ask the container's own server instead, ``health URL`` that page.

Secrets stay on the volume, not in compose.yaml: LAKE_PG_PASSWORD_FILE becomes PGPASSWORD (the
password of LAKE_DSN's login) and LAKE_REDIS_PASSWORD_FILE fills the password of a LAKE_REDIS_URL
that names none. Errors are one line and a hint on stderr; exit 1 for a failure, 2 for usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lake_client.config import Settings, load_settings
from lake_client.errors import ClusterError, ConfigurationError, LakeError
from lake_client.local import postgres, redis_cluster, tls
from lake_client.local.processes import (
    Paths,
    exclusive,
    mkdir,
    prepare_home,
    secret,
    server_user,
    write_private,
)
from lake_client.queries import sql

SERVING = ("db", "serve", "bridge", "grpc", "redis-node")
ONE_SHOT = ("init", "migrate", "redis-cluster-create", "health")
ROLES = SERVING + ONE_SHOT
TAKE_ARGUMENTS = ("serve", "bridge", "grpc")  # `lake ROLE ARGS`
WAIT_S = 120.0  # LAKE_WAIT_S: how long a role waits for the database or the Redis nodes
HEALTH_URL = "https://127.0.0.1:9478/health/ready"
REDIS_NODE_PORT = 6379
REDIS_NODE_HOME = Path("/var/lib/datapunk-redis")  # a node's volume (LAKE_REDIS_NODE_HOME)
TLS_CHECK_S = 60.0  # how often a node looks for its renewed certificate


def say(message: str) -> None:
    print(f"lake-entrypoint: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-entrypoint",
        description="Run one of the lake's processes in a container (see lake_client.entrypoint).",
    )
    parser.add_argument("role", choices=ROLES, help="what this container runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="extra arguments for the role")
    options = parser.parse_args(argv)
    if options.args and options.role not in (*TAKE_ARGUMENTS, "health"):
        parser.error(f"the {options.role} role takes no arguments (given: {options.args})")
    try:
        return run(options.role, list(options.args))
    except LakeError as exc:
        print(f"lake-entrypoint: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1


def run(role: str, args: list[str]) -> int:
    _secrets_from_files()
    if role == "health":
        return health(args)
    if role == "init":
        init(load_settings())
        return 0
    if role == "db":
        return db(load_settings())
    if role == "redis-node":
        return redis_node(load_settings())
    if role == "redis-cluster-create":
        redis_cluster_create(load_settings())
        return 0
    settings = load_settings()
    prepare_database(settings)
    if role == "migrate":
        return 0
    return _lake(role, args)  # serve, bridge, grpc


# -- secrets ---------------------------------------------------------------------------------


def _read_secret(variable: str) -> str | None:
    path = os.environ.get(variable, "").strip()
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"{variable}={path}: cannot read it ({exc.strerror})",
            hint="run the `init` role first (it writes the secrets), or fix the path",
        ) from None


def _secrets_from_files() -> None:
    pg = _read_secret("LAKE_PG_PASSWORD_FILE")
    if pg is not None and "PGPASSWORD" not in os.environ:
        os.environ["PGPASSWORD"] = pg
    url = os.environ.get("LAKE_REDIS_URL")
    password = _read_secret("LAKE_REDIS_PASSWORD_FILE") if url else None
    if url and password is not None:
        parts = urlsplit(url)
        if parts.password is None:
            netloc = f"{parts.username or ''}:{quote(password, safe='')}@{parts.netloc}"
            os.environ["LAKE_REDIS_URL"] = urlunsplit(parts._replace(netloc=netloc))


def _wait_s() -> float:
    value = os.environ.get("LAKE_WAIT_S", "").strip()
    try:
        return float(value) if value else WAIT_S
    except ValueError:
        raise ConfigurationError(
            f"LAKE_WAIT_S={value!r} is not a number of seconds", hint="e.g. LAKE_WAIT_S=120"
        ) from None


# -- the database ----------------------------------------------------------------------------


def prepare_database(s: Settings) -> None:
    """Wait until the database answers (creating it if missing), then migrate it, one container
    at a time."""
    dsn = s.dsn()
    deadline = time.monotonic() + _wait_s()
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
                say("database reached; migrating…")
                conn.execute(sql("entry_migrate_lock"))
                from lake_client import migrate  # Alembic: only for the roles that migrate

                migrate.upgrade(dsn)
                say(f"schema at revision {migrate.current_revision(dsn)}")
                return
        except psycopg.OperationalError as exc:
            text = str(exc).strip()
            if "does not exist" in text and f'"{_dbname(dsn)}"' in text:
                _create_database(dsn)
                continue
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the database did not answer within {_wait_s():.0f} s: "
                    f"{text.splitlines()[-1] if text else type(exc).__name__}",
                    hint="check LAKE_DSN (and LAKE_PG_PASSWORD_FILE), and that the db runs",
                ) from None
            time.sleep(1)


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn).get("dbname") or os.environ.get("PGDATABASE") or "")


def _create_database(dsn: str) -> None:
    name = _dbname(dsn)
    say(f"creating the database {name!r}…")
    try:
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as conn:
            if conn.execute(sql("entry_database_exists"), {"name": name}).fetchone() is None:
                stmt = pgsql.SQL(sql("entry_create_database"))
                conn.execute(stmt.format(database=pgsql.Identifier(name)))
    except psycopg.Error as exc:
        raise ClusterError(
            f"could not create the database {name!r}: {str(exc).strip()}",
            hint="create it yourself, or give LAKE_DSN a login that may (CREATEDB)",
        ) from None


class _Stop:
    """SIGTERM and SIGINT set ``requested``: the foreground roles then stop cleanly."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def db(s: Settings) -> int:
    """The embedded PostgreSQL in the foreground (role ``db``)."""
    if not s.embedded:
        raise ConfigurationError(
            "the db role runs the embedded PostgreSQL, but LAKE_DSN or PG* variables are set",
            hint="unset LAKE_DSN and the PG* variables in the db container",
        )
    stop = _Stop()  # first: a SIGTERM while starting still stops the server
    paths = Paths(s.home)
    try:
        with exclusive(paths, create=True):
            postgres.up(s, say)
        prepare_database(s)  # under the lock the doors take too: one migration at a time
        say(f"PostgreSQL ready on {s.pg_listen}:{s.pg_port}; schema migrated")
        while not stop.requested:
            time.sleep(0.5)
            if postgres.postmaster(paths) is None:
                raise ClusterError(
                    "PostgreSQL stopped unexpectedly", hint=f"see the logs in {paths.log}"
                )
    finally:
        with exclusive(paths, create=False):
            postgres.down(s)
    say("PostgreSQL stopped")
    return 0


def init(s: Settings) -> None:
    """The CA and the secrets on the shared volume (role ``init``): made once, kept after."""
    paths = Paths(s.home)
    with exclusive(paths, create=True):
        user = server_user(paths)
        prepare_home(paths, user)
        tls.ensure_ca(paths, user, say)
        for path in (paths.pg_password, paths.redis_password):
            secret(path)
    say(f"CA and secrets ready in {s.home}")


# -- the doors -------------------------------------------------------------------------------


def _lake(role: str, args: list[str]) -> int:
    """``lake ROLE ARGS`` in this process; SIGTERM is Ctrl-C for it (each door stops cleanly
    on KeyboardInterrupt; the bridge takes SIGTERM itself)."""
    from lake_client import cli

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        cli.app(args=[role, *args], prog_name="lake")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def health(args: list[str]) -> int:
    """Exit 0 when the service answers: /health/ready for the doors, else the own server."""
    what = args[0] if args else "ready"
    s = load_settings()
    if what == "db":
        try:
            with psycopg.connect(s.dsn(), connect_timeout=3):
                return 0
        except psycopg.Error as exc:
            say(f"unhealthy: {str(exc).strip() or type(exc).__name__}")
            return 1
    if what == "redis-node":
        node = _node_cluster(s, secret(Paths(s.home).redis_password))
        try:
            with contextlib.closing(node.node(node.ports[0], timeout=3)) as client:
                client.ping()
            return 0
        except (OSError, redis.RedisError) as exc:
            say(f"unhealthy: {exc}")
            return 1
    if what.startswith(("http://", "https://")):
        url = what  # another server of the image (Prometheus, an exporter): its own page
    elif what == "ready":
        url = os.environ.get("LAKE_HEALTH_URL", "").strip() or HEALTH_URL
    else:
        raise ConfigurationError(
            f"unknown health check {what!r}",
            hint="health (LAKE_HEALTH_URL), health db, health redis-node or health URL",
        )
    from lake_client.transport import client_context

    context = client_context(s.ca_file) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as reply:
            ok = reply.status == 200
    except urllib.error.HTTPError as exc:
        say(f"unhealthy: {url} answered {exc.code}: {exc.read(300).decode(errors='replace')}")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        say(f"unhealthy: {url}: {getattr(exc, 'reason', exc)}")
        return 1
    return 0 if ok else 1


# -- Redis Cluster nodes ---------------------------------------------------------------------


def _node_cluster(s: Settings, password: str) -> redis_cluster.Cluster:
    files = tls.files(Paths(s.home))
    name = f"redis-{socket.gethostname()}"
    port = int(os.environ.get("LAKE_REDIS_NODE_PORT", "") or REDIS_NODE_PORT)
    return redis_cluster.Cluster(
        home=Path(os.environ.get("LAKE_REDIS_NODE_HOME", "") or REDIS_NODE_HOME),
        ports=[port],
        password=password,
        tls=redis_cluster.NodeTls(files.cert(name), files.key(name), files.ca_cert),
        host=os.environ.get("LAKE_REDIS_NODE_BIND", "") or "0.0.0.0",
    )


def redis_node(s: Settings) -> int:
    """One Redis Cluster node in the foreground (role ``redis-node``): its certificate (for its
    host name) issued from the lake's CA, then redis-server as a child that gets this process's
    SIGTERM and SIGINT (SIGTERM: it saves and exits) and takes its certificate again each
    minute once the database's server_certs job renewed the file. Exit: redis-server's."""
    paths = Paths(s.home)
    user = server_user(paths)
    host = socket.gethostname()
    name = f"redis-{host}"
    tls.ensure_server_cert(paths, user, name, say, client=True)  # the bus asks for a client's
    node = _node_cluster(s, secret(paths.redis_password))
    node.user = user
    port = node.ports[0]
    mkdir(node.folder(port), 0o700, user)
    conf = node.folder(port) / "redis.conf"
    write_private(conf, node.conf(port, daemonize=False, announce=host), user)
    say(f"Redis Cluster node {host}:{port}")
    proc = subprocess.Popen(user.argv(["redis-server", str(conf)]), env=user.env())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
    while True:
        try:
            return proc.wait(TLS_CHECK_S)
        except subprocess.TimeoutExpired:
            node.reload_tls(port)


def redis_cluster_create(s: Settings) -> None:
    """Join LAKE_REDIS_NODES into the cluster (role ``redis-cluster-create``), unless done."""
    nodes = [n.strip() for n in os.environ.get("LAKE_REDIS_NODES", "").split(",") if n.strip()]
    if len(nodes) != redis_cluster.NODES:
        raise ConfigurationError(
            f"LAKE_REDIS_NODES names {len(nodes)} nodes, not {redis_cluster.NODES}",
            hint="host:port of each node, comma-separated (3 masters and 3 replicas)",
        )
    password = secret(Paths(s.home).redis_password)

    def client(address: str) -> redis.Redis:
        host, port = address.rsplit(":", 1)
        return redis.Redis(
            host=host,
            port=int(port),
            password=password,
            ssl=True,
            ssl_ca_certs=str(s.ca_file),
            socket_timeout=3,
            socket_connect_timeout=3,
        )

    def all_answer() -> bool:
        for address in nodes:
            with contextlib.closing(client(address)) as c:
                c.ping()
        return True

    def cluster_ok() -> bool:
        with contextlib.closing(client(nodes[0])) as c:
            info = c.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        return redis_cluster.cluster_info(info).get("cluster_state") == "ok"

    redis_cluster.Cluster.wait(all_answer, "every node to answer", _wait_s())
    if cluster_ok():
        say("the nodes form the cluster already")
        return
    # redis-cli --cluster create wants addresses; the nodes announce their host names.
    addresses = []
    for address in nodes:
        host, port = address.rsplit(":", 1)
        addresses.append(f"{socket.gethostbyname(host)}:{port}")
    say(f"creating the cluster of {', '.join(nodes)}…")
    redis_cluster.create(addresses, password, s.ca_file)
    redis_cluster.Cluster.wait(cluster_ok, "every slot to be served", _wait_s())
    say("cluster ok")


if __name__ == "__main__":
    sys.exit(main())
