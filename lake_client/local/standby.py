"""A plain streaming standby of the embedded cluster (``pg_basebackup -R``): a hot standby on a
port and data directory of its own, for reads (``LAKE_READ_DSN``), the replica tests and
``make bench-ha``'s replica lag. Not a high-availability setup: nothing promotes it.

It copies the primary's configuration (lake.conf) and overrides, in postgresql.auto.conf, what
must differ: its port, sockets, logs and ``hot_standby``. It streams through the primary's Unix
socket (``local replication`` in pg_hba.conf, the same OS user) and serves TLS with the primary's
certificate (both listen on 127.0.0.1).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import postgres
from lake_client.local.processes import Paths, mkdir, run, server_user, tail_file

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Standby:
    """A standby under ``folder`` listening on ``port`` (Unix socket in ``folder/run``)."""

    settings: Settings  # the primary's
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "pg"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "run"

    def dsn(self, database: str | None = None, **extra: str) -> str:
        """A conninfo string for the standby over its socket (``extra``: e.g. ``user``)."""
        from psycopg.conninfo import make_conninfo

        params = {
            "host": str(self.socket_dir),
            "port": str(self.port),
            "user": "postgres",
            "dbname": database or self.settings.database,
        }
        return make_conninfo(**{**params, **extra})

    def tcp_dsn(self, database: str | None = None, **extra: str) -> str:
        """The standby over TCP: TLS verified against the lake's CA, as Settings.tcp_dsn."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.settings.tcp_dsn(database, **extra), port=str(self.port))

    def start(self) -> None:
        paths = Paths(self.settings.home)
        user = server_user(paths)
        bindir = postgres.pg_bindir(paths)
        log = self.folder / "startup.log"
        pg_ctl = str(bindir / "pg_ctl")
        run(
            [pg_ctl, "start", "-D", str(self.data), "-w", "-t", "60", "-s", "-l", str(log)],
            what="pg_ctl start (standby)",
            timeout=START_TIMEOUT + 30,
            user=user,
            cwd=self.folder,
        )

    def stop(self) -> None:
        """Stop it (fast); fine if it does not run."""
        if not (self.data / "postmaster.pid").exists():
            return
        paths = Paths(self.settings.home)
        pg_ctl = str(postgres.pg_bindir(paths) / "pg_ctl")
        run(
            [pg_ctl, "stop", "-D", str(self.data), "-w", "-s", "-m", "fast", "-t", "60"],
            what="pg_ctl stop (standby)",
            timeout=90,
            user=server_user(paths),
            cwd=self.folder,
            check=False,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary had written when called."""
        with psycopg.connect(self.settings.dsn("postgres"), autocommit=True) as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
        if row is None:
            raise ClusterError("the primary reported no WAL position")
        target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as standby:
            while True:
                done = standby.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
                ).fetchone()
                if done is not None and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(f"the standby did not replay up to {target} in {timeout} s")
                time.sleep(0.02)


def create(settings: Settings, folder: Path, port: int, name: str = "lake_standby") -> Standby:
    """Copy the running embedded primary into ``folder`` with pg_basebackup (-R: a standby that
    streams from it through a physical slot ``name``), and start it."""
    paths = Paths(settings.home)
    user = server_user(paths)
    bindir = postgres.pg_bindir(paths)
    standby = Standby(settings, folder, port)
    mkdir(folder, 0o700, user)
    mkdir(standby.socket_dir, 0o700, user)
    mkdir(folder / "log", 0o750, user)
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as primary:
        primary.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            [name],
        )
    run(
        [
            str(bindir / "pg_basebackup"),
            "-h",
            str(settings.socket_dir),
            "-p",
            str(settings.pg_port),
            "-U",
            "postgres",
            "-D",
            str(standby.data),
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-C",
            "-S",
            name,
            "-c",
            "fast",
        ],
        what="pg_basebackup",
        timeout=300,
        user=user,
        cwd=folder,
    )
    overrides = {
        "port": str(port),
        "unix_socket_directories": f"'{standby.socket_dir}'",
        "log_directory": f"'{folder / 'log'}'",
        "hot_standby": "on",
        "hot_standby_feedback": "on",  # long reads are not cancelled by the primary's vacuum
        "archive_mode": "off",
    }
    with (standby.data / "postgresql.auto.conf").open("a", encoding="utf-8") as fh:
        fh.writelines(f"{key} = {value}\n" for key, value in overrides.items())
    standby.start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(standby.dsn("postgres"), connect_timeout=5):
                return standby
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the standby does not accept connections: {exc}\n"
                    + tail_file(folder / "startup.log")
                ) from exc
            time.sleep(0.2)


def drop_slot(settings: Settings, name: str = "lake_standby") -> None:
    """Drop the standby's replication slot on the primary (after the standby is gone)."""
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as primary:
        primary.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            [name],
        )
