"""lake.current_user_id(): only the lake can establish it, SET cannot, and it does not leak
from one transaction into the next unless asked to."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import APP_ROLE

Conn = psycopg.Connection[tuple[object, ...]]


def current(conn: Conn) -> object:
    row = conn.execute("SELECT lake.current_user_id()").fetchone()
    assert row is not None
    return row[0]


def test_transaction_scope_ends_with_the_transaction(conn: Conn):
    conn.autocommit = False
    conn.execute("SELECT lake.act_as('alice')")
    assert current(conn) == "alice"
    conn.commit()
    assert current(conn) is None
    conn.rollback()


def test_session_scope_lasts_until_reset(conn: Conn):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    assert current(conn) == "alice"
    assert current(conn) == "alice"
    conn.execute("SELECT lake.reset_identity()")
    assert current(conn) is None


def test_set_cannot_forge_or_replay_an_identity(conn: Conn):
    conn.autocommit = False
    conn.execute("SELECT lake.act_as('alice')")
    nonce = conn.execute("SELECT current_setting('lake.identity_nonce')").fetchone()
    conn.commit()
    assert nonce is not None
    # Replaying the nonce in a later transaction does not bring alice back.
    conn.execute("SELECT set_config('lake.identity_nonce', %s, false)", [nonce[0]])
    assert current(conn) is None
    conn.execute("SET lake.identity_nonce = '00000000-0000-0000-0000-000000000000'")
    assert current(conn) is None
    conn.rollback()


def test_applications_cannot_act_as(conn: Conn):
    conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT lake.act_as('alice')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "INSERT INTO lake_internal.session_identity VALUES"
            " (pg_backend_pid(), gen_random_uuid(), 'session', now(), 'alice')"
        )


def test_invalid_user_ids_are_refused(conn: Conn):
    for bad in ("", "a b", "x" * 200, "'; DROP TABLE x; --", "tab\there"):
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT lake.act_as(%s)", [bad])
        assert err.value.sqlstate == "LK011"


def test_rls_isolates_users(conn: Conn, location_dataset: str):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        "INSERT INTO user_data.location_history (ts, doc) VALUES (now(), "
        "jsonb_build_object('ts', now(), 'lat', 1, 'lon', 2))"
    )
    conn.execute("SELECT lake.act_as('bob', 'session')")
    conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
    assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (0,)
    # A forbidden update silently changes nothing.
    cur = conn.execute("UPDATE user_data.location_history SET doc = doc")
    assert cur.rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "INSERT INTO user_data.location_history (user_id, ts, doc)"
            " VALUES ('alice', now(), '{}')"
        )
