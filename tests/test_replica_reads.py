"""Reads on a hot standby (issue 20 §2): a plain streaming replica of the embedded cluster
(lake_client.local.standby, pg_basebackup -R) serves a user's reads under the same RLS as the
primary, with the identity a token the primary signed (lake.identity_token), checked by
lake.current_user_id() without writing; a forged token is no identity there."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.grpc_client import GrpcLake
from lake_client.grpc_server import make_server
from lake_client.local import standby
from lake_client.local.tls import door_files
from tests.conftest import APP_ROLE, READER_ROLE, SERVICE_ROLE, server_folder
from tests.redis_cluster import free_ports
from tests.test_auth import new_key, people  # noqa: F401 (a fixture)

Conn = psycopg.Connection[tuple[object, ...]]
SLOT = "lake_test_replica"


@pytest.fixture(scope="module")
def replica(settings: Settings) -> Iterator[standby.Standby]:
    if not settings.embedded:
        pytest.skip("the standby is made from the embedded cluster's data directory")
    folder = server_folder("lake-standby-")
    node = standby.create(settings, folder / "node", free_ports(1)[0], name=SLOT)
    try:
        yield node
    finally:
        node.remove()
        standby.drop_slot(settings, SLOT)
        shutil.rmtree(folder, ignore_errors=True)


def on_replica(node: standby.Standby, db: str, role: str) -> Conn:
    name = psycopg.conninfo.conninfo_to_dict(db)["dbname"]
    return psycopg.connect(node.dsn(str(name), user=role), autocommit=True)


def token_of(conn: Conn, ttl: str = "5 minutes") -> str:
    row = conn.execute("SELECT token FROM lake.identity_token(%s::interval)", [ttl]).fetchone()
    assert row is not None
    return str(row[0])


def read_as(conn: Conn, token: str | None) -> tuple[object, list[object]]:
    """(current_user_id(), the owners of the rows visible) in one transaction with `token`."""
    with conn.transaction():
        if token is not None:
            conn.execute("SELECT set_config('lake.identity_token', %s, true)", [token])
        row = conn.execute("SELECT lake.current_user_id()").fetchone()
        who = [r[0] for r in conn.execute("SELECT doc->>'who' FROM user_data.location_history")]
    assert row is not None
    return row[0], sorted(who)


def test_a_replica_serves_a_users_reads_under_rls_and_refuses_forged_identities(
    settings: Settings,
    replica: standby.Standby,
    db: str,
    conn: Conn,
    as_role,  # type: ignore[no-untyped-def]
    people: dict[str, str],  # noqa: F811
):
    app = as_role(APP_ROLE)
    assert app.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]]).fetchone()
    alice = token_of(app)
    short = token_of(app, "1 second")
    app.execute("SELECT lake.authenticate(%s, 'session')", [people["bob"]])
    bob = token_of(app)
    reader = as_role(READER_ROLE)
    reader.execute("SELECT lake.authenticate(%s, 'session')", [people["alice"]])
    readers_alice = token_of(reader)
    replica.wait_replayed()

    # The signing keys are the owner's alone, on the primary as on the standby.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT secret FROM lake_internal.identity_signing_keys")

    with on_replica(replica, db, APP_ROLE) as r:
        assert r.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            r.execute("SELECT secret FROM lake_internal.identity_signing_keys")
        # No token: no identity, no rows (the primary's nonce means nothing here either).
        assert read_as(r, None) == (None, [])
        r.execute("SET lake.identity_nonce = '00000000-0000-0000-0000-000000000000'")
        assert read_as(r, None) == (None, [])
        # Each user's own token: exactly that user's rows, as on the primary.
        assert read_as(r, alice) == ("alice", ["alice"])
        assert read_as(r, bob) == ("bob", ["bob"])
        # Transaction-scoped: the next transaction has no identity.
        assert read_as(r, None) == (None, [])
        ident = r.execute("SELECT lake.current_identity()").fetchall()
        assert ident == []

        # Forged: a token made by hand (a claim of alice with a made-up signature), a tampered
        # signature, a claim changed under a valid signature, a SET of the GUC with garbage.
        version, key, claims, signature = alice.split(".")
        forged_claims = bytes.fromhex(claims).decode().replace('"alice"', '"bob"').encode().hex()
        flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        for forged in (
            f"{version}.{key}.{claims}.{'ab' * 32}",
            f"{version}.{key}.{claims}.{flipped}",
            f"{version}.{key}.{forged_claims}.{signature}",
            f"{version}.{int(key) + 1}.{claims}.{signature}",  # a key that does not exist
            "alice",
            "",
        ):
            assert read_as(r, forged) == (None, []), forged
        r.execute(
            "SELECT set_config('lake.identity_token', %s, false)",
            [f"{version}.{key}.{forged_claims}.{signature}"],
        )
        assert read_as(r, None) == (None, [])
        r.execute("RESET lake.identity_token")

        # Expired: the one-second token once this server's clock has passed its expiry.
        row = r.execute(
            "SELECT to_timestamp((convert_from(decode(split_part(%s, '.', 3), 'hex'), 'UTF8')"
            "::jsonb ->> 'exp')::bigint)",
            [short],
        ).fetchone()
        assert row is not None
        while r.execute("SELECT now() <= %s", [row[0]]).fetchone() == (True,):
            time.sleep(0.2)
        assert read_as(r, short) == (None, [])

        # Writes are refused by the standby itself, whatever the identity.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), r.transaction():
            r.execute("SELECT set_config('lake.identity_token', %s, true)", [alice])
            r.execute("DELETE FROM user_data.location_history")

    # A token of another login role: the reader login's token for alice, shown by the app login.
    with on_replica(replica, db, APP_ROLE) as r:
        assert read_as(r, readers_alice) == (None, [])
    with on_replica(replica, db, READER_ROLE) as r:
        assert read_as(r, readers_alice) == ("alice", ["alice"])

    # On the primary a token is no identity (the primary keeps its session identities).
    fresh = as_role(APP_ROLE)
    assert read_as(fresh, alice) == (None, [])

    # Revoking alice's key on the primary ends her tokens once the standby has replayed it.
    key_id = people["alice"].split("_")[1]
    conn.execute("SELECT lake.revoke_api_key(%s)", [key_id])
    replica.wait_replayed()
    with on_replica(replica, db, APP_ROLE) as r:
        assert read_as(r, alice) == (None, [])
        assert read_as(r, bob) == ("bob", ["bob"])


def test_the_clients_reads_go_to_the_replica_with_a_token(
    replica: standby.Standby,
    db: str,
    people: dict[str, str],  # noqa: F811
):
    name = str(psycopg.conninfo.conninfo_to_dict(db)["dbname"])
    primary = make_conninfo(db, user=APP_ROLE)
    with Lake(primary, read_dsn=replica.dsn(name, user=APP_ROLE)) as lake:
        lake.authenticate(people["bob"])
        replica.wait_replayed()
        counts = lake.row_counts("location_history")
        assert sum(counts.values()) == 1
        # The read ran on the standby: its connection is in recovery.
        assert lake._read("SELECT pg_is_in_recovery() AS r") == [{"r": True}]
        assert lake.current_user_id() == "bob"  # the primary's session identity, as before
        lake.authenticate(people["alice"])  # a new identity: a new token
        replica.wait_replayed()
        assert lake._read("SELECT lake.current_user_id() AS u") == [{"u": "alice"}]


def test_grpc_query_reads_on_the_replica_as_the_caller(
    settings: Settings,
    replica: standby.Standby,
    db: str,
    conn: Conn,
    people: dict[str, str],  # noqa: F811
):
    """`lake grpc --read-dsn`: Query authenticates on the primary (as every call does) and reads
    on the standby under the token. With the standby's replay paused, a row added on the primary
    is not in the answer: it came from the standby."""
    name = str(psycopg.conninfo.conninfo_to_dict(db)["dbname"])
    server, port, service = make_server(
        make_conninfo(db, user=SERVICE_ROLE),
        tls=door_files(settings.home, "grpc", print),
        redis_url=settings.redis_url(),
        read_dsn=replica.dsn(name, user=SERVICE_ROLE),
    )
    target = f"127.0.0.1:{port}"
    try:
        replica.wait_replayed()
        with on_replica(replica, db, "postgres") as r:
            r.execute("SELECT pg_wal_replay_pause()")
            try:
                conn.execute("SELECT lake.act_as('alice', 'session')")
                conn.execute(
                    "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
                    "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                    " 'lat', 1, 'lon', 2, 'who', 'alice')))"
                )
                with GrpcLake(target, people["gw"], act_for="alice") as gw:
                    rows = list(gw.query("location_history"))
                with GrpcLake(target, people["bob"]) as bob:
                    bobs = list(bob.query("location_history"))
            finally:
                r.execute("SELECT pg_wal_replay_resume()")
        assert [(row["user_id"], row["doc"]["who"]) for row in rows] == [("alice", "alice")]
        assert [(row["user_id"], row["doc"]["who"]) for row in bobs] == [("bob", "bob")]
        replica.wait_replayed()
        with GrpcLake(target, people["gw"], act_for="alice") as gw:
            assert len(list(gw.query("location_history"))) == 2
    finally:
        server.stop(None).wait()
        service.close()


def test_a_token_never_outlives_its_identity(conn: Conn, as_role, people: dict[str, str]):  # type: ignore[no-untyped-def]  # noqa: F811
    """The lifetime asked for is capped by the key's expiry and by an hour; without an identity
    there is no token."""
    short_key = new_key(conn, "alice", expires_in="10 minutes")
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.Error) as no_identity:
        app.execute("SELECT lake.identity_token()")
    assert no_identity.value.sqlstate == "LK012"
    app.execute("SELECT lake.authenticate(%s, 'session')", [short_key])
    row = app.execute(
        "SELECT t.expires_at <= k.expires_at FROM lake.identity_token('1 hour') AS t,"
        " (SELECT now() + interval '10 minutes' AS expires_at) AS k"
    ).fetchone()
    assert row == (True,)
    with pytest.raises(psycopg.Error) as too_long:
        app.execute("SELECT lake.identity_token('2 hours')")
    assert too_long.value.sqlstate == "LK011"
