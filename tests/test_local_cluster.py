"""The embedded cluster (``lake_client.local``) with the real PostgreSQL and Redis binaries.

Needs what ``docker/setup-debian.sh`` installs; when something is missing the tests fail with
the ClusterError that says what to do (they never skip). Each run uses a throwaway LAKE_HOME
under /tmp and free ports, so it does not touch a cluster of yours. Run as root, the servers
run as the ``postgres`` OS user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lake_client import local
from lake_client.config import Settings
from lake_client.errors import ClusterError
from tests.conftest import CHECKOUT, private_settings, server_folder
from tests.redis_cluster import free_ports

# Free ports of their own, so a cluster already running on fixed ones (a checkout's or CI's
# embedded servers) never collides with the tests'.
PG_PORT, REDIS_PORT, FRESH_PG_PORT, FRESH_REDIS_PORT = free_ports(4)
SIX_EXTENSIONS = ("plpython3u", "pg_cron", "vector", "postgis", "timescaledb", "pgcrypto")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split(".") if part.isdigit())


def _server_uid() -> int:
    return pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    folder = server_folder("lake-test-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(base: Path) -> Iterator[Settings]:
    s = private_settings(base, PG_PORT, REDIS_PORT)
    yield s
    local.down(s)


@pytest.fixture
def running(settings: Settings) -> local.ClusterStatus:
    """The cluster, started if needed (cheap when it runs: ``up`` is idempotent)."""
    return local.up(settings, quiet=True)


def test_up_creates_and_is_idempotent(settings: Settings) -> None:
    first = local.up(settings, quiet=True)
    started = time.monotonic()
    second = local.up(settings, quiet=True)
    assert time.monotonic() - started < 5, "a second `up` should only check"
    assert first == second
    assert second.embedded and second.pg_running and second.redis_running
    assert second.data_dir == settings.home / "pg"
    assert (settings.home / "pg" / "PG_VERSION").exists()


def test_status(settings: Settings, running: local.ClusterStatus) -> None:
    st = local.status(settings)
    assert st.pg_running and st.redis_running
    assert st.pg_version is not None and _version(st.pg_version) >= (15,)
    assert st.pg_dsn == settings.dsn()
    password = (settings.home / "secrets" / "redis.password").read_text().strip()
    assert password not in st.redis_url_redacted
    assert st.redis_url_redacted == f"rediss://:***@127.0.0.1:{REDIS_PORT}/0"
    text = "\n".join(st.lines())
    assert "running" in text and "not running" not in text
    assert st.missing_extensions == []


def test_extensions_available(running: local.ClusterStatus) -> None:
    available = running.extensions_available
    assert set(available) == set(local.EXTENSIONS)
    missing = [name for name, version in available.items() if version is None]
    assert not missing, f"extensions not installed: {missing}; run docker/setup-debian.sh"
    vector = available["vector"]
    assert vector is not None and _version(vector) >= (0, 5, 1), f"pgvector {vector} < 0.5.1"


def test_six_extensions_can_be_created(settings: Settings, running: local.ClusterStatus) -> None:
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:
        for name in SIX_EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name} CASCADE")
        rows = conn.execute("SELECT extname FROM pg_extension").fetchall()
        assert set(SIX_EXTENSIONS) <= {row[0] for row in rows}
        # the libraries really work
        dist = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector").fetchone()
        assert dist == (2.0,)
        conn.execute(
            "DO $$ import fastjsonschema, jsonschema $$ LANGUAGE plpython3u"
        )  # PL/Python finds the system packages the lake validates with
    # pg_cron belongs to the lake's database only
    with (
        psycopg.connect(settings.dsn("postgres"), autocommit=True) as conn,
        pytest.raises(psycopg.Error, match="lake"),
    ):
        conn.execute("CREATE EXTENSION pg_cron")


def test_server_settings(settings: Settings, running: local.ClusterStatus) -> None:
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:

        def show(name: str) -> str:
            row = conn.execute(f"SHOW {name}").fetchone()
            assert row is not None
            return str(row[0])

        preload = {lib.strip() for lib in show("shared_preload_libraries").split(",")}
        assert {"pg_cron", "timescaledb"} <= preload
        assert show("cron.database_name") == "lake"
        assert show("timescaledb.telemetry_level") == "off"
        assert show("listen_addresses") == "127.0.0.1"
        assert show("ssl") == "on"
        assert show("ssl_min_protocol_version") == "TLSv1.3"
        assert show("port") == str(PG_PORT)
        assert show("unix_socket_permissions") == "0700"
        assert show("log_destination") == "jsonlog"
        assert show("logging_collector") == "on"
        assert show("server_encoding") == "UTF8"
        assert show("shared_buffers") == "256MB"
        assert show("max_connections") == "200"


def test_json_logs(settings: Settings, running: local.ClusterStatus) -> None:
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:
        conn.execute("DO $$ BEGIN RAISE LOG 'lake-test-marker'; END $$")
    logs = sorted((settings.home / "log").glob("postgresql-*.json"))
    assert logs, f"no JSON log in {settings.home / 'log'}"
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for path in logs for line in path.read_text().splitlines()]
        if any(r.get("message") == "lake-test-marker" for r in records):
            break
        assert time.monotonic() < deadline, "the marker did not reach the JSON log"
        time.sleep(0.1)
    assert all("timestamp" in r and "error_severity" in r for r in records)


def test_private_files(settings: Settings, running: local.ClusterStatus) -> None:
    run = (settings.home / "run").stat()
    assert stat.S_IMODE(run.st_mode) == 0o700
    assert run.st_uid == _server_uid()
    for name in ("pg.password", "redis.password"):
        secret = (settings.home / "secrets" / name).stat()
        assert stat.S_IMODE(secret.st_mode) == 0o600
    assert stat.S_IMODE((settings.home / "redis" / "redis.conf").stat().st_mode) == 0o600


def test_tcp_login_needs_the_password(settings: Settings, running: local.ClusterStatus) -> None:
    password = (settings.home / "secrets" / "pg.password").read_text().strip()
    with psycopg.connect(settings.tcp_dsn(password=password)) as conn:
        tls = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert tls.fetchone() == (True, "TLSv1.3")
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(settings.tcp_dsn(password="wrong"))


def test_redis(settings: Settings, running: local.ClusterStatus) -> None:
    client = redis.Redis.from_url(settings.redis_url())
    try:
        assert client.ping()
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
    finally:
        client.close()
    anonymous = redis.Redis(
        host="127.0.0.1",
        port=REDIS_PORT,
        ssl=True,
        ssl_ca_certs=str(settings.ca_file),
        retry=Retry(NoBackoff(), 0),
    )
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()


def test_psql_command(settings: Settings, running: local.ClusterStatus) -> None:
    argv = local.psql_command(settings)
    out = subprocess.run(
        [*argv, "-XtAc", "SELECT current_database()"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "lake"


def test_port_taken_by_someone_else(base: Path, settings: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = replace(settings, home=base / "other", pg_port=port, redis_port=port + 1)
        with pytest.raises(ClusterError) as caught:
            local.up(other, quiet=True)
    message = str(caught.value)
    assert str(port) in message and "LAKE_PG_PORT" in message
    assert not (base / "other" / "pg" / "PG_VERSION").exists(), "failed before initdb"


def test_concurrent_up_on_a_fresh_home(base: Path, settings: Settings) -> None:
    fresh = replace(
        settings, home=base / "fresh", pg_port=FRESH_PG_PORT, redis_port=FRESH_REDIS_PORT
    )
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda _: local.up(fresh, quiet=True), range(3)))
        assert all(r.pg_running and r.redis_running for r in results)
    finally:
        local.down(fresh)
    assert not local.status(fresh).pg_running


def test_recovers_from_killed_servers(settings: Settings, running: local.ClusterStatus) -> None:
    home = settings.home
    postmaster = int((home / "pg" / "postmaster.pid").read_text().splitlines()[0])
    redis_pid = int((home / "run" / "redis.pid").read_text())
    os.kill(postmaster, signal.SIGKILL)
    os.kill(redis_pid, signal.SIGKILL)
    st = local.up(settings, quiet=True)  # stale postmaster.pid and redis.pid left behind
    assert st.pg_running and st.redis_running
    assert int((home / "pg" / "postmaster.pid").read_text().splitlines()[0]) != postmaster


def test_stale_redis_pidfile(settings: Settings, running: local.ClusterStatus) -> None:
    local.down(settings)
    (settings.home / "run" / "redis.pid").write_text("1\n")  # a live process, not redis
    st = local.up(settings, quiet=True)
    assert st.redis_running
    assert int((settings.home / "run" / "redis.pid").read_text()) != 1


def test_external_servers_are_only_checked(
    settings: Settings, running: local.ClusterStatus
) -> None:
    external = replace(
        settings,
        home=settings.home.parent / "unused",
        external_dsn=settings.dsn(),
        external_redis=settings.redis_url(),
    )
    st = local.up(external, quiet=True)
    assert not st.embedded and st.pg_running and st.redis_running and st.data_dir is None
    assert not external.home.exists(), "nothing is created for external servers"
    local.down(external)  # leaves them alone
    assert local.status(settings).pg_running
    nowhere = replace(external, external_dsn="host=127.0.0.1 port=1 dbname=lake")
    with pytest.raises(ClusterError, match="does not answer"):
        local.up(nowhere, quiet=True)


def test_foreground_stops_on_sigterm(settings: Settings, running: local.ClusterStatus) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LAKE_"))}
    env.update(
        LAKE_HOME=str(settings.home),
        LAKE_PG_PORT=str(PG_PORT),
        LAKE_REDIS_PORT=str(REDIS_PORT),
        PYTHONPATH=str(CHECKOUT),
    )
    code = "from lake_client import local; local.foreground(poll_interval=0.2)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        while not seen or "running;" not in seen[-1]:
            line = proc.stderr.readline()
            assert line, f"foreground exited early: {''.join(seen)}"
            seen.append(line)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    st = local.status(settings)
    assert not st.pg_running and not st.redis_running


def test_down_twice(settings: Settings, running: local.ClusterStatus) -> None:
    local.down(settings)
    local.down(settings)
    st = local.status(settings)
    assert not st.pg_running and not st.redis_running
    assert st.data_dir == settings.home / "pg"
    assert not (settings.home / "pg" / "postmaster.pid").exists()
    assert not (settings.home / "run" / "redis.pid").exists()
