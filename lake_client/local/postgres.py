"""The embedded PostgreSQL: its binaries, initdb, its settings (lake.conf), start, stop, the
lake's database, and the probes of an external server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lake_client.certs import TlsFiles
from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import backup
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    ServerUser,
    check_port_free,
    check_reachable,
    is_initialised,
    mkdir,
    prepare_home,
    process_alive,
    run,
    secret,
    server_user,
    tail_file,
    write_private,
)
from lake_client.local.tls import ensure_server_cert

#: Extensions the lake needs; ClusterStatus.extensions_available reports each of them.
EXTENSIONS: tuple[str, ...] = (
    "plpython3u",
    "pg_cron",
    "vector",
    "postgis",
    "timescaledb",
    "pgcrypto",
    "pgtap",
    "sslinfo",
)
#: The oldest PostGIS the lake runs on (lake.near, lake.within, lake.stay_points need 3.4).
POSTGIS_MIN = (3, 4)
POSTGIS_HINT = (
    "run `make system` (sudo docker/setup-debian.sh): on Debian 12, whose package is 3.3, "
    "it builds PostGIS 3.5 from the Debian 13 sources"
)
PG_START_TIMEOUT = 60  # seconds, pg_ctl -t
PG_STOP_TIMEOUT = 60
CONNECT_TIMEOUT = 5  # seconds, for probes
_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")


def _data_major(paths: Paths) -> str | None:
    try:
        return (paths.pg_data / "PG_VERSION").read_text().strip()
    except OSError:
        return None


def _installed_majors() -> dict[int, Path]:
    """Debian's PostgreSQL installations: major -> its pg_config."""
    found: dict[int, Path] = {}
    for pg_config in _DEBIAN_PG_ROOT.glob("*/bin/pg_config"):
        major = pg_config.parent.parent.name
        if major.isdigit() and (pg_config.parent / "postgres").exists():
            found[int(major)] = pg_config
    return found


def pg_bindir(paths: Paths) -> Path:
    """The server binaries: ``LAKE_PG_BINDIR``, else those of the data directory's major,
    else the newest installed major, else ``pg_config`` on PATH."""
    override = os.environ.get("LAKE_PG_BINDIR")
    if override:
        bindir = Path(override)
        if not (bindir / "postgres").exists():
            raise ClusterError(
                f"LAKE_PG_BINDIR={override} holds no postgres binary",
                hint="point it at a PostgreSQL bin directory, or unset it",
            )
        return bindir
    majors = _installed_majors()
    wanted = _data_major(paths)
    pg_config: Path | str | None
    if wanted is not None:
        pg_config = majors.get(int(wanted)) if wanted.isdigit() else None
        if pg_config is None:
            have = ", ".join(str(m) for m in sorted(majors)) or "none"
            raise ClusterError(
                f"{paths.pg_data} was created by PostgreSQL {wanted}, which is not installed "
                f"(installed: {have})",
                hint=f"install it (PG_MAJOR={wanted} docker/setup-debian.sh), set "
                f"LAKE_PG_BINDIR, or move {paths.home} away to start afresh",
            )
    elif majors:
        pg_config = majors[max(majors)]
    else:
        pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise ClusterError("no PostgreSQL server installation found", hint=SETUP_HINT)
    out = run([str(pg_config), "--bindir"], what="pg_config --bindir", timeout=10)
    bindir = Path(out.stdout.strip())
    for tool in ("postgres", "initdb", "pg_ctl"):
        if not (bindir / tool).exists():
            raise ClusterError(f"{bindir / tool} is missing", hint=SETUP_HINT)
    return bindir


def check_postgis(version: str | None) -> None:
    """Refuse a PostGIS older than :data:`POSTGIS_MIN` (``version`` as in postgis.control, e.g.
    3.3.2); None (not installed) is left to ``lake status``'s list of missing extensions."""
    if version is None:
        return
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < POSTGIS_MIN:
        raise ClusterError(
            f"PostGIS {version} is installed; the lake needs "
            f"{'.'.join(map(str, POSTGIS_MIN))} or newer",
            hint=POSTGIS_HINT,
        )


def postgis_installed(bindir: Path) -> str | None:
    """default_version of the postgis.control of the installation of ``bindir``, None if it
    has none (or no pg_config to find it by)."""
    pg_config = bindir / "pg_config"
    if not pg_config.exists():
        return None
    out = run([str(pg_config), "--sharedir"], what="pg_config --sharedir", timeout=10)
    control = Path(out.stdout.strip()) / "extension" / "postgis.control"
    try:
        text = control.read_text()
    except OSError:
        return None
    found = re.search(r"^default_version\s*=\s*'([^']+)'", text, re.MULTILINE)
    return found[1] if found else None


def postmaster(paths: Paths) -> tuple[int, int | None] | None:
    """(pid, port) of the running postmaster of our data directory, None if none runs."""
    try:
        lines = (paths.pg_data / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not process_alive(pid, ("postgres", "postmaster")):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _remove_stale_locks(paths: Paths) -> None:
    """Remove lock files of a postmaster that is gone (killed, or a zombie not yet reaped).

    PostgreSQL removes them itself when the old pid no longer exists, but a killed postmaster
    whose parent has not reaped it yet still "exists" and would block the start.
    """
    locks = [paths.pg_data / "postmaster.pid", *paths.run.glob(".s.PGSQL.*.lock")]
    for lock in locks:
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            continue
        if not process_alive(pid, ("postgres", "postmaster")):
            with contextlib.suppress(OSError):
                lock.unlink()


def _quote_conf(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def unquote_conf(value: str) -> str:
    """A value of :func:`server_settings` as it is meant (quotes removed), for Patroni."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'").replace("\\\\", "\\")
    return value


def server_settings(
    s: Settings, paths: Paths, log_dir: Path | None = None
) -> list[tuple[str, str]]:
    """The lake's server settings, (name, value as postgresql.conf writes it): the one
    definition behind lake.conf (one server) and Patroni's parameters (local.ha)."""
    run, log = str(paths.run), str(log_dir or paths.log)
    tls = TlsFiles(paths.tls)
    settings: list[tuple[str, str]] = [
        ("port", str(s.pg_port)),
        ("listen_addresses", _quote_conf(s.pg_listen)),
        # TLS 1.3 only (pg_hba.conf refuses TCP without it); the server's certificate is renewed
        # by the job server_certs, which reloads the configuration. ssl_ca_file makes the server
        # ask for, and verify, a client certificate: a service's identity (lake.service_certs).
        ("ssl", "on"),
        ("ssl_cert_file", _quote_conf(str(tls.cert(SERVER_CERT)))),
        ("ssl_key_file", _quote_conf(str(tls.key(SERVER_CERT)))),
        ("ssl_ca_file", _quote_conf(str(tls.ca_cert))),
        ("ssl_min_protocol_version", "'TLSv1.3'"),
        ("unix_socket_directories", _quote_conf(run)),
        ("unix_socket_permissions", "0700"),
        ("max_connections", "200"),
        ("shared_buffers", "256MB"),
        ("work_mem", "16MB"),
        ("maintenance_work_mem", "128MB"),
        ("effective_cache_size", "1GB"),
        ("random_page_cost", "1.1"),
        ("max_wal_size", "2GB"),
        ("max_locks_per_transaction", "256"),  # many partitions per statement
        ("max_worker_processes", "16"),
        ("timezone", "'UTC'"),
        ("log_timezone", "'UTC'"),
        # extensions that must be loaded at start
        ("shared_preload_libraries", "'pg_cron,timescaledb'"),
        ("cron.database_name", _quote_conf(s.database)),
        ("cron.host", _quote_conf(run)),  # pg_cron connects through our socket (trust)
        ("timescaledb.telemetry_level", "off"),
        # No TimescaleDB scheduler: the lake's jobs run under pg_cron, and the Apache build has no
        # policies to run. A scheduler per database only costs: DROP DATABASE waited 60 s for one
        # that was starting (TimescaleDB's stop message unanswered), twice in a test run.
        ("timescaledb.max_background_workers", "0"),
        # logs: one JSON file per day of the month, overwritten a month later (≈ 30 days)
        ("logging_collector", "on"),
        ("log_destination", "'jsonlog'"),
        ("log_directory", _quote_conf(log)),
        ("log_filename", "'postgresql-%d.log'"),
        ("log_rotation_age", "1d"),
        ("log_rotation_size", "0"),
        ("log_truncate_on_rotation", "on"),
        ("log_file_mode", "0640"),
        ("log_min_duration_statement", "1000"),
        ("log_lock_waits", "on"),
        ("log_temp_files", "10MB"),
        ("log_autovacuum_min_duration", "10s"),
    ]
    settings += backup.conf_settings(paths)  # WAL archiving for `lake backup` (local.backup)
    return settings


def _lake_conf(s: Settings, paths: Paths) -> str:
    """The lake's settings for a development cluster (included from postgresql.conf)."""
    settings = server_settings(s, paths)
    width = max(len(name) for name, _ in settings)
    body = "\n".join(f"{name.ljust(width)} = {value}" for name, value in settings)
    return (
        "# Written by lake_client.local at every `lake up`: edits here are lost.\n"
        "# Use ALTER SYSTEM (postgresql.auto.conf) for your own settings.\n"
        f"{body}\n"
    )


#: The server certificate's name in LAKE_HOME/tls (postgres.crt, postgres.key).
SERVER_CERT = "postgres"

# Who may connect how; rewritten at every start (as lake.conf), so what the lake checks is what
# runs. The socket (mode 0700, the server user's) is the local administrator's; TCP is TLS only,
# with a password (SCRAM). A client may present a certificate of the lake's CA: PostgreSQL
# verifies it in the handshake (ssl_ca_file), and lake.authenticate_cert() makes the session the
# service that certificate names. A standby of the same OS user streams through the socket too
# (local.standby). lake_pooler, which may read SCRAM secrets for pgbouncer (local.pgbouncer),
# logs in from this machine only.
HBA_LINES = (
    "local     all       all              trust",
    "local     replication all            trust",
    "hostnossl all       all   0.0.0.0/0  reject",
    "hostnossl all       all   ::/0       reject",
    "hostssl   all       lake_pooler 127.0.0.1/32 scram-sha-256",
    "hostssl   all       lake_pooler 0.0.0.0/0    reject",
    "hostssl   all       lake_pooler ::/0         reject",
    "hostssl   all       all   0.0.0.0/0  scram-sha-256",
    "hostssl   all       all   ::/0       scram-sha-256",
)
_HBA = (
    "# Written by lake_client.local at every `lake up`: edits here are lost.\n"
    "# TYPE    DATABASE  USER  ADDRESS    METHOD\n" + "\n".join(HBA_LINES) + "\n"
)

INCLUDE_LINE = "include = 'lake.conf'  # datapunk lake settings (lake_client.local)"


def up(s: Settings, say: Say) -> None:
    """Start the embedded PostgreSQL (initdb on first use) and create the lake's database."""
    paths = Paths(s.home)
    user = server_user(paths)
    bindir = pg_bindir(paths)
    socket_file = paths.run / f".s.PGSQL.{s.pg_port}"
    if len(str(socket_file)) > _SOCKET_PATH_MAX:
        raise ClusterError(
            f"the socket path {socket_file} is longer than {_SOCKET_PATH_MAX} bytes",
            hint="set LAKE_HOME to a shorter path, e.g. LAKE_HOME=/var/lib/datapunk-lake",
        )
    check_postgis(postgis_installed(bindir))
    prepare_home(paths, user)
    mkdir(paths.pg_data, 0o700, user)
    check_reachable(paths.pg_data, user)
    if paths.pg_data.stat().st_uid != user.uid:
        raise ClusterError(
            f"{paths.pg_data} belongs to another OS user than {user.name!r}, "
            "who would run the server",
            hint=f"run `lake up` as its owner or as root, or chown -R {user.name} {paths.pg_data}",
        )

    if not is_initialised(paths):
        check_port_free(s.pg_port, "PostgreSQL", "LAKE_PG_PORT")  # before the slow initdb
        _initdb(s, paths, user, bindir, say)

    # Twice at most: a server that died a moment ago may still look alive on the first pass.
    for attempt in (1, 2):
        running = postmaster(paths)
        if running is not None:
            pid, port = running
            if port is not None and port != s.pg_port:
                raise ClusterError(
                    f"the embedded PostgreSQL (pid {pid}) runs on port {port}, "
                    f"not on LAKE_PG_PORT={s.pg_port}",
                    hint="run `lake down` first, or use the port it runs on",
                )
        else:
            check_port_free(s.pg_port, "PostgreSQL", "LAKE_PG_PORT")
            _remove_stale_locks(paths)
            listen = [a.strip() for a in s.pg_listen.split(",")]  # listen_addresses' syntax
            ensure_server_cert(paths, user, SERVER_CERT, say, extra_names=listen)
            write_private(paths.pg_data / "pg_hba.conf", _HBA, user)
            write_private(paths.lake_conf, _lake_conf(s, paths), user)
            _start_postgres(s, paths, user, bindir, say)
        if _ensure_database(s, paths, last_try=attempt == 2):
            return


def _initdb(s: Settings, paths: Paths, user: ServerUser, bindir: Path, say: Say) -> None:
    if any(paths.pg_data.iterdir()):
        raise ClusterError(
            f"{paths.pg_data} is not empty but holds no PostgreSQL cluster "
            "(an interrupted first start?)",
            hint=f"remove {paths.pg_data} and run `lake up` again",
        )
    major = bindir.parent.name if bindir.parent.name.isdigit() else "(LAKE_PG_BINDIR)"
    say(f"creating a PostgreSQL {major} cluster in {paths.pg_data}…")
    password = secret(paths.pg_password)
    # initdb runs as the server user and must read the password file: hand it a private copy.
    pwfile = paths.run / ".initdb-password"
    write_private(pwfile, password + "\n", user)
    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(paths.pg_data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-instructions",
            ],
            what="initdb",
            timeout=180,
            user=user,
            cwd=paths.home,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    conf = paths.pg_data / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    if INCLUDE_LINE not in text:
        with conf.open("a", encoding="utf-8") as fh:
            fh.write(f"\n{INCLUDE_LINE}\n")


def _start_postgres(s: Settings, paths: Paths, user: ServerUser, bindir: Path, say: Say) -> None:
    say(f"starting PostgreSQL on port {s.pg_port} (data in {paths.pg_data})…")
    attempts = 3
    for attempt in range(1, attempts + 1):
        if paths.startup_log.exists():
            os.truncate(paths.startup_log, 0)  # keeps the owner; the tail is about this start
        result = run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(paths.pg_data),
                "-w",
                "-t",
                str(PG_START_TIMEOUT),
                "-s",
                "-l",
                str(paths.startup_log),
            ],
            what="pg_ctl start",
            timeout=PG_START_TIMEOUT + 30,
            user=user,
            cwd=paths.home,
            check=False,
        )
        if result.returncode == 0:
            return
        log = tail_file(paths.startup_log)
        # After a crash, children of the old postmaster may hold its shared memory a moment.
        if "shared memory block is still in use" in log and attempt < attempts:
            time.sleep(2.0)
            continue
        json_log = _newest(paths.log, "postgresql-*.json")
        details = "\n".join(
            part
            for part in (
                result.stdout.strip(),
                f"--- {paths.startup_log} (tail) ---\n{log}" if log else "",
                f"--- {json_log} (tail) ---\n{tail_file(json_log, 5)}" if json_log else "",
            )
            if part
        )
        raise ClusterError(
            f"PostgreSQL did not start (pg_ctl exit status {result.returncode}):\n{details}",
            hint=f"read {paths.startup_log}; `lake down` then `lake up` retries",
        )


def _newest(folder: Path, pattern: str) -> Path | None:
    try:
        files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    return files[-1] if files else None


def connect(dsn: str, timeout: int = CONNECT_TIMEOUT) -> psycopg.Connection[tuple[object, ...]]:
    """A connection for probes and administration (autocommit, short timeout)."""
    return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)


def _ensure_database(s: Settings, paths: Paths, *, last_try: bool) -> bool:
    """Create the lake's database if missing; wait while the server is still starting up
    (crash recovery). False if the server is gone (and ``last_try`` is false)."""
    deadline = time.monotonic() + PG_START_TIMEOUT
    while True:
        try:
            with connect(s.dsn("postgres"), timeout=10) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (s.database,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.database)))
            return True
        except psycopg.OperationalError as exc:
            gone = postmaster(paths) is None
            if gone and not last_try:
                return False
            if gone or time.monotonic() > deadline:
                raise ClusterError(
                    f"the embedded PostgreSQL does not accept connections: {exc}",
                    hint=f"see the logs in {paths.log}",
                ) from exc
            time.sleep(0.2)
        except psycopg.Error as exc:
            raise ClusterError(
                f"could not create the database {s.database!r}: {exc}",
                hint=f"see the logs in {paths.log}",
            ) from exc


def server_facts(
    conn: psycopg.Connection[tuple[object, ...]],
) -> tuple[str, dict[str, str | None]]:
    row = conn.execute("SELECT current_setting('server_version')").fetchone()
    version = str(row[0]).split()[0] if row else ""
    available: dict[str, str | None] = dict.fromkeys(EXTENSIONS)
    rows = conn.execute(
        "SELECT name, default_version FROM pg_available_extensions WHERE name = ANY(%s)",
        (list(EXTENSIONS),),
    ).fetchall()
    for name, default_version in rows:
        available[str(name)] = None if default_version is None else str(default_version)
    return version, available


def archive_dir(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The lake's archive_dir setting ('' = the default folder), None before the migrations."""
    row = conn.execute("SELECT to_regclass('lake.settings') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT value FROM lake.settings WHERE key = 'archive_dir'").fetchone()
    return str(row[0]) if row else None


def check_external(s: Settings) -> None:
    try:
        with connect(s.dsn()) as conn:
            _, available = server_facts(conn)
    except psycopg.Error as exc:
        raise ClusterError(
            f"the external PostgreSQL ({redact_conninfo(s.dsn()) or 'PG* variables'}) "
            f"does not answer: {str(exc).strip()}",
            hint="check LAKE_DSN / the PG* variables, or unset them to use the embedded cluster",
        ) from exc
    check_postgis(available.get("postgis"))


def down(s: Settings) -> None:
    """Stop the embedded PostgreSQL (fast, else immediate) if it runs."""
    paths = Paths(s.home)
    if not is_initialised(paths) or postmaster(paths) is None:
        return
    user = server_user(paths)
    bindir = pg_bindir(paths)
    stop = [str(bindir / "pg_ctl"), "stop", "-D", str(paths.pg_data), "-w", "-s"]
    result = run(
        [*stop, "-m", "fast", "-t", str(PG_STOP_TIMEOUT)],
        what="pg_ctl stop",
        timeout=PG_STOP_TIMEOUT + 30,
        user=user,
        cwd=paths.home,
        check=False,
    )
    if result.returncode != 0 and postmaster(paths) is not None:
        run(
            [*stop, "-m", "immediate", "-t", "30"],
            what="pg_ctl stop -m immediate",
            timeout=60,
            user=user,
            cwd=paths.home,
        )


def redact_conninfo(dsn: str) -> str:
    if not dsn:
        return ""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DSN)"
    if "password" not in params:
        return dsn
    params["password"] = "***"
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
