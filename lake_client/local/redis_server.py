"""The embedded Redis: its configuration, start and stop, and the probes of any Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    check_port_free,
    check_reachable,
    prepare_home,
    process_alive,
    run,
    secret,
    server_user,
    tail_file,
    wait_gone,
    write_private,
)

REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 20.0


def _redis_client(url: str, timeout: float = 1.0) -> redis.Redis:
    """A client for probes: short timeouts, no retries."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def answers(s: Settings) -> bool:
    try:
        url = s.redis_url()
    except OSError:  # no password file: never started
        return False
    return _redis_ping(url)


def url_redacted(s: Settings) -> str:
    if s.external_redis is None:
        return f"redis://:***@127.0.0.1:{s.redis_port}/0"
    parts = urlsplit(s.external_redis)
    if parts.password is None:
        return s.external_redis
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def server_pid(paths: Paths) -> int | None:
    """The pid of our running redis-server, None if none runs (a stale pid file is removed)."""
    try:
        pid = int(paths.redis_pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if process_alive(pid, ("redis-server", "redis")):
        return pid
    with contextlib.suppress(OSError):
        paths.redis_pidfile.unlink()
    return None


def _redis_conf(s: Settings, paths: Paths, password: str) -> str:
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


def up(s: Settings, say: Say) -> None:
    """Start the embedded Redis (its configuration written afresh) unless it answers already."""
    paths = Paths(s.home)
    user = server_user(paths)
    prepare_home(paths, user)
    check_reachable(paths.redis, user)
    password = secret(paths.redis_password)
    url = s.redis_url()
    pid = server_pid(paths)
    if pid is not None:
        if _redis_ping(url):
            return
        raise ClusterError(
            f"the embedded redis-server (pid {pid}) runs but does not answer on port "
            f"{s.redis_port} with the lake's password",
            hint="run `lake down` and `lake up` again (LAKE_REDIS_PORT may have changed)",
        )
    check_port_free(s.redis_port, "Redis", "LAKE_REDIS_PORT")
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        raise ClusterError("redis-server is not installed", hint=SETUP_HINT)
    write_private(paths.redis_conf, _redis_conf(s, paths, password), user)
    say(f"starting Redis on port {s.redis_port}…")
    result = run(
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
        + "\n".join(part for part in (result.stdout.strip(), tail_file(paths.redis_log)) if part),
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


def check_external(s: Settings) -> None:
    if not _redis_ping(s.redis_url()):
        raise ClusterError(
            f"the external Redis ({url_redacted(s)}) does not answer PING",
            hint="check LAKE_REDIS_URL, or unset it to use the embedded Redis",
        )


def down(s: Settings) -> None:
    """Stop the embedded Redis (SIGTERM, which saves; SIGKILL after REDIS_STOP_TIMEOUT)."""
    paths = Paths(s.home)
    pid = server_pid(paths)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # redis saves (AOF fsync) and exits
    if not wait_gone(pid, ("redis-server", "redis"), REDIS_STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, ("redis-server", "redis"), 5.0)
    with contextlib.suppress(OSError):
        paths.redis_pidfile.unlink()
