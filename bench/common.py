"""What the benchmarks share: a fresh migrated scratch database on the lake's server, login
roles for the lake's groups, and the facts about the machine that belong beside a figure."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lake_client import local, migrate  # noqa: E402
from lake_client.config import Settings, load_settings  # noqa: E402


def lake_settings() -> Settings:
    """The lake's settings, with the embedded cluster started when it is the one in use."""
    settings = load_settings()
    if settings.embedded:
        local.up(settings, quiet=True)
    return settings


def fresh_database(settings: Settings, name: str, roles: dict[str, list[str]]) -> str:
    """Drop and create the database `name`, migrate it to the latest schema, and make sure each
    login role of `roles` exists (no superuser, no BYPASSRLS) with the given lake groups."""
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        for role, groups in roles.items():
            admin.execute(
                sql.SQL(
                    "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {r}) THEN "
                    "CREATE ROLE {i} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END$$"
                ).format(r=sql.Literal(role), i=sql.Identifier(role))
            )
            admin.execute(
                sql.SQL("GRANT {} TO {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, groups)), sql.Identifier(role)
                )
            )
    dsn = settings.dsn(name)
    migrate.upgrade(dsn)
    return dsn


def drop_database(settings: Settings, name: str) -> None:
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def machine_facts(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SELECT version()").fetchone()
        settings = conn.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)"
            " FROM pg_settings WHERE name IN ('shared_buffers', 'wal_level', 'synchronous_commit',"
            " 'fsync', 'max_wal_size', 'work_mem', 'full_page_writes')"
        ).fetchone()
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"server:  {version[0] if version else '?'}",
        f"         {settings[0] if settings else '?'}",
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}",
        f"client:  Python {platform.python_version()}, psycopg {psycopg.__version__}",
    ]


class ServerCpu:
    """CPU seconds used by the lake's PostgreSQL server, read from /proc when it runs on this
    machine (else None): the postmaster's own, its reaped children's (backends that ended) and
    its live children's (backends, WAL writer, checkpointer, autovacuum). Unlike wall-clock, it
    barely moves when other work shares the cores."""

    def __init__(self, dsn: str) -> None:
        self.postmaster: int | None = None
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            backend = _stat(int(row[0])) if row else None
            if backend is not None:
                self.postmaster = int(backend[1])

    def seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        own = _stat(self.postmaster)
        if own is None:
            return None
        ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                child = _stat(int(entry.name))
                if child is not None and int(child[1]) == self.postmaster:
                    ticks += int(child[11]) + int(child[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def backend_cpu(conn: psycopg.Connection[object]) -> float | None:
    """CPU seconds (user and system) the session's own server process has used so far, from
    /proc when the server runs on this machine (None otherwise)."""
    pid = conn.info.backend_pid
    try:
        if not Path(f"/proc/{pid}/stat").read_text().startswith(f"{pid} (postgres)"):
            return None  # a pid of this machine, but the server is elsewhere
    except OSError:
        return None
    backend = _stat(pid)
    if backend is None:
        return None
    return (int(backend[11]) + int(backend[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command's name: state, ppid, ... (None: no such process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports, for the private servers a bench starts."""
    import socket

    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in ports:
            ports.append(port)
    return ports
