"""The embedded Redis: its configuration, start and stop, and the probes of any Redis.

It speaks TLS 1.3 only (``port 0``, ``tls-port``) with the ``redis`` certificate of the lake's CA
(LAKE_HOME/tls). Clients are not asked for a certificate (``tls-auth-clients no``): the password
authenticates them, and redis-py, the exporter and redis-cli then need only the CA.

A renewed ``redis.crt`` (the database's job replaces the file in place) is taken by
:func:`reload_tls`: when the certificate Redis serves differs from the file, ``CONFIG SET`` of its
TLS files makes Redis read them again. New connections get the new certificate; open ones keep
their session. ``lake up``, ``lake up --foreground`` and ``lake serve`` call it (the last two each
minute, through ``lake_client.local.reload_tls``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import redis_cluster, tls
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
NAME = "redis"  # its certificate: LAKE_HOME/tls/redis.crt and .key


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
        return f"rediss://:***@127.0.0.1:{s.local_redis_port()}/0"
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

    files = tls.files(paths)
    lines = [
        "# Written by lake_client.local at every `lake up`: edits here are lost.",
        "port 0",  # no plaintext port: TLS only
        f"tls-port {s.redis_port}",
        f"tls-cert-file {q(str(files.cert(NAME)))}",
        f"tls-key-file {q(str(files.key(NAME)))}",
        f"tls-ca-cert-file {q(str(files.ca_cert))}",
        'tls-protocols "TLSv1.3"',
        # The password authenticates clients; a client certificate would add nothing to it
        # (Redis maps no certificate to a user) and every client would have to carry one.
        "tls-auth-clients no",
        # Were replicas or a cluster ever added, they too speak TLS only.
        "tls-replication yes",
        "tls-cluster yes",
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
    tls.ensure_server_cert(paths, user, NAME, say)
    url = s.redis_url()
    pid = server_pid(paths)
    if pid is not None:
        if _redis_ping(url):
            reload_tls(s)
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


def reload_tls(s: Settings) -> bool:
    """Make the embedded Redis (or each node of the local Redis Cluster: Cluster.reload_tls)
    serve the certificate now in ``redis.crt`` (after a renewal): when what it
    serves differs from the file, CONFIG SET its TLS files, which Redis reads again. True when
    it did. Fine to call at any time; a Redis that is down or external is left alone."""
    if s.external_redis is not None:
        return False
    if redis_cluster.configured(s.home):
        cluster = redis_cluster.for_settings(s)
        return any([cluster.reload_tls(port) for port in cluster.ports])
    files = tls.files(Paths(s.home))
    try:
        on_disk = ssl.PEM_cert_to_DER_cert(files.cert(NAME).read_text())
        if tls.served_certificate("127.0.0.1", s.redis_port, files.ca_cert) == on_disk:
            return False
        client = _redis_client(s.redis_url(), timeout=5.0)
        try:
            # Both in one CONFIG SET (Redis 7): a new certificate loads only with its new key.
            # A half-renewed pair (certificate replaced, key not yet) is refused and Redis
            # keeps the old one; the next call tries again.
            client.config_set(
                "tls-cert-file", str(files.cert(NAME)), "tls-key-file", str(files.key(NAME))
            )
        finally:
            client.close()
    except (OSError, ValueError, redis.RedisError):
        return False
    return True


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
