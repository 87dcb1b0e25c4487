"""Fixtures: a real PostgreSQL (the embedded cluster, or LAKE_DSN / PG*), a migrated template
database built once per source version, and a fresh database cloned from it for each test."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lake_client import local, migrate
from lake_client.client import Lake
from lake_client.config import Settings, load_settings
from lake_client.demo import SCHEMA as DEMO_SCHEMA

CHECKOUT = Path(__file__).resolve().parents[1]  # the tests run from a source checkout

APP_ROLE = "lake_test_app"
ADMIN_ROLE = "lake_test_admin"
SERVICE_ROLE = "lake_test_service"
AUDITOR_ROLE = "lake_test_auditor"
PII_READER_ROLE = "lake_test_pii_reader"  # an application that may also see PII in clear
READER_ROLE = "lake_test_reader"  # lake_read only: a read-only login
WRITER_ROLE = "lake_test_writer"  # lake_write only: an uploader


def server_folder(prefix: str) -> Path:
    """A new folder under /tmp that the postgres OS user can traverse (pytest's tmp_path is 0700
    under root), for a private embedded cluster."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


def private_settings(base: Path, pg_port: int, redis_port: int) -> Settings:
    """Settings of an embedded PostgreSQL + Redis of a test's own, under `base`."""
    return Settings(
        home=base / "home",
        pg_port=pg_port,
        redis_port=redis_port,
        database="lake",
        external_dsn=None,
        external_redis=None,
    )


def point(minutes_ago: int, lat: float = 1.0) -> dict[str, object]:
    """A valid location record of `minutes_ago` minutes before now."""
    ts = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"ts": ts, "lat": lat, "lon": 2.0}


def seal(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Run the sealer (lake.seal()): what has committed joins the audit chain and the change log.
    Writers only append to the pending tables; tests that read those logs seal first, as the
    bridge, Lake.changes and the seal job do. Another sealer running (a bridge) makes it return at
    once without sealing: it tries again until it sealed itself, so everything committed before
    the call is sealed after it."""
    while True:
        row = conn.execute("SELECT audit_entries FROM lake.seal()").fetchone()
        if row is not None and row[0] is not None:
            return
        time.sleep(0.01)


def _source_hash() -> str:
    """Changes whenever anything that shapes the schema changes."""
    root = CHECKOUT
    digest = hashlib.sha256()
    paths = [
        *root.glob("sql/**/*"),
        *root.glob("plpython/**/*.py"),
        *root.glob("migrations/**/*.py"),
        root / "lake_client" / "schema.py",
    ]
    for path in sorted(p for p in paths if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session", autouse=True)
def witness_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The witness key and file of the `lake bridge` processes the tests start: a folder of the
    session's own, not the checkout's lake home (lake_client.witness)."""
    folder = tmp_path_factory.mktemp("witness")
    os.environ["LAKE_WITNESS_KEY"] = str(folder / "witness.key")
    os.environ["LAKE_WITNESS_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = load_settings()
    if s.embedded:
        local.up(s, quiet=True)
    return s


@pytest.fixture(scope="session")
def admin_conn(settings: Settings) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser connection to the maintenance database."""
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as conn:
        yield conn


def _drop_stale(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """Drop a leftover test database or an old template, unless someone (another test
    session) still uses it."""
    try:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.errors.ObjectInUse:
        pass


@pytest.fixture(scope="session")
def template_db(settings: Settings, admin_conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """Name of a database migrated with `alembic upgrade head`, reused while sources are equal."""
    name = f"lake_test_tpl_{_source_hash()}"
    existing = {
        r[0]
        for r in admin_conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'lake\\_test\\_%'"
        ).fetchall()
    }
    for stale in existing - {name}:
        _drop_stale(admin_conn, str(stale))
    if name not in existing:
        building = name + "_new"
        admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
        migrate.upgrade(settings.dsn(building))
        # No connections: TimescaleDB's scheduler would otherwise hold one, and CREATE DATABASE
        # ... TEMPLATE needs the template to be idle.
        admin_conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                sql.Identifier(building)
            )
        )
        admin_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [building],
        )
        admin_conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(building), sql.Identifier(name)
            )
        )
        admin_conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name))
        )
    for role, group in (
        (APP_ROLE, "lake_app"),
        (ADMIN_ROLE, "lake_admin"),
        (SERVICE_ROLE, "lake_service"),
        (AUDITOR_ROLE, "lake_auditor"),
        (PII_READER_ROLE, "lake_app"),
        (PII_READER_ROLE, "lake_pii_reader"),
        (READER_ROLE, "lake_read"),
        (WRITER_ROLE, "lake_write"),
    ):
        admin_conn.execute(
            sql.SQL(
                "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {r}) THEN "
                "CREATE ROLE {i} LOGIN; END IF; END$$"
            ).format(r=sql.Literal(role), i=sql.Identifier(role))
        )
        admin_conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role))
        )
    return name


def wait_for_older_transactions(
    conn: psycopg.Connection[tuple[object, ...]], timeout: float = 120
) -> None:
    """Wait until every transaction that runs now, anywhere in the cluster, has ended: until the
    xmin horizon (the oldest running transaction id) has passed every id assigned so far. A test
    whose outcome depends on the horizon (a purge keeps rows a running transaction may still
    need) calls this first; otherwise another session's transaction (another test database
    being cloned, autovacuum's ANALYZE, a pg_cron job) changes its result. Bounded: a
    transaction that stays open fails the test with who holds the horizon."""
    row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()
    assert row is not None
    deadline = time.monotonic() + timeout
    passed = "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= %s::text::xid8"
    while conn.execute(passed, [str(row[0])]).fetchone() != (True,):
        if time.monotonic() > deadline:
            holders = conn.execute(
                "SELECT pid, datname, application_name, backend_type, state, backend_xid,"
                " left(query, 80) FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
            ).fetchall()
            pytest.fail(f"transactions older than {row[0]} still run after {timeout} s: {holders}")
        time.sleep(0.05)


def drop_database(admin_conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """Drop a test's database, ending its sessions (a test may leave one open)."""
    admin_conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def create_database(
    settings: Settings, admin_conn: psycopg.Connection[tuple[object, ...]], template: str
) -> str:
    name = f"lake_test_{uuid.uuid4().hex[:12]}"
    admin_conn.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )
    return name


class DatabasePool:
    """Test databases cloned ahead, one at a time, in a thread: CREATE DATABASE waits mostly
    for the disk (a checkpoint, the copied files' fsync), so the next test's database is made
    while a test runs instead of before it."""

    def __init__(self, settings: Settings, template: str, ahead: int = 1) -> None:
        self.settings = settings
        self.template = template
        self.ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._fill, daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        try:
            with psycopg.connect(self.settings.dsn("postgres"), autocommit=True) as admin:
                while not self.stopping.is_set():
                    name = create_database(self.settings, admin, self.template)
                    while True:
                        if self.stopping.is_set():  # the session ended: no one will take it
                            drop_database(admin, name)
                            break
                        try:
                            self.ready.put(name, timeout=0.2)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the test that waits, not lost in the thread
            self.ready.put(exc)

    def take(self) -> str:
        got = self.ready.get(timeout=120)
        if isinstance(got, BaseException):
            raise got
        return got

    def close(self, admin: psycopg.Connection[tuple[object, ...]]) -> None:
        self.stopping.set()
        self.thread.join(60)
        while not self.ready.empty():
            left = self.ready.get()
            if isinstance(left, str):
                drop_database(admin, left)


@pytest.fixture(scope="session")
def database_pool(
    settings: Settings, admin_conn: psycopg.Connection[tuple[object, ...]], template_db: str
) -> Iterator[DatabasePool]:
    pool = DatabasePool(settings, template_db)
    yield pool
    pool.close(admin_conn)


def server_owned_folder(prefix: str) -> Path:
    """A new folder under /tmp that the server's OS user owns (it writes archives there)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    return folder


# An archive's data file and its manifest (plpython/lake_archive's DATA_SUFFIX, MANIFEST_SUFFIX).
DATA_SUFFIX, MANIFEST_SUFFIX = ".jsonl.gz", ".manifest.json"


def remove_test_archives(folder: Path) -> int:
    """Delete the archives that test databases (lake_test_*) left in `folder`, the cluster's
    default archive folder, which may also hold the archives of a real lake (`make demo`): a
    file goes only when its manifest names a test database. Returns how many archives went."""
    removed = 0
    for manifest in folder.rglob("*" + MANIFEST_SUFFIX):
        try:
            database = str(json.loads(manifest.read_text()).get("database", ""))
        except (OSError, ValueError):
            continue
        if database.startswith("lake_test_"):
            data = manifest.with_name(manifest.name.removesuffix(MANIFEST_SUFFIX) + DATA_SUFFIX)
            data.unlink(missing_ok=True)
            manifest.unlink(missing_ok=True)
            removed += 1
    return removed


@pytest.fixture(scope="session", autouse=True)
def _test_archives_removed() -> Iterator[None]:
    """Tests that archive without an archive_dir of their own write to the cluster's folder;
    their files go when the session ends. It reads the settings without the `settings`
    fixture: an autouse fixture that took it would start the cluster for the fast tests too
    (and pytest_runtest_setup fails every test marked fast that takes it)."""
    yield
    settings = load_settings()
    if settings.embedded:
        remove_test_archives(local.Paths(settings.home).archive)


@pytest.fixture
def db(
    settings: Settings,
    admin_conn: psycopg.Connection[tuple[object, ...]],
    database_pool: DatabasePool,
) -> Iterator[str]:
    """A conninfo string for a fresh, migrated database of this test's own."""
    name = database_pool.take()
    try:
        yield settings.dsn(name)
    finally:
        drop_database(admin_conn, name)


@pytest.fixture
def archive_dir(settings: Settings, conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[Path]:
    """A fresh archive folder that the server's OS user owns, set as the test database's
    archive_dir, for tests that read or damage archives from outside."""
    if not settings.embedded:
        pytest.skip("archives are written on the server's machine: needs the embedded cluster")
    folder = server_owned_folder("lake-archive-")
    conn.execute("SELECT lake.set_setting('archive_dir', %s)", [str(folder)])
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser connection (autocommit) to the test's database."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def as_role(db: str) -> Iterator[Callable[[str], psycopg.Connection[tuple[object, ...]]]]:
    """Connections (autocommit) to the test's database that log in as one of the test login
    roles; closed after the test."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def connect(role: str) -> psycopg.Connection[tuple[object, ...]]:
        c = psycopg.connect(make_conninfo(db, user=role), autocommit=True)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()


@pytest.fixture
def lake(db: str) -> Iterator[Lake]:
    with Lake(db) as client:
        yield client


# The demo's location-history schema: required ts/lat/lon, ranges, an enum, a maxLength.
LOCATION_SCHEMA = DEMO_SCHEMA


@pytest.fixture
def location_dataset(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    from psycopg.types.json import Jsonb

    conn.execute("SELECT lake.create_dataset('location_history', %s)", [Jsonb(LOCATION_SCHEMA)])
    return "location_history"


# The fixtures that reach PostgreSQL (every one of them takes `settings`) or Redis.
SERVER_FIXTURES = {"settings", "redis_cluster"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked fast (`make test-fast`) must not need a server: one that takes a server's
    fixture fails here, before the fixture starts PostgreSQL. A test without the mark runs in
    `make test` only, so a forgotten mark costs speed, never coverage."""
    if item.get_closest_marker("fast") is None:
        return
    used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used:
        pytest.fail(f"marked fast but takes {', '.join(sorted(used))}", pytrace=False)


def pytest_report_header() -> list[str]:
    s = load_settings()
    where = "embedded cluster under " + str(s.home) if s.embedded else "external server"
    return [f"lake: {where}", f"lake: LAKE_HOME={os.environ.get('LAKE_HOME', '(default)')}"]


__all__ = [
    "ADMIN_ROLE",
    "APP_ROLE",
    "AUDITOR_ROLE",
    "CHECKOUT",
    "LOCATION_SCHEMA",
    "PII_READER_ROLE",
    "READER_ROLE",
    "SERVICE_ROLE",
    "WRITER_ROLE",
    "Path",
]
