"""Embeddings and the similarity search against the real pgvector: put and search round trip,
idempotency, dimensions, row-level security (users and a service acting for one), a user with
1 % of the rows still getting k results from the HNSW index, the Redis cache and its
invalidation, and embeddings leaving with their person (erasure) and dataset."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo

from lake_client.bridge import Bridge
from lake_client.cache import LakeCache
from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.errors import DatasetError, InputError
from tests.conftest import ADMIN_ROLE, APP_ROLE, SERVICE_ROLE, seal
from tests.test_bridge import Running

Conn = psycopg.Connection[tuple[object, ...]]
DIMS = 8
SCHEMA = '{"type": "object", "required": ["ts"], "properties": {"kind": {"type": "string"}}}'


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def text(v: np.ndarray) -> str:
    return "[" + ",".join(str(float(x)) for x in v) + "]"


def add_records(conn: Conn, user: str, n: int, dataset: str = "notes") -> list[int]:
    """n records of `user` (ts in the last hours, kind a / b alternating); their ids in order."""
    conn.execute(
        f"""INSERT INTO user_data.{dataset} (user_id, ts, doc)
            SELECT %(u)s, t, jsonb_build_object('ts', t, 'kind',
                                                CASE WHEN i %% 2 = 0 THEN 'a' ELSE 'b' END)
              FROM generate_series(1, %(n)s) AS i,
                   LATERAL (SELECT now() - make_interval(secs => i) AS t) AS x""",
        {"u": user, "n": n},
    )
    return [
        int(str(r[0]))
        for r in conn.execute(
            f"SELECT id FROM user_data.{dataset} WHERE user_id = %s ORDER BY id", [user]
        )
    ]


@pytest.fixture
def notes(conn: Conn) -> str:
    """Dataset notes with model m8 (8 dimensions, cosine); users alice and bob, service gw."""
    conn.execute("SELECT lake.create_dataset('notes', %s, '{\"pii_scan\": false}')", [SCHEMA])
    conn.execute("SELECT lake.declare_embeddings('notes', 'm8', 8)")
    for user, kind in (("alice", "user"), ("bob", "user"), ("gw", "service")):
        conn.execute("SELECT lake.create_user(%s, NULL, %s)", [user, kind])
    return "notes"


def key_of(conn: Conn, principal: str) -> str:
    row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [principal]).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def app_as(db: str, conn: Conn) -> Iterator[Callable[[str], Lake]]:
    """Lake clients that log in as the test application and authenticate with the user's key."""
    opened: list[Lake] = []

    def open_as(user: str) -> Lake:
        lake = Lake(make_conninfo(db, user=APP_ROLE))
        lake.authenticate(key_of(conn, user))
        opened.append(lake)
        return lake

    yield open_as
    for lake in opened:
        lake.close()


def test_put_and_similar_round_trip(
    conn: Conn, notes: str, app_as: Callable[[str], Lake], as_role: Callable[[str], Conn]
):
    ids = add_records(conn, "alice", 50)
    vecs = unit(np.random.default_rng(1), 50)
    alice = app_as("alice")
    # Batches of 7 here, so that several binary COPY batches make up the call.
    assert alice.put_embeddings(notes, "m8", zip(ids, vecs, strict=True), batch_size=7) == 50
    found = alice.similar(notes, vecs[3], k=5)
    assert found[0]["id"] == ids[3]
    assert found[0]["distance"] == pytest.approx(0.0, abs=1e-6)
    distances = [r["distance"] for r in found]
    assert distances == sorted(distances) and len(found) == 5
    exact = np.argsort(1 - vecs @ vecs[3])[:5]
    assert {r["id"] for r in found} == {ids[i] for i in exact}
    assert found[0]["doc"]["kind"] in ("a", "b") and found[0]["ts"].endswith("Z")
    # The filter and the time range narrow the search.
    assert {r["doc"]["kind"] for r in alice.similar(notes, vecs[3], 10, filter={"kind": "b"})} == {
        "b"
    }
    newest = conn.execute("SELECT max(ts) FROM user_data.notes").fetchone()
    assert newest is not None
    only = alice.similar(notes, vecs[3], 10, from_ts=newest[0])  # type: ignore[arg-type]
    assert [r["id"] for r in only] == [ids[0]]  # record 1 is the newest (now - 1 s)
    # The SQL surface, as a service's SQL would call it.
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    row = adm.execute("SELECT id FROM lake.similar('notes', %s, 1)", [text(vecs[9])]).fetchone()
    assert row is not None and row[0] == ids[9]


def test_put_is_idempotent_per_record_and_model(
    conn: Conn, notes: str, as_role: Callable[[str], Conn]
):
    ids = add_records(conn, "alice", 3)
    conn.execute("SELECT lake.declare_embeddings('notes', 'm2', 2, 'l2')")
    conn = as_role(ADMIN_ROLE)  # row-level security applies (not to the superuser)
    conn.execute("SELECT lake.act_as('alice', 'session')")
    batch = [ids, ["[1,0,0,0,0,0,0,0]", "[0,1,0,0,0,0,0,0]", "[0,0,1,0,0,0,0,0]"]]
    for _ in range(2):
        conn.execute("SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])", batch)
    conn.execute(
        "SELECT lake.put_embeddings('notes', 'm2', %s, %s::vector[])", [ids[:1], ["[3,4]"]]
    )
    counts = conn.execute(
        "SELECT model, count(*) FROM user_data.notes__embeddings GROUP BY model ORDER BY model"
    ).fetchall()
    assert counts == [("m2", 1), ("m8", 3)]
    # Sending a record again replaces its vector; an id sent twice in one call: the last wins.
    conn.execute(
        "SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])",
        [[ids[0], ids[0]], ["[0,0,0,0,0,0,0,9]", "[0,0,0,0,0,0,0,1]"]],
    )
    row = conn.execute(
        "SELECT embedding::text FROM user_data.notes__embeddings WHERE record_id = %s"
        " AND model = 'm8'",
        [ids[0]],
    ).fetchone()
    assert row == ("[0,0,0,0,0,0,0,1]",)
    assert conn.execute("SELECT count(*) FROM user_data.notes__embeddings").fetchone() == (4,)
    # Two models: similar must be told which (LK092), and finds by the one named.
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT * FROM lake.similar('notes', '[3,4]')")
    assert err.value.sqlstate == "LK092"
    got = conn.execute("SELECT id, distance FROM lake.similar('notes', '[3,4]', model => 'm2')")
    assert got.fetchall() == [(ids[0], 0.0)]


def test_a_vector_of_the_wrong_dimensions_is_refused(
    conn: Conn, notes: str, app_as: Callable[[str], Lake], lake: Lake
):
    ids = add_records(conn, "alice", 2)
    conn.execute("SELECT lake.act_as('alice', 'session')")
    with pytest.raises(psycopg.Error) as err:
        conn.execute(
            "SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])",
            [ids, ["[1,0,0,0,0,0,0,0]", "[1,0,0]"]],
        )
    assert err.value.sqlstate == "LK091"
    assert "embedding 2 has 3 dimensions" in str(err.value)
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT * FROM lake.similar('notes', '[1,2]')")
    assert err.value.sqlstate == "LK091"
    with pytest.raises(psycopg.Error) as err:
        conn.execute(
            "SELECT lake.put_embeddings('notes', 'nope', %s, %s::vector[])", [ids[:1], ["[1]"]]
        )
    assert err.value.sqlstate == "LK092"
    alice = app_as("alice")
    with pytest.raises(InputError, match="3 dimensions"):
        alice.put_embeddings(notes, "m8", [(ids[0], [1.0, 2.0, 3.0])])
    with pytest.raises(InputError, match="not a vector"):
        alice.put_embeddings(notes, "m8", [(ids[0], "abc")])
    with pytest.raises(DatasetError, match="declared with 8 dimensions"):  # LK093: fixed
        lake.declare_embeddings(notes, "m8", 16)
    assert conn.execute("SELECT count(*) FROM user_data.notes__embeddings").fetchone() == (0,)


def test_a_user_never_finds_another_users_vectors(
    conn: Conn, notes: str, app_as: Callable[[str], Lake], as_role: Callable[[str], Conn]
):
    rng = np.random.default_rng(2)
    ids = {u: add_records(conn, u, 20) for u in ("alice", "bob")}
    vecs = {u: unit(rng, 20) for u in ("alice", "bob")}
    clients = {u: app_as(u) for u in ("alice", "bob")}
    for u in ("alice", "bob"):
        clients[u].put_embeddings(notes, "m8", zip(ids[u], vecs[u], strict=True))
    # bob searching with alice's exact vector finds only his own records.
    found = clients["bob"].similar(notes, vecs["alice"][0], k=50)
    assert {r["id"] for r in found} == set(ids["bob"])
    # bob cannot attach vectors to alice's records: refused whole, nothing written.
    with pytest.raises(InputError, match="not records of user 'bob'"):
        clients["bob"].put_embeddings(
            notes, "m8", [(ids["bob"][0], vecs["bob"][0]), (ids["alice"][0], vecs["bob"][1])]
        )
    row = conn.execute(
        "SELECT user_id FROM user_data.notes__embeddings WHERE record_id = %s", [ids["alice"][0]]
    ).fetchone()
    assert row == ("alice",)
    # Read directly, the table shows each user their own rows, as the records.
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [key_of(conn, "bob")])
    assert app.execute("SELECT DISTINCT user_id FROM user_data.notes__embeddings").fetchall() == [
        ("bob",)
    ]
    # A service sees nobody's until it acts for a user, then only that user's.
    svc = as_role(SERVICE_ROLE)
    svc.execute("SELECT lake.authenticate(%s, 'session')", [key_of(conn, "gw")])
    query = text(vecs["alice"][0])
    assert svc.execute("SELECT id FROM lake.similar('notes', %s, 50)", [query]).fetchall() == []
    svc.autocommit = False
    svc.execute("SELECT lake.act_as('alice')")
    got = {r[0] for r in svc.execute("SELECT id FROM lake.similar('notes', %s, 50)", [query])}
    assert got == set(ids["alice"])
    svc.commit()


@pytest.mark.parametrize("mode", ["relaxed_order", "strict_order"])
def test_a_user_with_1_percent_of_the_rows_gets_k_results(
    conn: Conn, notes: str, mode: str, as_role: Callable[[str], Conn]
):
    """Through the HNSW index (exact_below 0), which returns ef_search candidates of which alice
    owns 1 %: without the iterative scan she gets next to nothing, with it k. By default (she
    has fewer vectors than exact_below) her own vectors are searched exactly."""
    rng = np.random.default_rng(3)
    ids = {"bob": add_records(conn, "bob", 2970), "alice": add_records(conn, "alice", 30)}
    vecs = {u: unit(rng, len(ids[u])) for u in ids}
    for u in ("bob", "alice"):
        conn.execute("SELECT lake.act_as(%s, 'session')", [u])
        conn.execute(
            "SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])",
            [ids[u], [text(v) for v in vecs[u]]],
        )
    conn.execute("ANALYZE user_data.notes__embeddings")
    adm = as_role(ADMIN_ROLE)  # row-level security applies (not to the superuser)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    # The planner's other paths (her rows, or all, read and sorted) are exact and always find k:
    # without sorts the HNSW path can only walk the index, which is what this test examines.
    adm.execute("SET enable_sort = off")
    queries = unit(rng, 10)
    exact = [{ids["alice"][i] for i in np.argsort(1 - vecs["alice"] @ q)[:10]} for q in queries]

    def search(**settings: object) -> list[list[int]]:
        conn.execute(
            "SELECT lake.declare_embeddings('notes', 'm8', 8, iterative_scan => %(mode)s,"
            " exact_below => %(exact_below)s)",
            settings,
        )
        return [
            [
                int(str(r[0]))
                for r in adm.execute("SELECT id FROM lake.similar('notes', %s, 10)", [text(q)])
            ]
            for q in queries
        ]

    def recall(found: list[list[int]]) -> float:
        return float(np.mean([len(set(f) & e) / 10 for f, e in zip(found, exact, strict=True)]))

    without = search(mode="off", exact_below=0)
    assert sum(len(r) for r in without) < 10 * 10 / 2  # the index alone finds few of hers
    with_iterative = search(mode=mode, exact_below=0)
    assert all(len(r) == 10 for r in with_iterative)
    assert recall(with_iterative) >= 0.9
    # The default: fewer vectors of hers than exact_below, an exact search (whatever the scan).
    exact_path = search(mode="off", exact_below=50000)
    assert all(len(r) == 10 for r in exact_path)
    assert recall(exact_path) == 1.0


def test_cached_searches_are_invalidated_by_the_users_changes(
    db: str, settings: Settings, conn: Conn, notes: str, app_as: Callable[[str], Lake]
):
    client = redis.Redis.from_url(settings.redis_url())
    prefix = f"test{uuid.uuid4().hex[:8]}"
    cache = LakeCache(client, prefix=prefix)
    bridge = Running(
        Bridge(db, client, name=prefix, stream=prefix, cache_prefix=prefix, poll_s=0.2)
    )
    try:
        ids = add_records(conn, "alice", 10)
        # The bridge forwards those records' changes first: an invalidation of alice's namespace
        # arriving after the search below is cached would look like the cache not serving it.
        seal(conn)
        last = conn.execute("SELECT max(id) FROM lake.data_changes").fetchone()
        assert last is not None and last[0] is not None
        deadline = time.monotonic() + 30
        while (bridge.bridge.cursor or 0) < last[0]:
            assert time.monotonic() < deadline, "the bridge did not forward the new records"
            time.sleep(0.05)
        vecs = unit(np.random.default_rng(4), 10)
        alice = app_as("alice")
        alice.put_embeddings(notes, "m8", zip(ids, vecs, strict=True), cache=cache)
        first = alice.similar(notes, vecs[0], 3, cache=cache)
        assert first[0]["id"] == ids[0]
        # Served from Redis: a change the cache is not told of (a superuser's, past the lake's
        # capture) does not show.
        conn.execute(
            "UPDATE user_data.notes__embeddings SET embedding = %s WHERE record_id = %s",
            [text(-vecs[0]), ids[0]],
        )
        assert alice.similar(notes, vecs[0], 3, cache=cache) == first
        # put_embeddings invalidates the user's namespace after its batch.
        alice.put_embeddings(notes, "m8", [(ids[0], vecs[0] * -1)], cache=cache)
        assert ids[0] not in [r["id"] for r in alice.similar(notes, vecs[0], 3, cache=cache)]
        alice.put_embeddings(notes, "m8", [(ids[0], vecs[0])], cache=cache)
        assert alice.similar(notes, vecs[0], 3, cache=cache)[0]["id"] == ids[0]
        # A change of her records reaches the cache through the bridge: the record she deletes
        # leaves her results.
        alice.conn.execute("DELETE FROM user_data.notes WHERE id = %s", [ids[0]])
        alice.conn.commit()
        deadline = time.monotonic() + 30
        while ids[0] in [r["id"] for r in alice.similar(notes, vecs[0], 3, cache=cache)]:
            assert time.monotonic() < deadline, "the bridge did not invalidate the cache"
            time.sleep(0.1)
        # bob's cached searches are his own namespace.
        assert cache.version_key(notes, "alice") != cache.version_key(notes, "bob")
    finally:
        bridge.halt()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_embeddings_leave_with_their_person_and_dataset(conn: Conn, notes: str):
    ids = {u: add_records(conn, u, 3) for u in ("alice", "bob")}
    for u in ("alice", "bob"):
        conn.execute("SELECT lake.act_as(%s, 'session')", [u])
        conn.execute(
            "SELECT lake.put_embeddings('notes', 'm8', %s, array_fill('[1,0,0,0,0,0,0,0]'::vector,"
            " ARRAY[3]))",
            [ids[u]],
        )
    conn.execute("SELECT lake.erase_user('alice', 'test')")
    rows = conn.execute("SELECT DISTINCT user_id FROM user_data.notes__embeddings").fetchall()
    assert rows == [("bob",)]
    conn.execute("SELECT lake.drop_dataset('notes', force => true)")
    assert conn.execute("SELECT to_regclass('user_data.notes__embeddings')").fetchone() == (None,)
    assert conn.execute("SELECT count(*) FROM lake.embedding_models").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'user_data_partitions'"
        " AND tablename LIKE 'notes%'"
    ).fetchone() == (0,)


def test_the_embeddings_table_is_guarded_as_the_records(conn: Conn, notes: str):
    """RLS enabled and forced, the records' policies, owned by no login role; every month of
    records has its month of embeddings, each with the model's HNSW index."""
    row = conn.execute(
        "SELECT c.relrowsecurity, c.relforcerowsecurity, r.rolcanlogin,"
        "       array(SELECT polname::text FROM pg_policy WHERE polrelid = c.oid ORDER BY 1)"
        "  FROM pg_class AS c JOIN pg_roles AS r ON r.oid = c.relowner"
        " WHERE c.oid = 'user_data.notes__embeddings'::regclass"
    ).fetchone()
    assert row == (
        True,
        True,
        False,
        ["lake_internal", "scope_delete", "scope_insert", "scope_update", "user_isolation"],
    )
    months = conn.execute(
        "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.notes'::regclass)"
        " - 2,"  # the two overflow partitions have no embeddings' twin
        " (SELECT count(*) FROM pg_inherits"
        "   WHERE inhparent = 'user_data.notes__embeddings'::regclass),"
        " (SELECT count(*) FROM pg_indexes WHERE schemaname = 'user_data_partitions'"
        "   AND indexdef LIKE '%USING hnsw%')"
    ).fetchone()
    assert months is not None and months[0] == months[1] == months[2] > 0
    # A month made later (premake, ensure_partitions) gets its twin and index too.
    conn.execute(
        "SELECT lake.ensure_partitions('notes', now() + interval '2 years',"
        " now() + interval '2 years')"
    )
    after = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'user_data_partitions'"
        " AND indexdef LIKE '%USING hnsw%'"
    ).fetchone()
    assert after is not None and after[0] > months[2]


def test_a_month_leaves_with_its_embeddings_and_comes_back_without(
    conn: Conn, notes: str, archive_dir: object, as_role: Callable[[str], Conn]
):
    """Retention drops a month's embeddings with its records; a restored month's records come
    back, with an empty month of embeddings that takes vectors again (they are not archived)."""
    ahead = "(date_trunc('month', now(), 'UTC') + interval '3 months 14 days')"
    oldest = (
        "greatest(lake.month_start(now() - interval '12 months') + interval '27 days',"
        " now() - interval '12 months' + interval '1 hour')"
    )
    conn.execute(
        "INSERT INTO user_data.notes (user_id, ts, doc)"
        f" SELECT 'alice', t, jsonb_build_object('ts', t) FROM (VALUES ({oldest}), (now())) AS v(t)"
    )
    ids = [int(str(r[0])) for r in conn.execute("SELECT id FROM user_data.notes ORDER BY ts")]
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    put = "SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])"
    adm.execute(put, [ids, ["[1,0,0,0,0,0,0,0]", "[0,1,0,0,0,0,0,0]"]])
    month = conn.execute(f"SELECT lake.month_start({oldest})").fetchone()
    assert month is not None
    part = conn.execute(
        "SELECT lake_internal._partition_name('notes', %s) || '_e'", [month[0]]
    ).fetchone()
    assert part is not None
    exists = "SELECT to_regclass(format('user_data_partitions.%%I', %s::text)) IS NOT NULL"
    assert conn.execute(exists, [part[0]]).fetchone() == (True,)

    report = conn.execute(f"CALL lake.apply_retention({ahead})").fetchone()
    assert report is not None and report[0]["datasets"]["notes"]["archived"] == 1  # type: ignore[index]
    assert conn.execute(exists, [part[0]]).fetchone() == (False,)
    query = "SELECT id FROM lake.similar('notes', '[1,0,0,0,0,0,0,0]', 5)"
    assert adm.execute(query).fetchall() == [(ids[1],)]

    conn.execute(f"SELECT lake.restore_partition('notes', %s, {ahead})", [month[0]])
    assert conn.execute(exists, [part[0]]).fetchone() == (True,)
    assert adm.execute(query).fetchall() == [(ids[1],)]  # the record is back, its vector not
    # The service finds what to embed again as the README says: the user's records in the
    # restored month without a vector of the model.
    missing = adm.execute(
        "SELECT r.id FROM user_data.notes AS r WHERE r.ts >= %(m)s"
        " AND r.ts < %(m)s + interval '1 month' AND NOT EXISTS (SELECT FROM"
        " user_data.notes__embeddings AS e WHERE e.record_id = r.id AND e.ts = r.ts"
        " AND e.model = 'm8')",
        {"m": month[0]},
    ).fetchall()
    assert missing == [(ids[0],)]
    adm.execute(put, [ids[:1], ["[1,0,0,0,0,0,0,0]"]])
    assert adm.execute(query).fetchall() == [(ids[0],), (ids[1],)]


def test_a_rollback_brings_records_back_with_their_vectors(
    conn: Conn, notes: str, as_role: Callable[[str], Conn]
):
    """Vectors stay when their record is deleted, so a rollback that brings the record back (with
    its id) brings its vector back into the search; a record the rollback removes takes its
    vector out of the results (the row stays, unreachable, as the README says)."""
    ids = add_records(conn, "alice", 3)
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    put = "SELECT lake.put_embeddings('notes', 'm8', %s, %s::vector[])"
    near = ["[1,0,0,0,0,0,0,0]", "[0,1,0,0,0,0,0,0]", "[0,0,1,0,0,0,0,0]"]
    adm.execute(put, [ids, near])
    point = conn.execute("SELECT id FROM lake.checkpoint('notes')").fetchone()
    assert point is not None
    conn.execute("DELETE FROM user_data.notes WHERE id = %s", [ids[0]])
    (new,) = set(add_records(conn, "alice", 1)) - set(ids)
    adm.execute(put, [[new], ["[1,0.1,0,0,0,0,0,0]"]])
    query = "SELECT id FROM lake.similar('notes', '[1,0,0,0,0,0,0,0]', 2)"
    assert adm.execute(query).fetchall() == [(new,), (ids[1],)]

    done = conn.execute(
        "SELECT rows_deleted, rows_restored FROM lake.rollback('notes', %s)", [point[0]]
    ).fetchone()
    assert done == (1, 1)
    assert adm.execute(query).fetchall() == [(ids[0],), (ids[1],)]
    vector = adm.execute(
        "SELECT embedding::text FROM user_data.notes__embeddings WHERE record_id = %s", [ids[0]]
    ).fetchone()
    assert vector == ("[1,0,0,0,0,0,0,0]",)
    left = "SELECT count(*) FROM user_data.notes__embeddings WHERE record_id = %s"
    assert conn.execute(left, [new]).fetchone() == (1,)
