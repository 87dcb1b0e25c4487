"""Users, API keys, services and OAuth links: who may establish an identity, with which scopes,
and what each identity may then do with user data. Every test acts through a login role of
the matching group (application, service, administrator, auditor) against a real database."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.conftest import (
    ADMIN_ROLE,
    APP_ROLE,
    AUDITOR_ROLE,
    READER_ROLE,
    SERVICE_ROLE,
    WRITER_ROLE,
    seal,
)

Conn = psycopg.Connection[tuple[object, ...]]


def one(conn: Conn, query: str, params: object = None) -> object:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def new_key(conn: Conn, principal: str, scopes: list[str] | None = None, **kw: object) -> str:
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    scope_sql = "%(scopes)s" if scopes is not None else "ARRAY['read', 'write']"
    return str(
        one(
            conn,
            f"SELECT api_key FROM lake.create_api_key(%(p)s, {scope_sql}"
            + (", " + args if args else "")
            + ")",
            {"p": principal, "scopes": scopes, **kw},
        )
    )


@pytest.fixture
def people(conn: Conn, location_dataset: str) -> dict[str, str]:
    """alice and bob (users), gw (a service); a row of each user's; a key for each."""
    conn.execute("SELECT lake.create_user('alice', 'Alice')")
    conn.execute("SELECT lake.create_user('bob')")
    conn.execute("SELECT lake.create_user('gw', 'Gateway', 'service')")
    for user in ("alice", "bob"):
        conn.execute("SELECT lake.act_as(%s, 'session')", [user])
        conn.execute(
            "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
            "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " 'lat', 1, 'lon', 2, 'who', %s::text)))",
            [user],
        )
    return {
        "alice": new_key(conn, "alice"),
        "bob": new_key(conn, "bob"),
        "alice_read": new_key(conn, "alice", ["read"]),
        "alice_write": new_key(conn, "alice", ["write"]),
        "gw": new_key(conn, "gw"),
    }


def whose_rows(conn: Conn) -> list[object]:
    return [r[0] for r in conn.execute("SELECT doc->>'who' FROM user_data.location_history")]


def insert_row(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO user_data.location_history (ts, doc) VALUES (now(), jsonb_build_object("
        "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'lat', 1, 'lon', 2, 'who', 'inserted'))"
    )


# ----------------------------------------------------------------- users and their keys


def test_a_users_key_sees_and_writes_only_that_users_rows(people, as_role):
    app = as_role(APP_ROLE)
    assert one(app, "SELECT lake.authenticate(%s, 'session')", [people["alice"]]) == "alice"
    assert whose_rows(app) == ["alice"]
    insert_row(app)
    assert sorted(whose_rows(app)) == ["alice", "inserted"]
    # Writing a row for another user is refused by the policy, not silently re-owned.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO user_data.location_history (user_id, ts, doc)"
            " VALUES ('bob', now(), '{\"ts\": \"2026-01-01T00:00:00Z\"}')"
        )
    # A forbidden update of bob's rows silently changes 0 rows.
    assert (
        app.execute(
            "UPDATE user_data.location_history SET doc = doc WHERE doc->>'who' = 'bob'"
        ).rowcount
        == 0
    )
    assert app.execute("DELETE FROM user_data.location_history WHERE true").rowcount == 2
    bob = as_role(APP_ROLE)
    bob.execute("SELECT lake.authenticate(%s)", [people["bob"]])
    assert whose_rows(bob) == []  # transaction scope: the autocommit statement has ended


def test_no_identity_reads_nothing_and_writes_fail(people, as_role):
    app = as_role(APP_ROLE)
    assert whose_rows(app) == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_row(app)
    with pytest.raises(psycopg.Error) as err:
        app.execute("SELECT lake.ingest('location_history', '[{\"ts\": \"x\"}]')")
    assert err.value.sqlstate == "LK010"


def test_transaction_scope_does_not_outlive_the_transaction(people, as_role):
    app = as_role(APP_ROLE)
    app.autocommit = False
    assert one(app, "SELECT lake.authenticate(%s)", [people["alice"]]) == "alice"
    assert whose_rows(app) == ["alice"]
    app.commit()
    assert whose_rows(app) == []  # the pooled connection's next transaction: nobody
    app.rollback()


def test_set_cannot_change_the_identity(people, as_role):
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    # Nothing an application can SET moves it to bob: not the nonce, not a made-up setting.
    app.execute("SET lake.identity_nonce = '00000000-0000-0000-0000-000000000000'")
    assert whose_rows(app) == []
    app.execute("SELECT set_config('lake.user_id', 'bob', false)")
    assert one(app, "SELECT lake.current_user_id()") is None
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("UPDATE lake_internal.session_identity SET principal = 'bob'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SET ROLE lake_owner")


def test_read_and_write_scopes_are_enforced_in_the_database(people, as_role):
    reader = as_role(APP_ROLE)
    reader.execute("SELECT lake.authenticate(%s, 'session')", [people["alice_read"]])
    assert whose_rows(reader) == ["alice"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_row(reader)
    assert reader.execute("DELETE FROM user_data.location_history").rowcount == 0
    for statement in (
        "SELECT lake.ingest('location_history', '[{\"ts\": \"2026-01-01T00:00:00Z\"}]')",
        "INSERT INTO inbox.location_history (ts, doc) VALUES (now(), '{}')",
    ):
        with pytest.raises(psycopg.Error) as err:
            reader.execute(statement)
        assert err.value.sqlstate == "LK014", statement

    # A write-only key loads data through the lake's ingest paths and sees nothing.
    writer = as_role(APP_ROLE)
    writer.execute("SELECT lake.authenticate(%s, 'session')", [people["alice_write"]])
    assert whose_rows(writer) == []
    assert writer.execute("UPDATE user_data.location_history SET doc = doc").rowcount == 0
    writer.execute(
        "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
        "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'lat', 1, 'lon', 2, 'who', 'written')))"
    )
    assert sorted(whose_rows(reader)) == ["alice", "written"]


def test_read_and_write_roles_bound_what_a_login_may_do_whatever_its_key(people, as_role):
    reader = as_role(READER_ROLE)  # lake_read only, with a read-write key
    reader.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    assert whose_rows(reader) == ["alice"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_row(reader)
    for statement in (
        "SELECT lake.ingest('location_history', '[]')",
        "INSERT INTO inbox.location_history (ts, doc) VALUES (now(), '{}')",
        "DELETE FROM user_data.location_history",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(statement)

    writer = as_role(WRITER_ROLE)  # lake_write only: an uploader
    writer.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        whose_rows(writer)
    writer.execute(
        "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
        "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'lat', 1, 'lon', 2, 'who', 'uploaded')))"
    )
    assert sorted(whose_rows(reader)) == ["alice", "uploaded"]


def test_bad_keys_fail_and_every_failure_is_recorded(conn, people, as_role):
    app = as_role(APP_ROLE)
    key_id = people["alice"].split("_")[1]
    wrong_secret = people["alice"][:-4] + (
        "AAAA" if not people["alice"].endswith("AAAA") else "BBBB"
    )
    attempts = {
        "malformed key": "not a key",
        "unknown key": "lake_0123456789abcdef_" + "A" * 43,
        "wrong secret": wrong_secret,
    }
    for secret in attempts.values():
        assert one(app, "SELECT lake.authenticate(%s)", [secret]) is None
        assert whose_rows(app) == []
    conn.execute("SELECT lake.revoke_api_key(%s)", [key_id])
    assert one(app, "SELECT lake.authenticate(%s)", [people["alice"]]) is None
    expiring = new_key(conn, "bob", expires_in="1 hour")
    conn.execute(
        "UPDATE lake.api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
        [expiring.split("_")[1]],
    )
    assert one(app, "SELECT lake.authenticate(%s)", [expiring]) is None
    conn.execute("SELECT lake.set_user_enabled('bob', false)")
    assert one(app, "SELECT lake.authenticate(%s)", [people["bob"]]) is None

    seal(conn)
    reasons = [
        r[0]
        for r in conn.execute(
            "SELECT detail->>'reason' FROM lake.audit_log WHERE action = 'auth.failure' ORDER BY id"
        )
    ]
    assert reasons == [*attempts, "revoked key", "expired key", "disabled user"]
    rows = conn.execute(
        "SELECT db_role, lake_user FROM lake.audit_log WHERE action = 'auth.failure'"
    ).fetchall()
    assert set(rows) == {(APP_ROLE, None)}


def test_revoking_a_key_ends_the_sessions_it_authenticated(conn, people, as_role):
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    assert whose_rows(app) == ["alice"]
    conn.execute("SELECT lake.revoke_api_key(%s)", [people["alice"].split("_")[1]])
    assert whose_rows(app) == []


def test_keys_are_shown_once_and_stored_only_as_hashes(conn, people, as_role):
    admin = as_role(ADMIN_ROLE)
    secret = people["alice"].split("_", 2)[2]
    listed = admin.execute(
        "SELECT id, principal, scopes, revoked_at FROM lake.api_keys WHERE principal = 'alice'"
        " ORDER BY created_at"
    ).fetchall()
    assert [r[2] for r in listed] == [["read", "write"], ["read"], ["write"]]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT secret_sha256 FROM lake.api_keys")
    dump = one(conn, "SELECT string_agg(t::text, ' ') FROM lake.api_keys AS t")
    assert secret not in str(dump)
    seal(conn)
    audit = one(conn, "SELECT string_agg(t::text, ' ') FROM lake.audit_log AS t")
    assert secret not in str(audit)


def test_rotation_replaces_a_key_with_the_same_scopes(conn, people, as_role):
    old_id = people["alice_read"].split("_")[1]
    row = conn.execute("SELECT key_id, api_key, scopes FROM lake.rotate_api_key(%s)", [old_id])
    new_id, new_key_text, scopes = row.fetchone()  # type: ignore[misc]
    assert scopes == ["read"] and new_id != old_id
    app = as_role(APP_ROLE)
    assert one(app, "SELECT lake.authenticate(%s)", [people["alice_read"]]) is None
    assert one(app, "SELECT lake.authenticate(%s)", [new_key_text]) == "alice"
    assert one(conn, "SELECT replaced_by FROM lake.api_keys WHERE id = %s", [old_id]) == new_id
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.rotate_api_key(%s)", [old_id])
    assert err.value.sqlstate == "LK012"


def test_key_and_user_arguments_are_checked(conn, people):
    for call, params in (
        ("SELECT lake.create_api_key('nobody')", None),
        ("SELECT lake.create_api_key('alice', ARRAY['admin'])", None),
        ("SELECT lake.create_api_key('alice', ARRAY[]::text[])", None),
        ("SELECT lake.create_api_key('alice', expires_in => '-1 day')", None),
        ("SELECT lake.create_user('alice')", None),
        ("SELECT lake.create_user('x y')", None),
        ("SELECT lake.create_user('carol', NULL, 'robot')", None),
        ("SELECT lake.revoke_api_key('0000000000000000')", None),
        ("SELECT lake.authenticate('x', 'forever')", None),
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(call, params)
        assert (err.value.sqlstate or "").startswith("LK"), call


def test_only_administrators_manage_users_and_keys(people, as_role):
    for role in (APP_ROLE, SERVICE_ROLE, AUDITOR_ROLE):
        c = as_role(role)
        for call in (
            "SELECT lake.create_user('mallory')",
            "SELECT lake.create_api_key('alice')",
            "SELECT lake.rotate_api_key('0000000000000000')",
            "SELECT lake.revoke_api_key('0000000000000000')",
            "SELECT lake.set_user_enabled('alice', false)",
            "SELECT lake.link_oauth('github', '1', 'alice')",
            "SELECT * FROM lake.api_keys",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(call)


# ----------------------------------------------------------------- services and OAuth


def test_an_authenticated_service_acts_for_users(people, as_role):
    svc = as_role(SERVICE_ROLE)
    assert one(svc, "SELECT lake.authenticate(%s, 'session')", [people["gw"]]) == "gw"
    assert whose_rows(svc) == []  # a service alone is nobody's data
    svc.autocommit = False
    svc.execute("SELECT lake.act_as('alice')")
    assert whose_rows(svc) == ["alice"]
    identity = svc.execute("SELECT user_id, service, principal FROM lake.current_identity()")
    assert identity.fetchone() == ("alice", "gw", "gw")
    svc.commit()
    # Next transaction: alice is gone, the service's own session-long authentication stays.
    assert svc.execute("SELECT user_id, service FROM lake.current_identity()").fetchone() == (
        None,
        "gw",
    )
    svc.execute("SELECT lake.act_as('bob')")
    assert whose_rows(svc) == ["bob"]
    svc.commit()


def test_services_need_their_key_and_existing_enabled_users(conn, people, as_role):
    svc = as_role(SERVICE_ROLE)
    with pytest.raises(psycopg.Error) as err:
        svc.execute("SELECT lake.act_as('alice')")  # not authenticated
    assert err.value.sqlstate == "LK012"
    # A user's key does not make a service.
    svc.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    with pytest.raises(psycopg.Error) as err:
        svc.execute("SELECT lake.act_as('bob')")
    assert err.value.sqlstate == "LK012"
    svc.execute("SELECT lake.authenticate(%s, 'session')", [people["gw"]])
    conn.execute("SELECT lake.set_user_enabled('bob', false)")
    for user in ("bob", "nobody", "gw"):
        with pytest.raises(psycopg.Error) as err:
            svc.execute("SELECT lake.act_as(%s)", [user])
        assert err.value.sqlstate == "LK012", user
    # An application login with a service's key is still not a service.
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [people["gw"]])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT lake.act_as('alice')")


def test_a_service_acts_with_its_own_keys_scopes(conn, people, as_role):
    read_only = new_key(conn, "gw", ["read"])
    svc = as_role(SERVICE_ROLE)
    svc.execute("SELECT lake.authenticate(%s, 'session')", [read_only])
    svc.execute("SELECT lake.act_as('alice', 'session')")
    assert whose_rows(svc) == ["alice"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_row(svc)


def test_oauth_identities_map_to_users(conn, people, as_role):
    conn.execute("SELECT lake.link_oauth('github', '583231', 'alice')")
    # A service with its API key alone is not trusted with OAuth identities: only the gateway's
    # certificate is (tests/test_tls.py), or an administrator.
    svc = as_role(SERVICE_ROLE)
    svc.execute("SELECT lake.authenticate(%s, 'session')", [people["gw"]])
    with pytest.raises(psycopg.Error) as err:
        svc.execute("SELECT lake.act_as_oauth('github', '583231', 'session')")
    assert err.value.sqlstate == "LK012"
    admin = as_role(ADMIN_ROLE)
    admin.execute("SELECT lake.act_as_oauth('github', '583231', 'session')")
    assert whose_rows(admin) == ["alice"]
    conn.execute("SELECT lake.link_oauth('github', '583231', 'bob')")  # moved to bob
    admin.execute("SELECT lake.act_as_oauth('github', '583231', 'session')")
    assert whose_rows(admin) == ["bob"]
    for provider, subject in (("google", "583231"), ("github", "999")):
        with pytest.raises(psycopg.Error) as err:
            admin.execute("SELECT lake.act_as_oauth(%s, %s)", [provider, subject])
        assert err.value.sqlstate == "LK012"
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT lake.link_oauth('myspace', '1', 'alice')")


def test_the_auditor_reads_the_audit_log_but_no_user_data(people, as_role):
    auditor = as_role(AUDITOR_ROLE)
    one(auditor, "SELECT lake.seal()")  # an auditor may run the sealer
    assert int(one(auditor, "SELECT count(*) FROM lake.audit_log")) > 0  # type: ignore[arg-type]
    assert one(auditor, "SELECT ok FROM lake.verify_audit_chain()") is True
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        auditor.execute("SELECT * FROM user_data.location_history")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        auditor.execute("SELECT * FROM lake.quarantine")
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM lake.audit_log")


def test_the_client_authenticates_and_reports_refused_keys(db, people):
    from lake_client.client import Lake
    from lake_client.errors import AuthenticationFailed

    with Lake(make_conninfo(db, user=APP_ROLE)) as client:
        assert client.authenticate(people["alice"]) == "alice"
        identity = client.identity()
        assert identity is not None and identity["user_id"] == "alice"
        # A lost connection comes back with the same identity.
        client.conn.close()
        assert client.current_user_id() == "alice"
        with pytest.raises(AuthenticationFailed) as err:
            client.authenticate("lake_0123456789abcdef_" + "A" * 43)
        assert err.value.hint and "lake keys list" in err.value.hint
        assert client.identity() is None
