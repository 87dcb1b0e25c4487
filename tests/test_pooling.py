"""Transaction pooling through a real pgbouncer (issue 20 §2): the lake's identity is
transaction-scoped, so many clients of different lake users share a small pool of server
connections and no transaction ever sees another's identity or rows. pgbouncer runs as
`lake up --with pgbouncer` starts it (TLS 1.3 on both sides, SCRAM with auth_query), on a port of
the test's own."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from lake_client import local
from lake_client.config import Settings
from lake_client.local import pgbouncer
from lake_client.local.processes import silent
from tests.redis_cluster import free_ports
from tests.test_auth import new_key

Conn = psycopg.Connection[tuple[object, ...]]
POOL_SIZE = 2
USERS = 6
CLIENTS_PER_USER = 2
TRANSACTIONS = 20  # per client; every 10th rolls back


@pytest.fixture(scope="module")
def pooler(settings: Settings) -> Iterator[Settings]:
    if not settings.embedded:
        pytest.skip("the embedded pgbouncer pools the embedded PostgreSQL")
    s = dataclasses.replace(settings, pool_port=free_ports(1)[0])
    pgbouncer.up(s, silent, pool_size=POOL_SIZE)
    try:
        yield s
    finally:
        pgbouncer.down(s)


@pytest.fixture
def app_login(admin_conn: Conn) -> Iterator[tuple[str, str]]:
    """A login of lake_app with a SCRAM password (the test roles log in over the socket)."""
    role, password = f"lake_test_pool_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE lake_app").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )
    yield role, password
    admin_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_many_users_share_a_small_pool_and_no_identity_crosses_transactions(
    pooler: Settings, db: str, conn: Conn, location_dataset: str, app_login: tuple[str, str]
):
    users = [f"user{i}" for i in range(USERS)]
    keys = {}
    for user in users:
        conn.execute("SELECT lake.create_user(%s)", [user])
        keys[user] = new_key(conn, user)
    role, password = app_login
    name = str(conninfo_to_dict(db)["dbname"])
    through_pool = pgbouncer.dsn(pooler, name, user=role, password=password)

    backends: Counter[tuple[int, str]] = Counter()  # (server pid, lake user) -> transactions
    committed: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client(user: str) -> None:
        with psycopg.connect(through_pool, prepare_threshold=None) as c:
            c.execute("SELECT 1")  # the TLS and SCRAM of the client side
            c.commit()
            for n in range(TRANSACTIONS):
                # Nothing of the previous transaction on this server connection, whoever's.
                before = c.execute(
                    "SELECT lake.current_user_id(), (SELECT count(*) FROM lake.current_identity()),"
                    " (SELECT count(*) FROM user_data.location_history)"
                ).fetchone()
                if before != (None, 0, 0):
                    failures.append(f"{user} found {before} before authenticating")
                c.execute("SELECT lake.authenticate(%s)", [keys[user]])  # this transaction only
                pid, me = c.execute("SELECT pg_backend_pid(), lake.current_user_id()").fetchone()
                c.execute(
                    "SELECT lake.ingest('location_history', jsonb_build_array(jsonb_build_object("
                    "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                    " 'lat', 1, 'lon', 2, 'who', %s::text)))",
                    [user],
                )
                seen = {r[0] for r in c.execute("SELECT user_id FROM user_data.location_history")}
                if me != user or seen != {user}:
                    failures.append(f"{user} saw identity {me} and rows of {sorted(seen)}")
                if n % 10 == 9:
                    c.rollback()
                else:
                    c.commit()
                    with lock:
                        committed[user] += 1
                with lock:
                    backends[(pid, user)] += 1

    threads = [
        threading.Thread(target=client, args=(user,))
        for user in users
        for _ in range(CLIENTS_PER_USER)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert sum(backends.values()) == USERS * CLIENTS_PER_USER * TRANSACTIONS
    # Through pgbouncer: at most POOL_SIZE server connections served all twelve clients, and
    # each of them served several lake users one after another.
    pids = {pid for pid, _ in backends}
    assert 1 <= len(pids) <= POOL_SIZE
    assert all(len({u for p, u in backends if p == pid}) > 1 for pid in pids)
    # What committed is there, each row its user's; what rolled back is not.
    mine = "SELECT doc->>'who' FROM user_data.location_history WHERE doc->>'who' = user_id"
    rows = Counter(str(r[0]) for r in conn.execute(mine))
    assert rows == committed
    assert sum(committed.values()) == USERS * CLIENTS_PER_USER * (TRANSACTIONS - TRANSACTIONS // 10)
    total = conn.execute("SELECT count(*) FROM user_data.location_history").fetchone()
    assert total == (sum(committed.values()),)


def test_the_pool_speaks_tls_13_and_scram_only(
    pooler: Settings, db: str, app_login: tuple[str, str]
):
    found = local.status(pooler)
    assert found.pgbouncer_running is True
    assert any(line.startswith("pgbouncer: running") for line in found.lines())
    role, password = app_login
    name = str(conninfo_to_dict(db)["dbname"])
    with psycopg.connect(
        pgbouncer.dsn(pooler, name, user=role, password=password), prepare_threshold=None
    ) as c:
        assert c.pgconn.ssl_in_use
        # pgbouncer reached PostgreSQL over TLS too (hostssl; pg_stat_ssl of its connection).
        row = c.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row == (True, "TLSv1.3")
    refused = [
        pgbouncer.dsn(pooler, name, user=role, password="wrong"),
        pgbouncer.dsn(pooler, name, user=role, password=password, sslmode="disable"),
        pgbouncer.dsn(
            pooler, name, user=role, password=password, ssl_max_protocol_version="TLSv1.2"
        ),
        pgbouncer.dsn(pooler, name, user="postgres", password="anything"),  # no superusers
    ]
    for conninfo in refused:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(conninfo, prepare_threshold=None).close()
