"""Run the Alembic migrations (migrations/, found by config.source_root) against a lake
database."""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.config import Config

from lake_client.config import source_root
from lake_client.errors import ConfigurationError, from_psycopg
from lake_client.schema import source_hash


def alembic_config(dsn: str) -> Config:
    """The Alembic configuration of the lake's migrations, wherever they are installed."""
    cfg = Config(str(source_root() / "migrations" / "alembic.ini"))
    cfg.attributes["dsn"] = dsn
    return cfg


def upgrade(dsn: str, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(dsn), revision)
    except psycopg.Error as exc:
        raise from_psycopg(exc) from exc
    check_sources(dsn)


def check_sources(dsn: str) -> None:
    """Refuse a database built by the baseline revision from other sources than these: before
    the first release the baseline changes in place, so such a database lacks recent objects."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT obj_description('lake'::regnamespace, 'pg_namespace')"
        ).fetchone()
    built = (row[0] or "") if row else ""
    current = source_hash()
    if built and not built.endswith(current):
        raise ConfigurationError(
            f"the lake database was built from other sources ({built.rsplit(' ', 1)[-1]}) than "
            f"this lake_client's ({current})",
            hint="before the first release the baseline migration changes in place: rebuild "
            "the database (embedded cluster: `make clean` in a checkout, or `lake down` and remove "
            "LAKE_HOME, then run again)",
        )


def downgrade(dsn: str, revision: str) -> None:
    try:
        command.downgrade(alembic_config(dsn), revision)
    except psycopg.Error as exc:
        raise from_psycopg(exc) from exc


def current_revision(dsn: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
        return str(row[0]) if row else None
