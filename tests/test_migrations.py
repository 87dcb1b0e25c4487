"""The migrations and the canonical sql/ build the same database; the latest revision goes down
and up again cleanly."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lake_client import migrate
from lake_client.config import Settings
from lake_client.schema import apply_sql_tree
from tests.conftest import drop_database

Conn = psycopg.Connection[tuple[object, ...]]


def pg_dump_binary(conn: Conn) -> str:
    row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    candidate = Path(f"/usr/lib/postgresql/{row[0]}/bin/pg_dump")
    found = str(candidate) if candidate.exists() else shutil.which("pg_dump")
    assert found, "pg_dump of the server's major version is needed (docker/setup-debian.sh)"
    return found


def schema_dump(dsn: str, pg_dump: str) -> str:
    # Alembic's own bookkeeping table is the one expected difference.
    out = subprocess.run(
        [
            pg_dump,
            "--schema-only",
            "--no-comments",
            "--exclude-table=public.alembic_version",
            "-d",
            dsn,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    out = re.sub(r"--.*\n", "", out)
    out = re.sub(r"\\(un)?restrict .*\n", "", out)  # pg_dump's random per-run key
    return re.sub(r"\n{3,}", "\n\n", out)


@pytest.fixture
def sql_built_db(settings: Settings, admin_conn: Conn) -> Iterator[str]:
    name = "lake_test_sqltree"
    drop_database(admin_conn, name)
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(settings.dsn(name)) as conn:
            apply_sql_tree(conn)
        yield settings.dsn(name)
    finally:
        drop_database(admin_conn, name)


def test_alembic_and_sql_tree_build_the_same_schema(db: str, sql_built_db: str, conn: Conn):
    pg_dump = pg_dump_binary(conn)
    migrated, direct = schema_dump(db, pg_dump), schema_dump(sql_built_db, pg_dump)
    assert "CREATE FUNCTION lake.create_dataset" in migrated
    assert "lake_internal._plpython_source" in migrated
    assert migrated == direct


def test_latest_revision_downgrades_and_upgrades_cleanly(db: str, conn: Conn):
    pg_dump = pg_dump_binary(conn)
    before = schema_dump(db, pg_dump)
    assert migrate.current_revision(db) == "0001"
    conn.execute("SELECT lake.create_dataset('d', '{\"type\": \"object\"}')")
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    left = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname IN"
        " ('lake', 'lake_internal', 'user_data', 'user_data_partitions', 'inbox')"
    ).fetchall()
    assert left == []
    migrate.upgrade(db)
    assert schema_dump(db, pg_dump) == before


def test_a_database_built_from_other_sources_is_refused(db: str, conn: Conn):
    from lake_client.errors import ConfigurationError
    from lake_client.schema import source_hash

    (comment,) = conn.execute(
        "SELECT obj_description('lake'::regnamespace, 'pg_namespace')"
    ).fetchone()  # type: ignore[misc]
    assert str(comment).endswith(source_hash())
    migrate.upgrade(db)  # the same sources: nothing to say
    conn.execute("COMMENT ON SCHEMA lake IS 'Datapunk Lake, built from sources 0123456789abcdef'")
    with pytest.raises(ConfigurationError) as err:
        migrate.upgrade(db)
    assert "make clean" in (err.value.hint or "")
