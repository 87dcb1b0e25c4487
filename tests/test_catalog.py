"""The shape of the lake's catalog: schema lake holds the public API and nothing else, the
machinery lives in lake_internal, which no application role can use."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lake_client.errors import ConfigurationError
from lake_client.schema import sql_files
from tests.conftest import APP_ROLE, CHECKOUT

Conn = psycopg.Connection[tuple[object, ...]]

# The public API: every function and procedure of schema lake, as the README's SQL-surface table
# documents them. A function added to schema lake without being added here (and to the README)
# fails test_schema_lake_holds_only_the_public_api; helpers belong in lake_internal.
PUBLIC_API = {
    "act_as",
    "act_as_oauth",
    "apply_retention",
    "arm_sealer",
    "authenticate",
    "backups",
    "authenticate_cert",
    "authenticate_peer_cert",
    "batch_reasons",
    "begin_batch",
    "bridge_advance",
    "checkpoint",
    "create_api_key",
    "create_dataset",
    "create_user",
    "current_identity",
    "current_user_id",
    "drop_dataset",
    "end_batch",
    "ensure_partitions",
    "evolve_schema",
    "export_user",
    "has_scope",
    "identity_token",
    "ingest",
    "ingest_raw",
    "link_oauth",
    "month_start",
    "parse_time",
    "parse_times",
    "pii_reveal",
    "purge_archives",
    "purge_audit_log",
    "purge_checkpoints",
    "quarantine_correct",
    "quarantine_decide",
    "quarantine_discard",
    "quarantine_pending",
    "quarantine_release",
    "quota_recount",
    "reset_identity",
    "restore_partition",
    "revoke_api_key",
    "rollback",
    "rollback_targets",
    "rotate_api_key",
    "run_maintenance",
    "seal",
    "seal_backlog",
    "server_cores",
    "set_quota",
    "set_setting",
    "set_user_enabled",
    "source_formats",
    "token_identity",
    "user_changes",
    "verify_audit_chain",
    # figures for `lake serve`'s metrics
    "storage_latency",
    "storage_usage",
    # a person's erasure (GDPR art. 17)
    "erase_user",
    "finish_erasure",
    "request_erasure",
    # views that would show user data past row-level security
    "views_bypassing_rls",
    # OpenID Connect sign-in checked by the lake; PII key rotation
    "authenticate_oidc",
    "set_oidc_provider",
    "rotate_pii_key",
    # embeddings and the similarity search (pgvector)
    "declare_embeddings",
    "put_embeddings",
    "similar",
    # time series (TimescaleDB's time_bucket)
    "series",
    # places (PostGIS): declared coordinates, near a point, within an area, stay points
    "declare_coordinates",
    "near",
    "within",
    "stay_points",
    # services' client certificates (mTLS) and the identity they give
    "issue_service_cert",
    "renew_service_cert",
    "revoke_service_cert",
}

APPLICATION_ROLES = [
    "lake_app",
    "lake_service",
    "lake_read",
    "lake_write",
    "lake_auditor",
    "lake_pii_reader",
    "public",
    APP_ROLE,
]


def functions_in(conn: Conn, schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = %s::regnamespace", [schema]
    ).fetchall()
    return {str(name) for (name,) in rows}


def test_schema_lake_holds_only_the_public_api(conn: Conn):
    in_lake = functions_in(conn, "lake")
    assert in_lake - PUBLIC_API == set(), "helpers belong in lake_internal"
    assert PUBLIC_API - in_lake == set(), "documented but missing"
    assert [name for name in in_lake if name.startswith("_")] == []


def test_the_machinery_lives_in_lake_internal(conn: Conn):
    internal = functions_in(conn, "lake_internal")
    assert {"_audit", "_tg_validate", "_identity", "_plpython_source"} <= internal
    assert all(name.startswith("_") for name in internal), sorted(internal)


@pytest.mark.parametrize("role", [*APPLICATION_ROLES, "lake_admin"])
def test_only_a_door_may_vouch_for_a_peer_certificate(conn: Conn, role: str):
    """lake.authenticate_peer_cert takes its caller's word for a TLS handshake: lake_door's."""
    row = conn.execute(
        "SELECT has_function_privilege(%s, 'lake.authenticate_peer_cert(numeric, text, text)', "
        "'EXECUTE'), has_function_privilege('lake_door', "
        "'lake.authenticate_peer_cert(numeric, text, text)', 'EXECUTE')",
        [role],
    )
    assert row.fetchone() == (False, True)


@pytest.mark.parametrize("role", APPLICATION_ROLES)
def test_application_roles_cannot_use_lake_internal(conn: Conn, role: str):
    row = conn.execute("SELECT has_schema_privilege(%s, 'lake_internal', 'USAGE')", [role])
    assert row.fetchone() == (False,)


def test_an_application_cannot_reach_a_helper(as_role):
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema lake_internal"):
        app.execute("SELECT lake_internal._setting('archive_dir')")


def test_the_manifest_lists_every_file_of_sql_once(tmp_path: Path):
    assert len(sql_files()) == len(set(sql_files()))  # the real tree passes
    sql = tmp_path / "sql"
    (sql / "ingest").mkdir(parents=True)
    (sql / "ingest" / "a.sql").write_text("SELECT 1;")
    (sql / "ingest" / "b.sql").write_text("SELECT 2;")
    (sql / "manifest.txt").write_text("# == ingest: a test ==\ningest/a.sql\n\ningest/c.sql\n")
    with pytest.raises(ConfigurationError) as err:
        sql_files(tmp_path)
    assert "ingest/b.sql: not listed" in str(err.value)
    assert "ingest/c.sql: listed, but no such file" in str(err.value)
    (sql / "manifest.txt").write_text("ingest/a.sql\ningest/b.sql\ningest/a.sql\n")
    with pytest.raises(ConfigurationError, match=r"ingest/a\.sql: listed twice"):
        sql_files(tmp_path)
    (sql / "manifest.txt").write_text("# == ingest ==\ningest/b.sql\n\ningest/a.sql\n")
    assert sql_files(tmp_path) == [sql / "ingest" / "b.sql", sql / "ingest" / "a.sql"]


def documented_calls() -> list[tuple[str, list[str], bool]]:
    """Every call in the first column of the README's SQL-surface table, as (function, its
    parameters' names as written, whether it is a procedure)."""
    text = (CHECKOUT / "README.md").read_text()
    section = text[text.index("## The SQL surface") : text.index("\nSQLSTATEs:")]
    calls = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line[2:].split(" | ", 1)[0]
        for match in re.finditer(r"`(\w+)\(([^`]*)\)`( \(procedure\))?", first):
            name, params, procedure = match.group(1), match.group(2), bool(match.group(3))
            names = []
            for param in re.split(r",(?![^{]*})", params):  # commas outside {read,write}
                words = param.replace("INOUT ", "").split()
                if words:
                    names.append(words[0])
            calls.append((name, names, procedure))
    return calls


def test_the_readme_documents_every_public_function():
    assert {name for name, _, _ in documented_calls()} == PUBLIC_API


@pytest.mark.parametrize(
    ("function", "params", "procedure"),
    documented_calls(),
    ids=[name for name, _, _ in documented_calls()],
)
def test_every_documented_call_works_with_named_notation(
    conn: Conn, function: str, params: list[str], procedure: bool
):
    """Called exactly with the names the README writes, every argument NULL: PostgreSQL
    resolves named notation before running anything, so a name that disagrees fails with
    undefined_function; anything else the call does (most refuse NULLs with their own error) is
    rolled back."""
    args = sql.SQL(", ").join(
        sql.SQL("{} => NULL").format(sql.Identifier(param)) for param in params
    )
    verb = sql.SQL("CALL" if procedure else "SELECT")
    stmt = sql.SQL("{} lake.{}({})").format(verb, sql.Identifier(function), args)
    conn.autocommit = False
    try:
        conn.execute(stmt)
    except psycopg.errors.UndefinedFunction as exc:
        pytest.fail(f"{stmt.as_string(conn)}: {exc}")
    except psycopg.Error:
        pass  # the call was made: the names agree
    finally:
        conn.rollback()
    # The catalog says the same: the input parameters, in this order, by these names.
    row = conn.execute(
        "SELECT array(SELECT n FROM unnest(p.proargnames, coalesce(p.proargmodes::text[],"
        " array_fill('i'::text, ARRAY[p.pronargs]))) AS a(n, m) WHERE m IN ('i', 'b'))"
        "  FROM pg_proc AS p WHERE p.oid = %s::regproc",
        [f"lake.{function}"],
    ).fetchone()
    assert row is not None
    assert list(row[0])[: len(params)] == params
    conn.rollback()


UNCOMMENTED = """
SELECT 'function ' || p.oid::regprocedure::text
  FROM pg_proc AS p
 WHERE p.pronamespace = 'lake'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'relation ' || c.oid::regclass::text
  FROM pg_class AS c
 WHERE c.relnamespace IN ('lake'::regnamespace, 'user_data'::regnamespace)
   AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
   AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column ' || c.oid::regclass::text || '.' || a.attname
  FROM pg_class AS c
  JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace IN ('lake'::regnamespace, 'user_data'::regnamespace)
   AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1
"""


def test_every_public_object_has_a_comment(conn: Conn, location_dataset: str):
    """\\d+ and \\df+ explain every function, table, view and column of schema lake and every
    dataset's table (the one create_dataset made here, and its embeddings'). Partitions (the
    audit log's months) share their parent's meaning and are left out."""
    conn.execute(
        'SELECT lake.create_dataset(\'plain\', \'{"type": "object"}\', \'{"pii_fields": ["x"]}\')'
    )
    conn.execute("SELECT lake.declare_embeddings('plain', 'm', 3)")  # user_data.plain__embeddings
    missing = [name for (name,) in conn.execute(UNCOMMENTED).fetchall()]
    assert missing == []
    # The check sees what it should: a new column without a comment is caught.
    conn.execute("ALTER TABLE lake.settings ADD COLUMN extra text")
    assert [name for (name,) in conn.execute(UNCOMMENTED).fetchall()] == [
        "column lake.settings.extra"
    ]


# Views over user_data that do not run with the caller's rights, and materialized views over it
# that someone besides their owner may read, written apart from lake.views_bypassing_rls(): the
# second line behind the guard event trigger, which a superuser can disable.
VIEWS_PAST_RLS = """
WITH RECURSIVE reads(view, tbl) AS (
    SELECT r.ev_class, d.refobjid
      FROM pg_depend AS d JOIN pg_rewrite AS r ON d.classid = 'pg_rewrite'::regclass
                                               AND r.oid = d.objid
     WHERE d.refobjid IN (SELECT oid FROM pg_class
                           WHERE relnamespace::regnamespace::text
                                 IN ('user_data', 'user_data_partitions')
                             AND relkind IN ('r', 'p'))
    UNION
    SELECT r.ev_class, reads.tbl
      FROM reads JOIN pg_depend AS d ON d.refobjid = reads.view
                                    AND d.classid = 'pg_rewrite'::regclass
                 JOIN pg_rewrite AS r ON r.oid = d.objid
     WHERE r.ev_class <> reads.view
)
SELECT DISTINCT v.oid::regclass::text
  FROM reads JOIN pg_class AS v ON v.oid = reads.view
 WHERE v.oid <> reads.tbl
   AND ((v.relkind = 'v' AND NOT coalesce(
            'security_invoker=true' = ANY (v.reloptions)
            OR 'security_invoker=on' = ANY (v.reloptions), false))
     OR (v.relkind = 'm' AND EXISTS (SELECT FROM aclexplode(v.relacl) AS a
                                      WHERE a.grantee <> v.relowner)))
 ORDER BY 1
"""


def test_no_view_shows_user_data_past_row_level_security(conn: Conn, location_dataset: str):
    assert conn.execute(VIEWS_PAST_RLS).fetchall() == []
    assert conn.execute("SELECT * FROM lake.views_bypassing_rls()").fetchall() == []
    # The check sees what it should: views made with the guard switched off are caught.
    conn.execute("ALTER EVENT TRIGGER lake_guard_views DISABLE")
    conn.execute("CREATE VIEW public.v1 AS SELECT * FROM user_data.location_history")
    conn.execute("CREATE VIEW public.v2 WITH (security_invoker) AS SELECT 1 AS one")
    conn.execute("CREATE VIEW public.v3 AS SELECT * FROM public.v1")
    conn.execute("CREATE MATERIALIZED VIEW public.m1 AS SELECT * FROM user_data.location_history")
    conn.execute("GRANT SELECT ON public.m1 TO lake_read")
    conn.execute("ALTER EVENT TRIGGER lake_guard_views ENABLE")
    assert [r[0] for r in conn.execute(VIEWS_PAST_RLS)] == ["m1", "v1", "v3"]
    assert [r[0] for r in conn.execute("SELECT view::text FROM lake.views_bypassing_rls()")] == [
        "m1",
        "v1",
        "v3",
    ]
