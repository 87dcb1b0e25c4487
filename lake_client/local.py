"""The embedded cluster: a private PostgreSQL and Redis that the lake starts by itself.

Everything lives under ``Settings.home`` (``LAKE_HOME``, default ``<checkout>/.lake``)::

    pg/        PostgreSQL data directory; the lake's settings are in pg/lake.conf
    run/       Unix sockets and the Redis pid file (mode 0700, owned by the server user)
    log/       PostgreSQL JSON logs (postgresql-<day>.json), startup.log, redis.log
    redis/     redis.conf and Redis' append-only files
    secrets/   pg.password and redis.password (mode 0600, owned by the invoking user)

PostgreSQL listens on the socket in ``run/`` (trust, for the local OS user) and on
127.0.0.1:``LAKE_PG_PORT`` (SCRAM, user ``postgres``, password in ``secrets/pg.password``); Redis on
127.0.0.1:``LAKE_REDIS_PORT`` with the password in ``secrets/redis.password``.

Run as root, the servers run as the ``postgres`` OS user (PostgreSQL refuses to run as root), or as
the owner of an existing data directory; otherwise they run as the current user. Server binaries
come from the newest ``/usr/lib/postgresql/<major>/bin`` (or the one matching an existing data
directory; ``LAKE_PG_BINDIR`` overrides). ``docker/setup-debian.sh`` installs them.

With an external PostgreSQL (``LAKE_DSN`` or ``PG*`` variables) nothing is started for
PostgreSQL, and with ``LAKE_REDIS_URL`` nothing is started for Redis: :func:`up` then only checks
that they answer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

from lake_client.config import Settings, load_settings
from lake_client.errors import ClusterError

__all__ = [
    "EXTENSIONS",
    "ClusterStatus",
    "down",
    "foreground",
    "psql_command",
    "status",
    "up",
]

#: Extensions the lake needs; :attr:`ClusterStatus.extensions_available` reports each of them.
EXTENSIONS: tuple[str, ...] = (
    "plpython3u",
    "pg_cron",
    "vector",
    "postgis",
    "timescaledb",
    "pgcrypto",
    "pgtap",
)

SERVER_OS_USER = "postgres"  # who runs the servers when the lake is started by root
PG_START_TIMEOUT = 60  # seconds, pg_ctl -t
PG_STOP_TIMEOUT = 60
REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 20.0
LOCK_TIMEOUT = 180.0  # waiting for another `lake up`/`lake down` on the same LAKE_HOME
CONNECT_TIMEOUT = 5  # seconds, for probes
_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
_SETUP_HINT = "run `sudo docker/setup-debian.sh` (it installs PostgreSQL, its extensions and Redis)"

Say = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


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
                    f"  missing extensions: {', '.join(self.missing_extensions)} ({_SETUP_HINT})"
                )
        out.append(f"Redis: {'running' if self.redis_running else 'not running'}")
        out.append(f"  url: {self.redis_url_redacted}")
        return out


def up(settings: Settings | None = None, *, quiet: bool = False) -> ClusterStatus:
    """Start the embedded PostgreSQL and Redis (creating them on first use); idempotent.

    With an external PostgreSQL or Redis, only checks that it answers. Progress goes to stderr
    unless ``quiet``. Raises :class:`ClusterError` with a hint when something is in the way.
    """
    s = settings if settings is not None else load_settings()
    say: Say = _silent if quiet else _to_stderr
    if not s.embedded:
        _check_external_pg(s)
    if s.external_redis is not None:
        _check_external_redis(s)
    if s.embedded or s.external_redis is None:
        with _exclusive(_Paths(s.home), create=True):
            if s.embedded:
                _pg_up(s, say)
            if s.external_redis is None:
                _redis_up(s, say)
    return status(s)


def down(settings: Settings | None = None) -> None:
    """Stop the embedded Redis and PostgreSQL (``pg_ctl stop -m fast``); fine if none runs.

    External servers are left alone.
    """
    s = settings if settings is not None else load_settings()
    if not s.home.is_dir() or not (s.embedded or s.external_redis is None):
        return  # nothing of ours can run
    with _exclusive(_Paths(s.home), create=False):
        if s.external_redis is None:
            _redis_down(s)
        if s.embedded:
            _pg_down(s)


def status(settings: Settings | None = None) -> ClusterStatus:
    """Probe PostgreSQL and Redis (short timeouts) without starting or changing anything."""
    s = settings if settings is not None else load_settings()
    paths = _Paths(s.home)
    version: str | None = None
    extensions: dict[str, str | None] = {}
    try:
        with _connect(s.dsn("postgres") if s.embedded else s.dsn()) as conn:
            version, extensions = _server_facts(conn)
        running = True
    except psycopg.Error:
        running = False
    data_dir = paths.pg_data if s.embedded and _is_initialised(paths) else None
    return ClusterStatus(
        embedded=s.embedded,
        pg_running=running,
        pg_version=version,
        pg_dsn=_redact_conninfo(s.dsn()),
        data_dir=data_dir,
        redis_running=_redis_answers(s),
        redis_url_redacted=_redis_url_redacted(s),
        extensions_available=extensions,
    )


def psql_command(settings: Settings | None = None) -> list[str]:
    """The argv that runs ``psql`` against the lake's database (for ``lake psql``)."""
    s = settings if settings is not None else load_settings()
    psql = "psql"
    if s.embedded:
        with contextlib.suppress(ClusterError):
            candidate = _pg_bindir(_Paths(s.home)) / "psql"
            if candidate.exists():
                psql = str(candidate)
    dsn = s.dsn()
    return [psql, dsn] if dsn else [psql]


def foreground(settings: Settings | None = None, *, poll_interval: float = 2.0) -> None:
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
        up(s)
        _to_stderr("running; stop with Ctrl-C or SIGTERM")
        while not stop and died is None:
            time.sleep(poll_interval)
            if s.embedded and _postmaster(_Paths(s.home)) is None:
                died = "PostgreSQL"
            elif s.external_redis is None and _redis_pid(_Paths(s.home)) is None:
                died = "Redis"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        down(s)
    if died is not None:
        raise ClusterError(
            f"the embedded {died} server stopped unexpectedly",
            hint=f"see the logs in {_Paths(s.home).log}",
        )


# --------------------------------------------------------------------------------------------
# Layout, users, subprocesses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Paths:
    home: Path

    @property
    def pg_data(self) -> Path:
        return self.home / "pg"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def log(self) -> Path:
        return self.home / "log"

    @property
    def redis(self) -> Path:
        return self.home / "redis"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def archive(self) -> Path:
        # lake.settings archive_dir '' means the sibling of the data directory: this folder.
        return self.home / "lake_archive"

    @property
    def pg_password(self) -> Path:
        return self.secrets / "pg.password"

    @property
    def redis_password(self) -> Path:
        return self.secrets / "redis.password"

    @property
    def lake_conf(self) -> Path:
        return self.pg_data / "lake.conf"

    @property
    def startup_log(self) -> Path:
        return self.log / "startup.log"

    @property
    def redis_conf(self) -> Path:
        return self.redis / "redis.conf"

    @property
    def redis_pidfile(self) -> Path:
        return self.run / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.log / "redis.log"


@dataclass(frozen=True)
class _ServerUser:
    """The OS user the servers run as; ``switch`` when we are root and must change to it."""

    name: str
    uid: int
    gid: int
    home: str
    switch: bool

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped so that it runs as this user."""
        if not self.switch:
            return list(argv)
        if shutil.which("setpriv"):
            return [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.gid}",
                "--init-groups",
                "--",
                *argv,
            ]
        if shutil.which("runuser"):
            return ["runuser", "-u", self.name, "--", *argv]
        raise ClusterError(
            f"neither setpriv nor runuser is available to run the servers as OS user {self.name!r}",
            hint="install util-linux, or run `lake up` as a non-root user",
        )

    def env(self) -> dict[str, str]:
        """A clean environment for the server processes (no PG* variables of the caller)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "LANG": "C.UTF-8",
        }

    def own(self, path: Path) -> None:
        """Give ``path`` to this user (only when running as root)."""
        if self.switch:
            st = path.stat()
            if (st.st_uid, st.st_gid) != (self.uid, self.gid):
                os.chown(path, self.uid, self.gid)


def _server_user(paths: _Paths) -> _ServerUser:
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return _ServerUser(me.pw_name, me.pw_uid, me.pw_gid, me.pw_dir, switch=False)
    name = SERVER_OS_USER
    with contextlib.suppress(OSError):
        owner = paths.pg_data.stat().st_uid
        if _is_initialised(paths) and owner != 0:
            try:
                name = pwd.getpwuid(owner).pw_name
            except KeyError:
                raise ClusterError(
                    f"{paths.pg_data} belongs to uid {owner}, which has no user account",
                    hint=f"chown -R {SERVER_OS_USER}: {paths.pg_data}",
                ) from None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ClusterError(
            f"there is no OS user {name!r} to run PostgreSQL and Redis as "
            "(PostgreSQL refuses to run as root)",
            hint=f"{_SETUP_HINT}, or run `lake up` as a non-root user",
        ) from None
    return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, switch=True)


def _run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float,
    user: _ServerUser | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (as ``user`` if given); output goes through a temporary file, not a pipe,
    so that a daemon that keeps the descriptors open cannot make us wait."""
    full = user.argv(argv) if user is not None else list(argv)
    env = user.env() if user is not None else None
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as out:
        try:
            proc = subprocess.run(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} not found", hint=_SETUP_HINT) from None
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{what} did not finish within {timeout:.0f} s") from None
        out.seek(0)
        output = out.read()
    if check and proc.returncode != 0:
        raise ClusterError(f"{what} failed (exit status {proc.returncode}):\n{_tail(output)}")
    return subprocess.CompletedProcess(full, proc.returncode, output, "")


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int = 20) -> str:
    try:
        return _tail(path.read_text(encoding="utf-8", errors="replace"), lines)
    except OSError:
        return ""


def _silent(message: str) -> None:
    del message


def _to_stderr(message: str) -> None:
    print(f"lake: {message}", file=sys.stderr, flush=True)


def _mkdir(path: Path, mode: int, user: _ServerUser | None) -> None:
    """Create ``path`` (mode ``mode``) and give it to ``user`` (if root); fix an existing one."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    path.chmod(mode)
    if user is not None:
        user.own(path)


def _write_private(path: Path, text: str, user: _ServerUser | None = None) -> None:
    """Write ``text`` to ``path`` with mode 0600, owned by ``user`` (if root) or by us."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if user is not None:
        user.own(tmp)
    tmp.replace(path)


def _secret(path: Path) -> str:
    """The secret stored in ``path``; generated (0600) on first use."""
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text(encoding="utf-8").strip()


def _port_in_use(port: int) -> bool:
    """Whether 127.0.0.1:``port`` cannot be bound (someone listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


@contextlib.contextmanager
def _exclusive(paths: _Paths, *, create: bool) -> Iterator[None]:
    """Serialise ``up``/``down`` on one LAKE_HOME across processes (parallel test workers,
    two terminals): the second waits for the first, then finds everything done."""
    if create and not paths.home.exists():
        paths.home.mkdir(parents=True, exist_ok=True)  # another process may win the race
        if os.geteuid() == 0:
            paths.home.chmod(0o755)  # the server user must traverse it
    lock = paths.home / ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ClusterError(
            f"cannot open {lock}: {exc.strerror}",
            hint="run `lake` as the owner of LAKE_HOME (or as root), or set LAKE_HOME",
        ) from exc
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"another `lake up`/`lake down` has held {lock} for {LOCK_TIMEOUT:.0f} s",
                        hint="wait for it to finish, or stop it",
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_port_free(port: int, server: str, variable: str) -> None:
    if _port_in_use(port):
        raise ClusterError(
            f"port {port} on 127.0.0.1 is taken by another program, "
            f"so the embedded {server} cannot start",
            hint=f"set {variable} to a free port (e.g. {variable}={port + 100}), "
            "or stop what listens there",
        )


def _process_alive(pid: int, names: Sequence[str]) -> bool:
    """Whether ``pid`` runs and (on Linux) its command name starts with one of ``names``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False  # gone since
    except OSError:
        return True  # no /proc: trust the pid
    # "pid (comm) state ...": a zombie (killed, not yet reaped) counts as gone
    comm, _, rest = stat.partition(" (")[2].rpartition(") ")
    return rest[:1] not in ("Z", "X") and comm.startswith(tuple(names))


def _wait_gone(pid: int, names: Sequence[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _process_alive(pid, names):
            return True
        time.sleep(0.1)
    return not _process_alive(pid, names)


def _check_reachable(path: Path, user: _ServerUser, test: str = "-w") -> None:
    """Fail clearly when ``user`` cannot reach ``path`` (e.g. a checkout under /root);
    ``test`` is the test(1) operator: -x to traverse, -w to write."""
    if not user.switch:
        return
    probe = _run(
        ["test", test, str(path)], what="checking access", timeout=10, user=user, check=False
    )
    if probe.returncode == 0:
        return
    blocker = path
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == user.gid or st.st_gid in os.getgrouplist(user.name, user.gid):
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            blocker = parent
            break
    raise ClusterError(
        f"the servers run as OS user {user.name!r}, which cannot reach {path} "
        f"({blocker} is not accessible to it)",
        hint=f"set LAKE_HOME to a folder {user.name!r} can reach, e.g. "
        "LAKE_HOME=/var/lib/datapunk-lake, or make the parent folders traversable "
        f"(chmod o+x {blocker})",
    )


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _is_initialised(paths: _Paths) -> bool:
    try:
        return (paths.pg_data / "PG_VERSION").exists()
    except PermissionError:
        return True  # not ours to read, but there


def _data_major(paths: _Paths) -> str | None:
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


def _pg_bindir(paths: _Paths) -> Path:
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
        raise ClusterError("no PostgreSQL server installation found", hint=_SETUP_HINT)
    out = _run([str(pg_config), "--bindir"], what="pg_config --bindir", timeout=10)
    bindir = Path(out.stdout.strip())
    for tool in ("postgres", "initdb", "pg_ctl"):
        if not (bindir / tool).exists():
            raise ClusterError(f"{bindir / tool} is missing", hint=_SETUP_HINT)
    return bindir


def _postmaster(paths: _Paths) -> tuple[int, int | None] | None:
    """(pid, port) of the running postmaster of our data directory, None if none runs."""
    try:
        lines = (paths.pg_data / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _process_alive(pid, ("postgres", "postmaster")):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _remove_stale_locks(paths: _Paths) -> None:
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
        if not _process_alive(pid, ("postgres", "postmaster")):
            with contextlib.suppress(OSError):
                lock.unlink()


def _quote_conf(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _lake_conf(s: Settings, paths: _Paths) -> str:
    """The lake's settings for a development cluster (included from postgresql.conf)."""
    run, log = str(paths.run), str(paths.log)
    settings: list[tuple[str, str]] = [
        ("port", str(s.pg_port)),
        ("listen_addresses", "'127.0.0.1'"),
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
        ("timescaledb.max_background_workers", "8"),
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
    width = max(len(name) for name, _ in settings)
    body = "\n".join(f"{name.ljust(width)} = {value}" for name, value in settings)
    return (
        "# Written by lake_client.local at every `lake up`: edits here are lost.\n"
        "# Use ALTER SYSTEM (postgresql.auto.conf) for your own settings.\n"
        f"{body}\n"
    )


_INCLUDE_LINE = "include = 'lake.conf'  # datapunk lake settings (lake_client.local)"


def _pg_up(s: Settings, say: Say) -> None:
    paths = _Paths(s.home)
    user = _server_user(paths)
    bindir = _pg_bindir(paths)
    socket_file = paths.run / f".s.PGSQL.{s.pg_port}"
    if len(str(socket_file)) > _SOCKET_PATH_MAX:
        raise ClusterError(
            f"the socket path {socket_file} is longer than {_SOCKET_PATH_MAX} bytes",
            hint="set LAKE_HOME to a shorter path, e.g. LAKE_HOME=/var/lib/datapunk-lake",
        )
    _prepare_home(paths, user)
    _mkdir(paths.pg_data, 0o700, user)
    _check_reachable(paths.pg_data, user)
    if paths.pg_data.stat().st_uid != user.uid:
        raise ClusterError(
            f"{paths.pg_data} belongs to another OS user than {user.name!r}, "
            "who would run the server",
            hint=f"run `lake up` as its owner or as root, or chown -R {user.name} {paths.pg_data}",
        )

    if not _is_initialised(paths):
        _check_port_free(s.pg_port, "PostgreSQL", "LAKE_PG_PORT")  # before the slow initdb
        _initdb(s, paths, user, bindir, say)

    # Twice at most: a server that died a moment ago may still look alive on the first pass.
    for attempt in (1, 2):
        running = _postmaster(paths)
        if running is not None:
            pid, port = running
            if port is not None and port != s.pg_port:
                raise ClusterError(
                    f"the embedded PostgreSQL (pid {pid}) runs on port {port}, "
                    f"not on LAKE_PG_PORT={s.pg_port}",
                    hint="run `lake down` first, or use the port it runs on",
                )
        else:
            _check_port_free(s.pg_port, "PostgreSQL", "LAKE_PG_PORT")
            _remove_stale_locks(paths)
            _write_private(paths.lake_conf, _lake_conf(s, paths), user)
            _start_postgres(s, paths, user, bindir, say)
        if _ensure_database(s, paths, last_try=attempt == 2):
            return


def _prepare_home(paths: _Paths, user: _ServerUser) -> None:
    """Create the state folder's subfolders with the right owners and modes."""
    _check_reachable(paths.home, user, "-x")
    _mkdir(paths.secrets, 0o700, None)
    _mkdir(paths.run, 0o700, user)
    _mkdir(paths.log, 0o750, user)
    _mkdir(paths.redis, 0o700, user)
    _mkdir(paths.archive, 0o700, user)


def _initdb(s: Settings, paths: _Paths, user: _ServerUser, bindir: Path, say: Say) -> None:
    if any(paths.pg_data.iterdir()):
        raise ClusterError(
            f"{paths.pg_data} is not empty but holds no PostgreSQL cluster "
            "(an interrupted first start?)",
            hint=f"remove {paths.pg_data} and run `lake up` again",
        )
    major = bindir.parent.name if bindir.parent.name.isdigit() else "(LAKE_PG_BINDIR)"
    say(f"creating a PostgreSQL {major} cluster in {paths.pg_data}…")
    password = _secret(paths.pg_password)
    # initdb runs as the server user and must read the password file: hand it a private copy.
    pwfile = paths.run / ".initdb-password"
    _write_private(pwfile, password + "\n", user)
    try:
        _run(
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
    if _INCLUDE_LINE not in text:
        with conf.open("a", encoding="utf-8") as fh:
            fh.write(f"\n{_INCLUDE_LINE}\n")


def _start_postgres(s: Settings, paths: _Paths, user: _ServerUser, bindir: Path, say: Say) -> None:
    say(f"starting PostgreSQL on port {s.pg_port} (data in {paths.pg_data})…")
    attempts = 3
    for attempt in range(1, attempts + 1):
        if paths.startup_log.exists():
            os.truncate(paths.startup_log, 0)  # keeps the owner; the tail is about this start
        result = _run(
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
        log = _tail_file(paths.startup_log)
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
                f"--- {json_log} (tail) ---\n{_tail_file(json_log, 5)}" if json_log else "",
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


def _connect(dsn: str, timeout: int = CONNECT_TIMEOUT) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)


def _ensure_database(s: Settings, paths: _Paths, *, last_try: bool) -> bool:
    """Create the lake's database if missing; wait while the server is still starting up
    (crash recovery). False if the server is gone (and ``last_try`` is false)."""
    deadline = time.monotonic() + PG_START_TIMEOUT
    while True:
        try:
            with _connect(s.dsn("postgres"), timeout=10) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (s.database,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.database)))
            return True
        except psycopg.OperationalError as exc:
            gone = _postmaster(paths) is None
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


def _server_facts(
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


def _check_external_pg(s: Settings) -> None:
    try:
        with _connect(s.dsn()):
            pass
    except psycopg.Error as exc:
        raise ClusterError(
            f"the external PostgreSQL ({_redact_conninfo(s.dsn()) or 'PG* variables'}) "
            f"does not answer: {str(exc).strip()}",
            hint="check LAKE_DSN / the PG* variables, or unset them to use the embedded cluster",
        ) from exc


def _pg_down(s: Settings) -> None:
    paths = _Paths(s.home)
    if not _is_initialised(paths) or _postmaster(paths) is None:
        return
    user = _server_user(paths)
    bindir = _pg_bindir(paths)
    stop = [str(bindir / "pg_ctl"), "stop", "-D", str(paths.pg_data), "-w", "-s"]
    result = _run(
        [*stop, "-m", "fast", "-t", str(PG_STOP_TIMEOUT)],
        what="pg_ctl stop",
        timeout=PG_STOP_TIMEOUT + 30,
        user=user,
        cwd=paths.home,
        check=False,
    )
    if result.returncode != 0 and _postmaster(paths) is not None:
        _run(
            [*stop, "-m", "immediate", "-t", "30"],
            what="pg_ctl stop -m immediate",
            timeout=60,
            user=user,
            cwd=paths.home,
        )


def _redact_conninfo(dsn: str) -> str:
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


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def _redis_client(url: str, timeout: float = 1.0) -> redis.Redis:
    """A client for probes: short timeouts, no retries."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def _redis_answers(s: Settings) -> bool:
    try:
        url = s.redis_url()
    except OSError:  # no password file: never started
        return False
    return _redis_ping(url)


def _redis_url_redacted(s: Settings) -> str:
    if s.external_redis is None:
        return f"redis://:***@127.0.0.1:{s.redis_port}/0"
    parts = urlsplit(s.external_redis)
    if parts.password is None:
        return s.external_redis
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _redis_pid(paths: _Paths) -> int | None:
    """The pid of our running redis-server, None if none runs (a stale pid file is removed)."""
    try:
        pid = int(paths.redis_pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if _process_alive(pid, ("redis-server", "redis")):
        return pid
    with contextlib.suppress(OSError):
        paths.redis_pidfile.unlink()
    return None


def _redis_conf(s: Settings, paths: _Paths, password: str) -> str:
    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "# Written by lake_client.local at every `lake up`: edits here are lost.",
        f"port {s.redis_port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"requirepass {q(password)}",
        f"dir {q(str(paths.redis))}",
        "daemonize yes",
        "supervised no",
        f"pidfile {q(str(paths.redis_pidfile))}",
        f"logfile {q(str(paths.redis_log))}",
        "loglevel notice",
        "always-show-logo no",
        "maxmemory 256mb",
        "maxmemory-policy volatile-lru",
        "appendonly yes",
        "appendfsync everysec",
    ]
    return "\n".join(lines) + "\n"


def _redis_up(s: Settings, say: Say) -> None:
    paths = _Paths(s.home)
    user = _server_user(paths)
    _prepare_home(paths, user)
    _check_reachable(paths.redis, user)
    password = _secret(paths.redis_password)
    url = s.redis_url()
    pid = _redis_pid(paths)
    if pid is not None:
        if _redis_ping(url):
            return
        raise ClusterError(
            f"the embedded redis-server (pid {pid}) runs but does not answer on port "
            f"{s.redis_port} with the lake's password",
            hint="run `lake down` and `lake up` again (LAKE_REDIS_PORT may have changed)",
        )
    _check_port_free(s.redis_port, "Redis", "LAKE_REDIS_PORT")
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        raise ClusterError("redis-server is not installed", hint=_SETUP_HINT)
    _write_private(paths.redis_conf, _redis_conf(s, paths, password), user)
    say(f"starting Redis on port {s.redis_port}…")
    result = _run(
        [server, str(paths.redis_conf)],
        what="redis-server",
        timeout=REDIS_START_TIMEOUT,
        user=user,
        cwd=paths.redis,
        check=False,
    )
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while result.returncode == 0 and time.monotonic() < deadline:
        if _redis_ping(url):
            return
        time.sleep(0.1)
    raise ClusterError(
        f"Redis did not start on port {s.redis_port}:\n"
        + "\n".join(part for part in (result.stdout.strip(), _tail_file(paths.redis_log)) if part),
        hint=f"read {paths.redis_log}",
    )


def _redis_ping(url: str) -> bool:
    try:
        client = _redis_client(url)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _check_external_redis(s: Settings) -> None:
    if not _redis_ping(s.redis_url()):
        raise ClusterError(
            f"the external Redis ({_redis_url_redacted(s)}) does not answer PING",
            hint="check LAKE_REDIS_URL, or unset it to use the embedded Redis",
        )


def _redis_down(s: Settings) -> None:
    paths = _Paths(s.home)
    pid = _redis_pid(paths)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # redis saves (AOF fsync) and exits
    if not _wait_gone(pid, ("redis-server", "redis"), REDIS_STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, ("redis-server", "redis"), 5.0)
    with contextlib.suppress(OSError):
        paths.redis_pidfile.unlink()
