"""The embedded cluster: a private PostgreSQL and Redis that the lake starts by itself.

Everything lives under ``Settings.home`` (``LAKE_HOME``, default ``<checkout>/.lake``)::

    pg/        PostgreSQL data directory; the lake's settings are in pg/lake.conf
    run/       Unix sockets and the Redis pid file (mode 0700, owned by the server user)
    log/       PostgreSQL JSON logs (postgresql-<day>.json), startup.log, redis.log
    redis/     redis.conf and Redis' append-only files
    secrets/   pg.password, redis.password and backup.passphrase (mode 0600, owned by the
               invoking user)
    tls/       the lake's CA and the servers' certificates (lake_client.certs.TlsFiles)
    pgbackrest/, backup/   pgBackRest's configuration and the backup repository (local.backup)
    redis-cluster/  the local Redis Cluster of `lake up --redis-cluster` (local.redis_cluster):
               ports.json and a folder per node; while it exists, the lake's Redis is that cluster

PostgreSQL listens on the socket in ``run/`` (trust, for the local OS user) and on
127.0.0.1:``LAKE_PG_PORT`` (SCRAM, user ``postgres``, password in ``secrets/pg.password``); Redis on
127.0.0.1:``LAKE_REDIS_PORT``, TLS 1.3 only, with the password in ``secrets/redis.password``.

Run as root, the servers run as the ``postgres`` OS user (PostgreSQL refuses to run as root), or as
the owner of an existing data directory; otherwise they run as the current user. Server binaries
come from the newest ``/usr/lib/postgresql/<major>/bin`` (or the one matching an existing data
directory; ``LAKE_PG_BINDIR`` overrides). ``docker/setup-debian.sh`` installs them.

With an external PostgreSQL (``LAKE_DSN`` or ``PG*`` variables) nothing is started for
PostgreSQL, and with ``LAKE_REDIS_URL`` nothing is started for Redis: :func:`up` then only checks
that they answer.

What runs PostgreSQL is in ``postgres``, Redis in ``redis_server``, and what they share (the
layout, the server user, subprocesses, the lock) in ``processes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from lake_client.config import Settings, load_settings
from lake_client.errors import ClusterError
from lake_client.local import (
    backup,
    ha,
    pgbouncer,
    postgres,
    rabbitmq,
    redis_cluster,
    redis_server,
    tls,
)
from lake_client.local.at_rest import check as at_rest_check
from lake_client.local.postgres import EXTENSIONS
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    exclusive,
    is_initialised,
    server_user,
    silent,
    to_stderr,
)

TLS_CHECK_S = 60.0  # how often `lake up --foreground` has the servers take renewed certificates

__all__ = [
    "EXTENSIONS",
    "ClusterStatus",
    "down",
    "foreground",
    "psql_command",
    "reload_tls",
    "status",
    "up",
]


@dataclass(frozen=True)
class ClusterStatus:
    """What :func:`status` found; ``lines()`` renders it for humans."""

    embedded: bool
    pg_running: bool  # PostgreSQL answers a connection
    pg_version: str | None  # e.g. "15.20"
    pg_dsn: str  # conninfo without password ("" = taken from the PG* variables)
    data_dir: Path | None  # the embedded data directory, if it has been created
    redis_running: bool  # Redis answers PING
    redis_url_redacted: str
    extensions_available: dict[str, str | None] = field(default_factory=dict)
    # extension name -> default_version from pg_available_extensions, None if not installed
    # The embedded RabbitMQ (`lake up --with rabbitmq`): None when it was not started.
    rabbitmq_running: bool | None = None
    rabbitmq_url_redacted: str = ""
    at_rest: dict[str, str] = field(default_factory=dict)
    # data, archive, redis -> whether the directory sits on dm-crypt (local.at_rest; embedded only)
    backups: list[dict[str, Any]] = field(default_factory=list)
    # the newest 3 backups of local.backup (embedded only; [] before the first `lake backup`)
    ha_members: list[dict[str, Any]] = field(default_factory=list)
    # a highly available lake's nodes as Patroni sees them (name, role, state, lag; local.ha)
    # The embedded pgbouncer (`lake up --with pgbouncer`): None when it was not started.
    pgbouncer_running: bool | None = None
    pgbouncer_dsn: str = ""
    redis_cluster: list[str] = field(default_factory=list)
    # the local Redis Cluster (`lake up --redis-cluster`): its state and each node's role

    @property
    def missing_extensions(self) -> list[str]:
        """The extensions of :data:`EXTENSIONS` the server cannot create."""
        return [name for name, version in self.extensions_available.items() if version is None]

    def lines(self) -> list[str]:
        """A short human-readable summary, one line per item."""
        kind = "embedded" if self.embedded else "external"
        if self.pg_running:
            pg = f"PostgreSQL {self.pg_version}: running ({kind})"
        else:
            pg = f"PostgreSQL: not running ({kind})"
        out = [pg, f"  dsn: {self.pg_dsn or '(from the PG* environment variables)'}"]
        if self.data_dir is not None:
            out.append(f"  data: {self.data_dir}")
        if self.extensions_available:
            found = ", ".join(
                f"{name} {version}"
                for name, version in self.extensions_available.items()
                if version is not None
            )
            out.append(f"  extensions: {found or '(none)'}")
            if self.missing_extensions:
                out.append(
                    f"  missing extensions: {', '.join(self.missing_extensions)} ({SETUP_HINT})"
                )
        if self.ha_members:
            out.append("Patroni (`lake up --replicas`):")
            out.extend(
                f"  {m.get('name')}: {m.get('role')}, {m.get('state')}, port {m.get('port')}"
                + (f", lag {m['lag']}" if m.get("lag") not in (None, "") else "")
                for m in self.ha_members
            )
        out.append(f"Redis: {'running' if self.redis_running else 'not running'}")

        out.append(f"  url: {self.redis_url_redacted}")
        out.extend(self.redis_cluster)
        if self.rabbitmq_running is not None:
            out.append(f"RabbitMQ: {'running' if self.rabbitmq_running else 'not running'}")
            out.append(f"  url: {self.rabbitmq_url_redacted}")
        if self.pgbouncer_running is not None:
            state = "running" if self.pgbouncer_running else "not running"
            out.append(f"pgbouncer: {state}")
            out.append(f"  dsn: {self.pgbouncer_dsn}")
        if self.at_rest:
            out.append("At rest (dm-crypt, e.g. LUKS):")
            out.extend(f"  {name}: {found}" for name, found in self.at_rest.items())
        if self.backups:
            out.append("Backups (pgBackRest; `lake backup list` lists all):")
            out.extend(
                f"  {b['label']} {b['type']}, finished {b['stopped_at']}, "
                f"{(b['repository_bytes'] or 0) / 2**20:,.1f} MB stored"
                for b in self.backups
            )
        return out


def up(
    settings: Settings | None = None,
    *,
    quiet: bool = False,
    with_rabbitmq: bool = False,
    with_pgbouncer: bool = False,
    listen: str | None = None,
    replicas: int | None = None,
    redis_cluster_: bool = False,
) -> ClusterStatus:
    """Start the embedded PostgreSQL and Redis (creating them on first use), and RabbitMQ
    (local.rabbitmq) and pgbouncer (local.pgbouncer) when asked; idempotent. ``listen``
    (``lake up --listen``) is where PostgreSQL listens for TLS connections (default
    ``Settings.pg_listen``, 127.0.0.1); it takes effect when PostgreSQL starts. ``replicas``
    (``lake up --replicas N``) makes the embedded cluster highly available (local.ha: Patroni,
    etcd, N streaming replicas); a lake that is already starts so again without it.
    ``redis_cluster_`` (``lake up --redis-cluster``): the lake's Redis is a local Redis Cluster
    (local.redis_cluster) instead of the single Redis, from now on in this LAKE_HOME.

    With an external PostgreSQL or Redis, only checks that it answers. Progress goes to stderr
    unless ``quiet``. Raises :class:`ClusterError` with a hint when something is in the way.
    """
    s = settings if settings is not None else load_settings()
    if listen:
        s = dataclasses.replace(s, pg_listen=listen)
    say: Say = silent if quiet else to_stderr
    if not s.embedded:
        postgres.check_external(s)
    if s.external_redis is not None:
        redis_server.check_external(s)
    if s.embedded or s.external_redis is None:
        with exclusive(Paths(s.home), create=True):
            if s.embedded and (replicas is not None or ha.saved_layout(s.home) is not None):
                s = ha.up(s, replicas, say)
            elif s.embedded:
                postgres.up(s, say)
            if s.external_redis is None and (redis_cluster_ or redis_cluster.configured(s.home)):
                redis_cluster.up(s, say)
                s = dataclasses.replace(s, redis_cluster=True)
            elif s.external_redis is None:
                redis_server.up(s, say)
            # The doors' certificates (`lake serve`, `lake grpc`), so that they exist, owned by
            # the server user, for the database's job to renew.
            paths = Paths(s.home)
            for door in tls.DOORS:
                tls.ensure_server_cert(paths, server_user(paths), door, say)
    if with_rabbitmq:
        with exclusive(Paths(s.home), create=True):
            rabbitmq.up(s, say)
    if with_pgbouncer:
        if not s.embedded:
            raise ClusterError(
                "the embedded pgbouncer pools the embedded PostgreSQL only",
                hint="unset LAKE_DSN / the PG* variables, or run your own pgbouncer",
            )
        with exclusive(Paths(s.home), create=True):
            pgbouncer.up(s, say)
    return status(s)


def down(settings: Settings | None = None) -> None:
    """Stop the embedded pgbouncer and RabbitMQ (if they run), Redis and PostgreSQL
    (``pg_ctl stop -m fast``); fine if none runs.

    External servers are left alone.
    """
    s = settings if settings is not None else load_settings()
    if not s.home.is_dir():
        return  # nothing of ours can run
    with exclusive(Paths(s.home), create=False):
        pgbouncer.down(s)
        rabbitmq.down(s)
    if not (s.embedded or s.external_redis is None):
        return
    with exclusive(Paths(s.home), create=False):
        if s.external_redis is None:
            redis_cluster.down(s)
            redis_server.down(s)
        if s.embedded and not ha.down(s):
            postgres.down(s)


def status(settings: Settings | None = None) -> ClusterStatus:
    """Probe PostgreSQL and Redis (short timeouts) without starting or changing anything."""
    s = settings if settings is not None else load_settings()
    paths = Paths(s.home)
    version: str | None = None
    extensions: dict[str, str | None] = {}
    try:
        with postgres.connect(s.dsn("postgres") if s.embedded else s.dsn()) as conn:
            version, extensions = postgres.server_facts(conn)
        running = True
    except psycopg.Error:
        running = False
    data_dir = paths.pg_data if s.embedded and is_initialised(paths) else None
    at_rest: dict[str, str] = {}
    if s.embedded:
        archive = paths.archive
        if running:
            with contextlib.suppress(psycopg.Error), postgres.connect(s.dsn()) as conn:
                archive = Path(postgres.archive_dir(conn) or paths.archive)
        at_rest = {
            "data": at_rest_check(paths.pg_data).describe(),
            "archive": at_rest_check(archive).describe(),
            "redis": at_rest_check(paths.redis).describe(),
        }
    found_backups: list[dict[str, Any]] = []
    if s.embedded and backup.BackupFiles(s.home).conf.exists():
        with contextlib.suppress(ClusterError):
            found_backups = backup.backups(s)[-3:]
    layout = ha.saved_layout(s.home) if s.embedded else None
    members = list(ha.members(layout).values()) if layout is not None else []
    return ClusterStatus(
        ha_members=members,
        embedded=s.embedded,
        pg_running=running,
        pg_version=version,
        pg_dsn=postgres.redact_conninfo(s.dsn()),
        data_dir=data_dir,
        redis_running=redis_server.answers(s),
        redis_url_redacted=redis_server.url_redacted(s),
        extensions_available=extensions,
        rabbitmq_running=None if rabbitmq.server_pid(paths) is None else rabbitmq.answers(s),
        rabbitmq_url_redacted=rabbitmq.url_redacted(s),
        at_rest=at_rest,
        backups=found_backups,
        pgbouncer_running=None if pgbouncer.server_pid(s) is None else pgbouncer.answers(s),
        pgbouncer_dsn=pgbouncer.url_redacted(s),
        redis_cluster=redis_cluster.status(s) if s.external_redis is None else [],
    )


def reload_tls(settings: Settings | None = None) -> None:
    """Make the running embedded Redis and RabbitMQ serve their renewed certificates, if the
    database's job renewed them (each checks what it serves against the file first). PostgreSQL
    takes its own at pg_reload_conf(); `lake serve` and `lake grpc` at their next connection."""
    s = settings if settings is not None else load_settings()
    redis_server.reload_tls(s)
    rabbitmq.reload_tls(s)


def psql_command(settings: Settings | None = None) -> list[str]:
    """The argv that runs ``psql`` against the lake's database (for ``lake psql``)."""
    s = settings if settings is not None else load_settings()
    psql = "psql"
    if s.embedded:
        with contextlib.suppress(ClusterError):
            candidate = postgres.pg_bindir(Paths(s.home)) / "psql"
            if candidate.exists():
                psql = str(candidate)
    dsn = s.dsn()
    return [psql, dsn] if dsn else [psql]


def foreground(
    settings: Settings | None = None,
    *,
    poll_interval: float = 2.0,
    with_rabbitmq: bool = False,
    with_pgbouncer: bool = False,
) -> None:
    """:func:`up`, then wait for SIGINT/SIGTERM and :func:`down` (for ``lake up --foreground``).

    Meant as a container's main process: it also returns (after stopping the other server)
    when an embedded server dies, raising :class:`ClusterError` in that case.
    """
    s = settings if settings is not None else load_settings()
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    # handlers first: a SIGTERM while starting must still lead to down()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    died: str | None = None
    try:
        up(s, with_rabbitmq=with_rabbitmq, with_pgbouncer=with_pgbouncer)
        # Patroni restarts a highly available lake's PostgreSQL, or another node takes over.
        single = ha.saved_layout(s.home) is None
        to_stderr("running; stop with Ctrl-C or SIGTERM")
        checked = time.monotonic()
        while not stop and died is None:
            time.sleep(poll_interval)
            if time.monotonic() - checked >= TLS_CHECK_S:  # a renewed redis.crt
                checked = time.monotonic()
                reload_tls(s)
            if s.embedded and single and postgres.postmaster(Paths(s.home)) is None:
                died = "PostgreSQL"
            elif (
                s.external_redis is None
                and not redis_cluster.configured(s.home)
                and redis_server.server_pid(Paths(s.home)) is None
            ):
                died = "Redis"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        down(s)
    if died is not None:
        raise ClusterError(
            f"the embedded {died} server stopped unexpectedly",
            hint=f"see the logs in {Paths(s.home).log}",
        )
