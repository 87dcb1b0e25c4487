"""Where the lake lives: the embedded default or a server named by a DSN / the PG* variables.

Resolution order for PostgreSQL:
  1. ``LAKE_DSN`` (a libpq conninfo string or URI);
  2. any of the standard libpq variables (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``,
     ``PGSERVICE``): libpq reads them itself, so the DSN is left empty;
  3. the embedded cluster under ``LAKE_HOME`` (default: see ``lake_home``).
Reads may go elsewhere: ``LAKE_READ_DSN`` (a hot standby; see Lake's read methods).
Redis: ``LAKE_REDIS_URL`` (a Redis Cluster's node when ``LAKE_REDIS_CLUSTER=1``), else the local
Redis Cluster of ``lake up --redis-cluster`` when it was started in LAKE_HOME, else the embedded
``redis-server`` (TLS only: ``rediss://``, verified
against the lake's CA, ``LAKE_HOME/tls/ca.crt``). An external Redis behind TLS signed by its own CA
names that CA in its URL: ``rediss://:pw@host:6380/0?ssl_ca_certs=/path/to/ca.crt``.

The schema's sources (sql/, plpython/, migrations/) are found by ``source_root``, from a checkout
as from an installed wheel.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lake_client.errors import ConfigurationError

PG_ENV_VARS = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGHOSTADDR")

DEFAULT_PG_PORT = 55433
DEFAULT_REDIS_PORT = 56379
DEFAULT_AMQP_PORT = 55672
DEFAULT_POOL_PORT = 56432
DEFAULT_DATABASE = "lake"
DEFAULT_PG_LISTEN = "127.0.0.1"


def source_root() -> Path:
    """The folder that holds sql/, plpython/ and migrations/ (with alembic.ini). A wheel carries
    them inside the package (lake_client/sql, ...: pyproject maps the checkout's top-level
    folders there); a checkout, installed editable or not, has them beside lake_client/."""
    package = importlib.resources.files("lake_client")
    if not isinstance(package, Path):  # e.g. a zip import: PostgreSQL needs real files
        raise ConfigurationError(
            f"lake_client is not installed as files on disk ({package})",
            hint="install Datapunk Lake with pip into a virtualenv",
        )
    for root in (package, package.parent):
        if (root / "sql" / "manifest.txt").is_file():
            return root
    raise ConfigurationError(
        f"the lake's schema sources (sql/, plpython/, migrations/) are neither in {package} "
        f"nor beside it",
        hint="reinstall Datapunk Lake (pip install datapunk-lake) or use a complete checkout",
    )


def checkout_root() -> Path | None:
    """The source checkout lake_client runs from (editable install or PYTHONPATH), or None when
    it runs from an installed wheel."""
    root = source_root()
    return None if root == importlib.resources.files("lake_client") else root


def lake_home() -> Path:
    """Where the embedded cluster keeps its state: LAKE_HOME if set; in a checkout,
    <checkout>/.lake; installed from a wheel, $XDG_DATA_HOME/datapunk-lake (default
    ~/.local/share/datapunk-lake), or /var/lib/datapunk-lake for root. When root starts the lake
    from a checkout that the server user (postgres) cannot reach, e.g. under /root, the state goes
    to /var/lib/datapunk-lake/<checkout name>-<hash> instead, so `make demo` still just works."""
    env = os.environ.get("LAKE_HOME")
    if env:
        return Path(env).resolve()
    system = Path("/var/lib/datapunk-lake")
    root = checkout_root()
    if root is None:
        if os.geteuid() == 0:
            return system
        xdg = os.environ.get("XDG_DATA_HOME")
        # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
        data = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
        return data / "datapunk-lake"
    if os.geteuid() == 0 and not _traversable_by_others(root):
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
        return system / f"{root.name}-{digest}"
    return root / ".lake"


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


@dataclass(frozen=True)
class Settings:
    home: Path
    pg_port: int
    redis_port: int
    database: str
    external_dsn: str | None  # None: use the embedded cluster
    external_redis: str | None
    # The embedded RabbitMQ's (`lake up --with rabbitmq`), LAKE_AMQP_PORT; +1 and +2 its Erlang
    # distribution and epmd.
    amqp_port: int = DEFAULT_AMQP_PORT
    # Where the embedded PostgreSQL listens for TCP (`lake up --listen`, LAKE_PG_LISTEN): TLS 1.3
    # only (hostssl); the socket in run/ stays for the local administrator.
    pg_listen: str = DEFAULT_PG_LISTEN
    # A highly available lake (`lake up --replicas N`, lake_client.local.ha): every node's
    # PostgreSQL port, the first node's being pg_port. Empty: one server. With nodes, dsn() and
    # tcp_dsn() name them all and ask for the writable one (target_session_attrs=read-write), so
    # whoever connects again after a failover reaches the new primary.
    ha_ports: tuple[int, ...] = ()
    # Where the client's read methods go when set (LAKE_READ_DSN): a hot standby, which checks
    # the identity through a token the primary signed (lake.identity_token).
    read_dsn: str | None = None
    # The embedded pgbouncer's port (`lake up --with pgbouncer`, LAKE_POOL_PORT).
    pool_port: int = DEFAULT_POOL_PORT
    # Redis is a Redis Cluster (redis.cluster.RedisCluster): LAKE_REDIS_CLUSTER=1 with
    # LAKE_REDIS_URL naming one of its nodes, or the local one of `lake up --redis-cluster`.
    redis_cluster: bool = False

    @property
    def embedded(self) -> bool:
        return self.external_dsn is None

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def dsn(self, database: str | None = None) -> str:
        """A conninfo string for psycopg / libpq."""
        db = database or self.database
        if self.external_dsn is not None:
            if database is None:
                return self.external_dsn
            from psycopg.conninfo import make_conninfo

            return make_conninfo(self.external_dsn, dbname=db)
        if self.ha_ports:
            hosts = ",".join([str(self.socket_dir)] * len(self.ha_ports))
            ports = ",".join(str(p) for p in self.ha_ports)
            return (
                f"host={hosts} port={ports} user=postgres dbname={db} "
                "target_session_attrs=read-write"
            )
        return f"host={self.socket_dir} port={self.pg_port} user=postgres dbname={db}"

    @property
    def ca_file(self) -> Path:
        """The lake's CA certificate (lake_client.certs.TlsFiles.ca_cert): what clients of the
        embedded servers trust."""
        return self.home / "tls" / "ca.crt"

    def tcp_dsn(self, database: str | None = None, **extra: str) -> str:
        """A conninfo string for the embedded PostgreSQL over TCP: TLS, the server verified
        against the lake's CA (``verify-full``: its certificate must name 127.0.0.1). ``extra``
        adds parameters, e.g. ``user``, ``password``, ``sslcert``, ``sslkey``."""
        from psycopg.conninfo import make_conninfo

        ports = self.ha_ports or (self.pg_port,)
        params = {
            "host": ",".join(["127.0.0.1"] * len(ports)),
            "port": ",".join(str(p) for p in ports),
            "user": "postgres",
            "dbname": database or self.database,
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca_file),
        }
        if self.ha_ports:
            params["target_session_attrs"] = "read-write"
        return make_conninfo(**{**params, **extra})

    def redis_url(self) -> str:
        """The Redis URL for redis-py's ``from_url``. The embedded Redis speaks TLS only: the URL
        carries the CA to verify it with and asks for the host name to be checked."""
        if self.external_redis:
            return self.external_redis
        password = (self.home / "secrets" / "redis.password").read_text().strip()
        return (
            f"rediss://:{quote(password, safe='')}@127.0.0.1:{self.local_redis_port()}/0"
            f"?ssl_ca_certs={quote(str(self.ca_file), safe='')}&ssl_check_hostname=true"
        )

    def local_redis_port(self) -> int:
        """The port of the lake's own Redis: the first node of the local Redis Cluster when
        `lake up --redis-cluster` made one in LAKE_HOME (its ports.json), else LAKE_REDIS_PORT."""
        ports = local_cluster_ports(self.home)
        return ports[0] if ports else self.redis_port


def local_cluster_ports(home: Path) -> list[int]:
    """The node ports of the local Redis Cluster that `lake up --redis-cluster` made in
    ``home`` (lake_client.local.redis_cluster keeps them there), [] when it made none."""
    try:
        ports = json.loads((home / "redis-cluster" / "ports.json").read_text())
    except (OSError, ValueError):
        return []
    return [int(p) for p in ports] if isinstance(ports, list) else []


def load_settings() -> Settings:
    external: str | None = os.environ.get("LAKE_DSN")
    if external is None and any(os.environ.get(v) for v in PG_ENV_VARS):
        external = ""  # libpq takes everything from the PG* variables
    home = lake_home()
    external_redis = os.environ.get("LAKE_REDIS_URL")
    cluster = os.environ.get("LAKE_REDIS_CLUSTER", "").strip().lower() in ("1", "true", "yes")
    if external_redis is None and local_cluster_ports(home):
        cluster = True
    return Settings(
        home=home,
        pg_port=_port("LAKE_PG_PORT", DEFAULT_PG_PORT),
        redis_port=_port("LAKE_REDIS_PORT", DEFAULT_REDIS_PORT),
        database=os.environ.get("LAKE_DATABASE", DEFAULT_DATABASE),
        external_dsn=external,
        external_redis=external_redis,
        amqp_port=_port("LAKE_AMQP_PORT", DEFAULT_AMQP_PORT),
        pg_listen=os.environ.get("LAKE_PG_LISTEN", "").strip() or DEFAULT_PG_LISTEN,
        ha_ports=ha_ports(home) if external is None else (),
        read_dsn=os.environ.get("LAKE_READ_DSN") or None,
        pool_port=_port("LAKE_POOL_PORT", DEFAULT_POOL_PORT),
        redis_cluster=cluster,
    )


#: Written by `lake up --replicas N` (lake_client.local.ha): the nodes' PostgreSQL ports.
HA_PORTS_FILE = Path("ha") / "ports"


def ha_ports(home: Path) -> tuple[int, ...]:
    """The PostgreSQL ports of a highly available lake under ``home``; () for one server."""
    try:
        text = (home / HA_PORTS_FILE).read_text(encoding="ascii")
    except OSError:
        return ()
    try:
        return tuple(int(word) for word in text.split())
    except ValueError:
        raise ConfigurationError(
            f"{home / HA_PORTS_FILE} holds no port numbers",
            hint="run `lake up --replicas N` again, which writes it",
        ) from None


def _port(variable: str, default: int) -> int:
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise ConfigurationError(
            f"{variable}={value!r} is not a port number",
            hint=f"set {variable} to a number from 1 to 65535, or unset it for {default}",
        )
    return int(value)
