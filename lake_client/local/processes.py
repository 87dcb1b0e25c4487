"""What the embedded servers share: the layout of LAKE_HOME, the OS user the servers run as,
subprocesses, private files, ports, processes and the lock that serialises `lake up`/`down`."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lake_client.errors import ClusterError

SERVER_OS_USER = "postgres"  # who runs the servers when the lake is started by root
LOCK_TIMEOUT = 180.0  # waiting for another `lake up`/`lake down` on the same LAKE_HOME
SETUP_HINT = "run `sudo docker/setup-debian.sh` (it installs PostgreSQL, its extensions and Redis)"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Paths:
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
    def tls(self) -> Path:
        # the CA and the servers' certificates (lake_client.certs.TlsFiles, local.tls)
        return self.home / "tls"

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
class ServerUser:
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


def is_initialised(paths: Paths) -> bool:
    """Whether the data directory holds a PostgreSQL cluster."""
    try:
        return (paths.pg_data / "PG_VERSION").exists()
    except PermissionError:
        return True  # not ours to read, but there


def server_user(paths: Paths) -> ServerUser:
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return ServerUser(me.pw_name, me.pw_uid, me.pw_gid, me.pw_dir, switch=False)
    name = SERVER_OS_USER
    with contextlib.suppress(OSError):
        owner = paths.pg_data.stat().st_uid
        if is_initialised(paths) and owner != 0:
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
            hint=f"{SETUP_HINT}, or run `lake up` as a non-root user",
        ) from None
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, switch=True)


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float,
    user: ServerUser | None = None,
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
            raise ClusterError(f"{argv[0]} not found", hint=SETUP_HINT) from None
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{what} did not finish within {timeout:.0f} s") from None
        out.seek(0)
        output = out.read()
    if check and proc.returncode != 0:
        raise ClusterError(f"{what} failed (exit status {proc.returncode}):\n{tail(output)}")
    return subprocess.CompletedProcess(full, proc.returncode, output, "")


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def tail_file(path: Path, lines: int = 20) -> str:
    try:
        return tail(path.read_text(encoding="utf-8", errors="replace"), lines)
    except OSError:
        return ""


def silent(message: str) -> None:
    del message


def to_stderr(message: str) -> None:
    print(f"lake: {message}", file=sys.stderr, flush=True)


def mkdir(path: Path, mode: int, user: ServerUser | None) -> None:
    """Create ``path`` (mode ``mode``) and give it to ``user`` (if root); fix an existing one."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    path.chmod(mode)
    if user is not None:
        user.own(path)


def write_private(path: Path, text: str, user: ServerUser | None = None) -> None:
    """Write ``text`` to ``path`` with mode 0600, owned by ``user`` (if root) or by us."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if user is not None:
        user.own(tmp)
    tmp.replace(path)


def secret(path: Path) -> str:
    """The secret stored in ``path``; generated (0600) on first use."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text(encoding="utf-8").strip()


def port_in_use(port: int) -> bool:
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
def exclusive(paths: Paths, *, create: bool) -> Iterator[None]:
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


def check_port_free(port: int, server: str, variable: str) -> None:
    if port_in_use(port):
        raise ClusterError(
            f"port {port} on 127.0.0.1 is taken by another program, "
            f"so the embedded {server} cannot start",
            hint=f"set {variable} to a free port (e.g. {variable}={port + 100}), "
            "or stop what listens there",
        )


def process_alive(pid: int, names: Sequence[str]) -> bool:
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


def wait_gone(pid: int, names: Sequence[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid, names):
            return True
        time.sleep(0.1)
    return not process_alive(pid, names)


def check_reachable(path: Path, user: ServerUser, test: str = "-w") -> None:
    """Fail clearly when ``user`` cannot reach ``path`` (e.g. a checkout under /root);
    ``test`` is the test(1) operator: -x to traverse, -w to write."""
    if not user.switch:
        return
    probe = run(
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


def prepare_home(paths: Paths, user: ServerUser) -> None:
    """Create the state folder's subfolders with the right owners and modes."""
    check_reachable(paths.home, user, "-x")
    mkdir(paths.secrets, 0o700, None)
    mkdir(paths.run, 0o700, user)
    mkdir(paths.log, 0o750, user)
    mkdir(paths.redis, 0o700, user)
    mkdir(paths.archive, 0o700, user)
