"""Alembic environment: connects with psycopg 3 using the lake's own DSN resolution.

The DSN comes from the Alembic config attribute `dsn` (set by lake_client.migrate) or, for plain
`alembic` runs, from LAKE_DSN / the PG* variables / the embedded cluster.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from lake_client.config import load_settings

config = context.config
dsn = config.attributes.get("dsn") or load_settings().dsn()


def run_migrations_offline() -> None:
    raise SystemExit(
        "offline (--sql) mode is not supported: the migrations run PL/pgSQL and "
        "generate code from plpython/; connect to a database instead"
    )


def run_migrations_online() -> None:
    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(dsn),
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection, transactional_ddl=True, version_table_schema="public"
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
