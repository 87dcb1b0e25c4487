"""Views over user_data run with the caller's rights: a view made by a role that bypasses
row-level security (the superuser here) and granted to applications would show every user's rows
to every application user. The guard event trigger refuses it at DDL time with what to do, and
lake.views_bypassing_rls() (the catalog tests' second line) finds one made with the guard off."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import APP_ROLE

Conn = psycopg.Connection[tuple[object, ...]]
AsRole = Callable[[str], Conn]

WHO = "SELECT doc->>'who' AS who FROM user_data.location_history"


@pytest.fixture
def alice_key(conn: Conn, location_dataset: str) -> str:
    """alice's and bob's rows; a key of alice's."""
    for user in ("alice", "bob"):
        conn.execute("SELECT lake.create_user(%s)", [user])
        conn.execute("SELECT lake.act_as(%s, 'session')", [user])
        conn.execute(
            "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
            "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " 'lat', 1, 'lon', 2, 'who', %s::text)))",
            [user],
        )
    conn.execute("SELECT lake.reset_identity()")
    row = conn.execute("SELECT api_key FROM lake.create_api_key('alice')").fetchone()
    assert row is not None
    return str(row[0])


def as_alice(as_role: AsRole, key: str) -> Conn:
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [key])
    return app


def refused(conn: Conn, statement: str) -> str:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(statement)
    assert err.value.sqlstate == "LK052", err.value
    return str(err.value.diag.message_primary)


def problems(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT view::text, kind, reads::text FROM lake.views_bypassing_rls()"
    ).fetchall()


def test_the_hole_is_real_without_the_guard(conn: Conn, alice_key: str, as_role: AsRole) -> None:
    """What the guard prevents: with it switched off (a superuser can), a superuser's view granted
    to applications shows alice bob's row too. lake.views_bypassing_rls() names it."""
    conn.execute("ALTER EVENT TRIGGER lake_guard_views DISABLE")
    conn.execute(f"CREATE VIEW public.everyone AS {WHO}")
    conn.execute("GRANT SELECT ON public.everyone TO lake_read")
    conn.execute("ALTER EVENT TRIGGER lake_guard_views ENABLE")
    alice = as_alice(as_role, alice_key)
    assert sorted(r[0] for r in alice.execute("SELECT who FROM public.everyone")) == [
        "alice",
        "bob",
    ]
    assert problems(conn) == [("everyone", "view", "user_data.location_history")]


def test_a_view_over_user_data_must_run_with_the_callers_rights(
    conn: Conn, alice_key: str, as_role: AsRole
) -> None:
    message = refused(conn, f"CREATE VIEW public.everyone AS {WHO}")
    # "... of its owner postgres" (whoever the superuser is), what is wrong and what to do:
    assert message.startswith(
        "view public.everyone reads user_data.location_history with the rights of its owner "
    )
    assert message.endswith(
        "past row-level security: make it run with the caller's rights:"
        " ALTER VIEW public.everyone SET (security_invoker = true)"
    )

    conn.execute(f"CREATE VIEW public.mine WITH (security_invoker = true) AS {WHO}")
    conn.execute("GRANT SELECT ON public.mine TO lake_read")
    alice = as_alice(as_role, alice_key)
    assert [r[0] for r in alice.execute("SELECT who FROM public.mine")] == ["alice"]

    # Nor can it be switched off later, or reached through a view of the owner's rights.
    refused(conn, "ALTER VIEW public.mine SET (security_invoker = false)")
    refused(conn, "ALTER VIEW public.mine RESET (security_invoker)")
    refused(conn, "ALTER TABLE public.mine SET (security_invoker = off)")
    refused(conn, "CREATE VIEW public.over_mine AS SELECT * FROM public.mine")
    refused(
        conn,
        "CREATE OR REPLACE VIEW public.mine AS SELECT doc->>'who' AS who"
        " FROM user_data.location_history",
    )
    assert problems(conn) == []


def test_an_application_role_is_held_to_it_too(conn: Conn, alice_key: str, as_role: AsRole) -> None:
    """The guard runs for every role's DDL (an application's temporary view here), though such a
    role cannot call lake.views_bypassing_rls() itself."""
    alice = as_alice(as_role, alice_key)
    refused(alice, f"CREATE TEMP VIEW everyone AS {WHO}")
    alice.execute(f"CREATE TEMP VIEW mine WITH (security_invoker) AS {WHO}")
    assert [r[0] for r in alice.execute("SELECT who FROM mine")] == ["alice"]


def test_a_materialized_view_over_user_data_is_its_owners_alone(
    conn: Conn, alice_key: str, as_role: AsRole
) -> None:
    conn.execute(f"CREATE MATERIALIZED VIEW public.snapshot AS {WHO}")  # for its owner: allowed
    message = refused(conn, "GRANT SELECT ON public.snapshot TO lake_read")
    assert "only its owner may (REVOKE SELECT ON public.snapshot FROM lake_read)" in message
    refused(conn, "GRANT SELECT ON public.snapshot TO PUBLIC")
    refused(conn, "GRANT SELECT (who) ON public.snapshot TO lake_app")
    alice = as_alice(as_role, alice_key)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT who FROM public.snapshot")
    # Default privileges would grant it at creation: refused then.
    conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO lake_read")
    refused(conn, f"CREATE MATERIALIZED VIEW public.snapshot2 AS {WHO}")
    conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM lake_read")
    # A view over it runs with the caller's rights, who may not read it.
    refused(conn, "CREATE VIEW public.over_snapshot AS SELECT * FROM public.snapshot")
    assert problems(conn) == []


def test_views_not_over_user_data_are_left_alone(conn: Conn, location_dataset: str) -> None:
    conn.execute("CREATE VIEW public.datasets AS SELECT name FROM lake.datasets")
    conn.execute("GRANT SELECT ON public.datasets TO lake_read")
    conn.execute("CREATE MATERIALIZED VIEW public.counts AS SELECT count(*) FROM lake.batches")
    conn.execute("GRANT SELECT ON public.counts TO lake_read")
    assert problems(conn) == []


def test_a_leftover_hole_is_loud_at_the_next_view_ddl_not_at_ingest(
    conn: Conn, alice_key: str
) -> None:
    """A hole made with the guard off is named at the next DDL on any view (a GRANT for a
    materialized one); the lake's own work (a new dataset's grants, its partitions) goes on."""
    conn.execute("ALTER EVENT TRIGGER lake_guard_views DISABLE")
    conn.execute(f"CREATE VIEW public.everyone AS {WHO}")
    conn.execute("ALTER EVENT TRIGGER lake_guard_views ENABLE")
    assert "public.everyone" in refused(conn, "CREATE VIEW public.other AS SELECT 1 AS one")
    conn.execute("SELECT lake.create_dataset('more', '{\"type\": \"object\"}')")
    conn.execute("ALTER VIEW public.everyone SET (security_invoker = true)")
    assert problems(conn) == []
