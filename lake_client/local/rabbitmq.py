"""The embedded RabbitMQ broker (`lake up --with rabbitmq`): its configuration, start and stop.

Debian's ``rabbitmq-server`` (docker/setup-debian.sh installs it and keeps Debian's own service
off) runs as the servers' OS user with everything under ``LAKE_HOME/rabbitmq``: its node's
database (mnesia/), logs, configuration and the Erlang cookie (HOME of the broker). It listens
for AMQP over TLS 1.3 only (amqps, the lake's ``rabbitmq`` certificate; no plaintext listener) on
127.0.0.1:``LAKE_AMQP_PORT`` (user ``lake``, password in ``secrets/rabbitmq.password``),
for Erlang distribution on the port after it, and its own epmd listens on the one after that
(ERL_EPMD_PORT): two lakes (or test brokers) on other ports never meet. The node is
``lake<port>@localhost``.

A renewed ``rabbitmq.crt`` is taken by :func:`reload_tls`: Erlang's ssl caches the PEM files it
reads (and looks for changed ones only every 2 minutes), so when the certificate the broker
serves differs from the file, ``rabbitmqctl eval 'ssl:clear_pem_cache().'`` makes the next
handshake read them again; open connections keep their session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import tls
from lake_client.local.processes import (
    SETUP_HINT,
    Paths,
    Say,
    ServerUser,
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

START_TIMEOUT = 90.0  # the broker takes seconds to boot (more on a busy machine)
STOP_TIMEOUT = 30.0
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not /usr/sbin's, which switches to rabbitmq
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = "epmd"
USER = "lake"
NAME = "rabbitmq"  # its certificate: LAKE_HOME/tls/rabbitmq.crt and .key
NAMES = ("beam", "erl")  # the broker's process names (beam.smp)


def folder(paths: Paths) -> Path:
    return paths.home / "rabbitmq"


def password_file(paths: Paths) -> Path:
    return paths.secrets / "rabbitmq.password"


def pidfile(paths: Paths) -> Path:
    return folder(paths) / "rabbitmq.pid"


def log_folder(paths: Paths) -> Path:
    return paths.log / "rabbitmq"


def dist_port(s: Settings) -> int:
    return s.amqp_port + 1


def epmd_port(s: Settings) -> int:
    return s.amqp_port + 2


def url(s: Settings) -> str:
    """The AMQP URL of the embedded broker (its password read from the secrets folder): amqps,
    the broker verified against the lake's CA (aiormq's ``cafile``)."""
    password = password_file(Paths(s.home)).read_text(encoding="utf-8").strip()
    return (
        f"amqps://{USER}:{quote(password, safe='')}@127.0.0.1:{s.amqp_port}/%2F"
        f"?cafile={quote(str(s.ca_file), safe='')}"
    )


def url_redacted(s: Settings) -> str:
    return f"amqps://{USER}:***@127.0.0.1:{s.amqp_port}/%2F"


def _conf(s: Settings, paths: Paths, password: str) -> str:
    files = tls.files(paths)
    lines = [
        "# Written by lake_client.local at every `lake up --with rabbitmq`: edits here are lost.",
        "listeners.tcp = none",  # no plaintext AMQP
        f"listeners.ssl.1 = 127.0.0.1:{s.amqp_port}",
        f"ssl_options.cacertfile = {files.ca_cert}",
        f"ssl_options.certfile = {files.cert(NAME)}",
        f"ssl_options.keyfile = {files.key(NAME)}",
        "ssl_options.versions.1 = tlsv1.3",
        # The password authenticates clients (as for Redis): no client certificate asked for.
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
        f"default_user = {USER}",
        f"default_pass = {password}",
        "default_permissions.configure = .*",
        "default_permissions.read = .*",
        "default_permissions.write = .*",
        "loopback_users = none",
        "log.console = false",
        "log.file.level = info",
        "disk_free_limit.absolute = 50MB",
    ]
    return "\n".join(lines) + "\n"


def _env(s: Settings, paths: Paths, user: ServerUser) -> dict[str, str]:
    base = folder(paths)
    return {
        **user.env(),
        "HOME": str(base),  # the Erlang cookie's home
        "RABBITMQ_NODENAME": f"lake{s.amqp_port}@localhost",
        "RABBITMQ_DIST_PORT": str(dist_port(s)),
        "ERL_EPMD_PORT": str(epmd_port(s)),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(log_folder(paths)),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(pidfile(paths)),
        "RABBITMQ_USE_LONGNAME": "false",
    }


def server_pid(paths: Paths) -> int | None:
    """The pid of our running broker, None if none runs (a stale pid file is removed)."""
    try:
        pid = int(pidfile(paths).read_text().strip())
    except (OSError, ValueError):
        return None
    if process_alive(pid, NAMES):
        return pid
    with contextlib.suppress(OSError):
        pidfile(paths).unlink()
    return None


async def _login(address: str, timeout: float) -> None:
    connection = await aio_pika.connect(address, timeout=timeout)
    await connection.close()


def ping(address: str, timeout: float = 2.0) -> bool:
    """Whether a broker at `address` lets the lake's user log in."""
    where = urlsplit(address)
    try:
        # A closed port first, quietly (aiormq logs each refused connection).
        socket.create_connection((where.hostname, where.port or 5672), timeout).close()
        asyncio.run(_login(address, timeout))
    except (aiormq.exceptions.AMQPError, OSError):  # OSError: refused, reset, timed out
        return False
    return True


def answers(s: Settings) -> bool:
    try:
        address = url(s)
    except OSError:  # no password file: never started
        return False
    return ping(address)


def up(s: Settings, say: Say) -> None:
    """Start the embedded broker (its configuration written afresh) unless it answers already."""
    paths = Paths(s.home)
    user = server_user(paths)
    prepare_home(paths, user)
    base = folder(paths)
    mkdir(base, 0o700, user)
    mkdir(log_folder(paths), 0o750, user)
    password = secret(password_file(paths))
    tls.ensure_server_cert(paths, user, NAME, say)
    address = url(s)
    pid = server_pid(paths)
    if pid is not None:
        if ping(address):
            reload_tls(s)
            return
        raise ClusterError(
            f"the embedded RabbitMQ (pid {pid}) runs but does not answer on port {s.amqp_port}"
            " with the lake's password",
            hint="run `lake down` and `lake up --with rabbitmq` again (LAKE_AMQP_PORT may have"
            " changed)",
        )
    for port in (s.amqp_port, dist_port(s)):
        check_port_free(port, "RabbitMQ", "LAKE_AMQP_PORT")
    if not Path(SERVER).exists():
        raise ClusterError("rabbitmq-server is not installed", hint=SETUP_HINT)
    write_private(base / "rabbitmq.conf", _conf(s, paths, password), user)
    write_private(base / "advanced.config", "[].\n", user)
    write_private(base / "enabled_plugins", "[].\n", user)
    write_private(
        base / "rabbitmq-env.conf", "# the lake's settings are in the environment\n", user
    )
    cookie = base / ".erlang.cookie"
    if not cookie.exists():
        write_private(cookie, secret(paths.secrets / "rabbitmq.cookie"), user)
    say(f"starting RabbitMQ on port {s.amqp_port}…")
    startup = log_folder(paths) / "startup.log"
    with startup.open("ab") as out:
        subprocess.Popen(
            user.argv([SERVER]),
            env=_env(s, paths, user),
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not ours to wait for: `lake down` stops it by its pid file
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ping(address):
            return
        time.sleep(0.5)
    raise ClusterError(
        f"RabbitMQ did not start on port {s.amqp_port} within {START_TIMEOUT:.0f} s:\n"
        + tail_file(startup),
        hint=f"read the logs in {log_folder(paths)}",
    )


def reload_tls(s: Settings) -> bool:
    """Make the running broker serve the certificate now in ``rabbitmq.crt`` (after a renewal);
    True when it had to. A broker that is not running is left alone."""
    paths = Paths(s.home)
    if server_pid(paths) is None:
        return False
    files = tls.files(paths)
    try:
        on_disk = ssl.PEM_cert_to_DER_cert(files.cert(NAME).read_text())
        if tls.served_certificate("127.0.0.1", s.amqp_port, files.ca_cert) == on_disk:
            return False
    except (OSError, ValueError):
        return False
    user = server_user(paths)
    done = subprocess.run(
        user.argv([CTL, "eval", "ssl:clear_pem_cache()."]),
        env=_env(s, paths, user),
        cwd=folder(paths),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )
    return done.returncode == 0


def kill(s: Settings) -> int | None:
    """SIGKILL the broker (for fault tests); returns the pid it had, None if none ran."""
    pid = server_pid(Paths(s.home))
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, NAMES, 10.0)
    return pid


def down(s: Settings) -> None:
    """Stop the embedded broker (SIGTERM, a clean shutdown; SIGKILL after STOP_TIMEOUT), then
    its epmd."""
    paths = Paths(s.home)
    pid = server_pid(paths)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, NAMES, STOP_TIMEOUT):
            kill(s)
        with contextlib.suppress(OSError):
            pidfile(paths).unlink()
    epmd = shutil.which(EPMD)
    if epmd is not None and folder(paths).is_dir():
        # No node of ours is registered any more; epmd -kill stops it (fine if none runs).
        subprocess.run(
            [epmd, "-kill"],
            env={**os.environ, "ERL_EPMD_PORT": str(epmd_port(s))},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
