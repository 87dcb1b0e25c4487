"""The embedded pgbouncer (`lake up --with pgbouncer`): transaction pooling in front of the
embedded PostgreSQL, TLS 1.3 on both sides and SCRAM throughout.

Debian's ``pgbouncer`` (docker/setup-debian.sh installs it) runs as the servers' OS user with
everything under ``LAKE_HOME/pgbouncer/<port>`` (pgbouncer.ini, the auth file, pid file, log).
It listens on 127.0.0.1:``LAKE_POOL_PORT`` for TLS 1.3 only (``client_tls_sslmode = require``,
the lake's ``pgbouncer`` certificate) and reaches PostgreSQL over TCP with TLS 1.3 too, verifying
the server's certificate against the lake's CA (``server_tls_sslmode = verify-full``).

Authentication: SCRAM. pgbouncer looks a client's SCRAM secret up with ``auth_query``, through
``lake_pooler.user_secret`` (SECURITY DEFINER, sql/pooling/user_secret.sql) as the role
``lake_pooler``, whose own password is the one entry of the auth file. Chosen over an auth file
of every role: the secret is read live at each login, so a new role, a changed password or a
dropped role counts at once, and no copy of the secrets sits in a file; superusers and
replication roles are never served (they keep to the socket). With the client's SCRAM proof
pgbouncer logs in to PostgreSQL as that same role (SCRAM pass-through): it never knows a
password.

Transaction pooling is safe for the lake because its identity is transaction-scoped
(``lake.authenticate(key)``, ``lake.act_as(user)`` default to ``'transaction'``): a server
connection handed to another client carries none of it. A ``'session'`` identity would, so
clients of the pool use the transaction scope. Clients also turn off prepared statements
(psycopg: ``prepare_threshold=None``): pgbouncer 1.18 does not track them across server
connections. A service's TLS client certificate ends at pgbouncer; services that identify by
certificate (``lake.authenticate_cert``) connect to PostgreSQL directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import tls
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    check_port_free,
    mkdir,
    prepare_home,
    process_alive,
    secret,
    server_user,
    tail_file,
    wait_gone,
    write_private,
)

NAME = "pgbouncer"  # its certificate: LAKE_HOME/tls/pgbouncer.crt and .key
AUTH_ROLE = "lake_pooler"
BINARY = "pgbouncer"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
POOL_SIZE = 10  # server connections per database and user


def folder(s: Settings) -> Path:
    """One folder per port, so that a second pooler (a test's) never meets `lake up`'s."""
    return s.home / "pgbouncer" / str(s.pool_port)


def pidfile(s: Settings) -> Path:
    return folder(s) / "pgbouncer.pid"


def logfile(s: Settings) -> Path:
    return folder(s) / "pgbouncer.log"


def password_file(paths: Paths) -> Path:
    return paths.secrets / "pooler.password"


def dsn(s: Settings, database: str | None = None, **extra: str) -> str:
    """A conninfo string for the lake's database through pgbouncer: TLS verified against the
    lake's CA; ``extra`` adds e.g. ``user`` and ``password`` (SCRAM)."""
    return make_conninfo(s.tcp_dsn(database, **extra), port=str(s.pool_port))


def _ini(s: Settings, paths: Paths, pool_size: int) -> str:
    files = tls.files(paths)
    base = folder(s)
    databases = f"* = host=127.0.0.1 port={s.pg_port} auth_user={AUTH_ROLE}"
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(s.pool_port),
        "unix_socket_dir": "",  # TCP with TLS only
        "pidfile": str(pidfile(s)),
        "logfile": str(logfile(s)),
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "max_client_conn": "500",
        "auth_type": "scram-sha-256",
        "auth_file": str(base / "auth_file.txt"),
        "auth_user": AUTH_ROLE,
        "auth_query": "SELECT usename, passwd FROM lake_pooler.user_secret($1)",
        "client_tls_sslmode": "require",
        "client_tls_protocols": "tlsv1.3",
        "client_tls_cert_file": str(files.cert(NAME)),
        "client_tls_key_file": str(files.key(NAME)),
        "server_tls_sslmode": "verify-full",
        "server_tls_protocols": "tlsv1.3",
        "server_tls_ca_file": str(files.ca_cert),
        "ignore_startup_parameters": "extra_float_digits",
        "application_name_add_host": "1",
    }
    body = "\n".join(f"{key} = {value}" for key, value in settings.items())
    return (
        "; Written by lake_client.local.pgbouncer at every `lake up --with pgbouncer`.\n"
        f"[databases]\n{databases}\n\n[pgbouncer]\n{body}\n"
    )


def server_pid(s: Settings) -> int | None:
    """The pid of our running pgbouncer, None if none runs (a stale pid file is removed)."""
    try:
        pid = int(pidfile(s).read_text().strip())
    except (OSError, ValueError):
        return None
    if process_alive(pid, (BINARY,)):
        return pid
    with contextlib.suppress(OSError):
        pidfile(s).unlink()
    return None


def answers(s: Settings, timeout: int = 2) -> bool:
    """Whether our pgbouncer serves a query: TLS (verified), SCRAM as lake_pooler, a server
    connection through it."""
    try:
        password = password_file(Paths(s.home)).read_text(encoding="utf-8").strip()
        conninfo = dsn(s, user=AUTH_ROLE, password=password, connect_timeout=str(timeout))
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
    except (OSError, psycopg.Error):
        return False
    return True


def _auth_role(s: Settings, password: str) -> None:
    """Give lake_pooler LOGIN with the password of the auth file (through the admin socket)."""
    try:
        with psycopg.connect(s.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_ROLE]).fetchone():
                conn.execute(
                    sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(AUTH_ROLE), sql.Literal(password)
                    )
                )
                return
    except psycopg.Error as exc:
        raise ClusterError(f"could not set up the role {AUTH_ROLE}: {exc}") from exc
    raise ClusterError(
        f"the role {AUTH_ROLE} does not exist yet",
        hint="run `lake migrate` (or `make migrate`) first: the schema makes it",
    )


def up(s: Settings, say: Say, pool_size: int = POOL_SIZE) -> None:
    """Start the embedded pgbouncer (its configuration written afresh) unless it runs."""
    paths = Paths(s.home)
    user = server_user(paths)
    prepare_home(paths, user)
    base = folder(s)
    mkdir(base.parent, 0o700, user)
    mkdir(base, 0o700, user)
    binary = shutil.which(BINARY) or f"/usr/sbin/{BINARY}"
    if not Path(binary).exists():
        raise ClusterError("pgbouncer is not installed", hint=SETUP_HINT)
    password = secret(password_file(paths))
    _auth_role(s, password)
    tls.ensure_server_cert(paths, user, NAME, say)
    if server_pid(s) is not None:
        if answers(s):
            return
        raise ClusterError(
            f"the embedded pgbouncer runs but does not answer on port {s.pool_port}",
            hint="run `lake down` and `lake up --with pgbouncer` again (LAKE_POOL_PORT may have"
            " changed)",
        )
    check_port_free(s.pool_port, "pgbouncer", "LAKE_POOL_PORT")
    write_private(base / "auth_file.txt", f'"{AUTH_ROLE}" "{password}"\n', user)
    ini = base / "pgbouncer.ini"
    write_private(ini, _ini(s, paths, pool_size), user)
    say(f"starting pgbouncer on port {s.pool_port} (transaction pooling)…")
    with (base / "startup.log").open("ab") as out:
        subprocess.Popen(
            user.argv([binary, str(ini)]),
            env=user.env(),
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # `lake down` stops it by its pid file
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server_pid(s) is not None and answers(s):
            return
        time.sleep(0.1)
    raise ClusterError(
        f"pgbouncer did not start on port {s.pool_port} within {START_TIMEOUT:.0f} s:\n"
        + (tail_file(logfile(s)) or tail_file(base / "startup.log")),
        hint=f"read {logfile(s)}",
    )


def down(s: Settings) -> None:
    """Stop every embedded pgbouncer of this LAKE_HOME, whatever port it was started on
    (SIGTERM: at once; its clients' transactions end with their connections)."""
    for pid_file in sorted((s.home / "pgbouncer").glob("*/pgbouncer.pid")):
        port = pid_file.parent.name
        if port.isdigit():
            _stop(dataclasses.replace(s, pool_port=int(port)))


def _stop(s: Settings) -> None:
    pid = server_pid(s)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, (BINARY,), STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, (BINARY,), 5.0)
    with contextlib.suppress(OSError):
        pidfile(s).unlink()


def url_redacted(s: Settings) -> str:
    """The pool's conninfo for `lake status`: any lake login role but a superuser, with its
    password (SCRAM)."""
    conninfo = dsn(s).replace("user=postgres ", "")
    return f"{conninfo} (user: a lake login role; transaction pooling)"
