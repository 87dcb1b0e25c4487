"""Baseline: the whole lake schema from sql/ and the PL/Python modules from plpython/.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Until the first release is deployed, this revision builds the schema from sql/ as it stands, so
sql/ stays the single place where objects are written. From the first release on, it will be
frozen (its SQL copied beside it) and every later change to sql/ will come with a revision of its
own; tests/test_migrations.py proves that `alembic upgrade head` and sql/ build the same schema.
"""

from __future__ import annotations

import psycopg
from alembic import op

from lake_client.schema import apply_sql_tree

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    assert isinstance(conn, psycopg.Connection)
    apply_sql_tree(conn)


def downgrade() -> None:
    # The lake's pg_cron jobs go (where pg_cron lives in this database).
    op.execute(
        """DO $$ BEGIN
             IF to_regclass('cron.job') IS NOT NULL THEN
                 PERFORM cron.unschedule(jobid) FROM cron.job
                  WHERE jobname LIKE 'lake.%' AND username = current_user;
             END IF;
           END $$"""
    )
    # Extensions and the cluster-wide roles stay: other databases of the cluster may use them.
    op.execute(
        "DROP SCHEMA IF EXISTS inbox, user_data_partitions, user_data, lake_internal,"
        " lake_pooler, lake CASCADE"
    )
