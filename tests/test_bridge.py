"""The bridge: committed changes reach Redis (cache invalidated, messages published, stream
appended) in order, exactly the committed ones, and a bridge that was stopped or lost Redis
catches up from its durable cursor; on a Redis Cluster too, through a master's failover."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import psycopg.rows
import pytest
import redis
from psycopg.types.json import Jsonb
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from lake_client.bridge import Bridge, run_forever
from lake_client.cache import LakeCache
from lake_client.config import Settings
from lake_client.errors import BridgeError, LakeError, StreamError
from lake_client.queries import sql
from tests.conftest import point, seal
from tests.redis_cluster import LocalRedisCluster, free_ports

Conn = psycopg.Connection[tuple[object, ...]]


def commit_changes(conn: Conn, user: str, n: int, **fields: object) -> None:
    """n transactions, each ingesting one record (with `fields` added) through lake.ingest (one
    row event each)."""
    for i in range(n):
        with conn.transaction():
            conn.execute("SELECT lake.act_as(%s)", [user])
            conn.execute(
                "SELECT lake.ingest('location_history', %s)", [Jsonb([{**point(i + 1), **fields}])]
            )


def roll_back_a_change(conn: Conn, user: str) -> None:
    """One record ingested for `user` in a transaction that is then rolled back."""
    with pytest.raises(RuntimeError), conn.transaction():
        conn.execute("SELECT lake.act_as(%s)", [user])
        conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(9)])])
        raise RuntimeError("roll back")


def change_ids(conn: Conn, after: int = 0) -> list[int]:
    seal(conn)
    return [
        int(str(r[0]))
        for r in conn.execute("SELECT id FROM lake.data_changes WHERE id > %s ORDER BY id", [after])
    ]


def stream_ids(client: redis.Redis | redis.RedisCluster, stream: str) -> list[int]:
    return [int(fields[b"id"]) for _, fields in client.xrange(stream)]


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Running:
    """A bridge in a thread."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.stop = threading.Event()
        self.thread = threading.Thread(target=bridge.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def start(db: str, location_dataset: str) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(
        client: redis.Redis | redis.RedisCluster,
        stream: str,
        prefix: str,
        name: str = "",
        **options: Any,
    ) -> Running:
        bridge = Bridge(
            db,
            client,
            name=name or stream,
            stream=stream,
            cache_prefix=prefix,
            **{"poll_s": 0.5, **options},
        )
        r = Running(bridge)
        started.append(r)
        return r

    yield run
    for r in started:
        r.halt()


@pytest.fixture
def cluster() -> Iterator[LocalRedisCluster]:
    """A Redis Cluster of the test's own (the tests kill its nodes and fail its masters over)."""
    started = LocalRedisCluster().start()
    yield started
    started.stop()


@pytest.fixture
def cluster_client(cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    client = cluster.client()
    yield client
    client.close()


@pytest.fixture
def embedded(settings: Settings) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(settings.redis_url())
    name = f"test{uuid.uuid4().hex[:8]}"
    yield client, name
    for key in client.scan_iter(match=f"{name}*"):
        client.delete(key)
    client.close()


def test_committed_changes_reach_redis_in_order(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    client, name = embedded
    cache = LakeCache(client, prefix=name)
    cache.put("location_history", "alice", "recent", ["old"])
    cache.put("location_history", "bob", "recent", ["bob's"])
    pubsub = client.pubsub()
    pubsub.subscribe("cache.invalidate", "cache.update")
    running = start(client, name, name)
    commit_changes(conn, "alice", 3)
    roll_back_a_change(conn, "alice")  # never reaches Redis
    ids = change_ids(conn)
    wait_for(lambda: running.bridge.cursor == ids[-1])
    assert stream_ids(client, name) == ids
    assert cache.get("location_history", "alice", "recent") is None
    assert cache.get("location_history", "bob", "recent") == ["bob's"]
    cursor = conn.execute("SELECT last_id FROM lake.bridge_cursors WHERE name = %s", [name])
    assert cursor.fetchone() == (ids[-1],)
    # Each forwarded batch recorded its duration (data_processing_duration_seconds).
    batches = conn.execute(
        "SELECT count FROM lake.op_duration_histogram WHERE operation = 'bridge_batch'"
    ).fetchone()
    assert batches is not None and 1 <= batches[0] <= len(ids)
    messages: list[tuple[str, dict[str, object]]] = []
    wait_for(lambda: bool(_collect(pubsub, messages)) and len(messages) >= 2 * len(ids), 10)
    invalidations = [m for ch, m in messages if ch == "cache.invalidate" and m["id"] in ids]
    assert [m["id"] for m in invalidations] == ids
    assert {(m["dataset"], m["user_id"], m["op"]) for m in invalidations} == {
        ("location_history", "alice", "c")
    }
    updates = [m for ch, m in messages if ch == "cache.update" and m["id"] in ids]
    assert all(isinstance(m["after"], dict) for m in updates) and len(updates) == len(ids)
    pubsub.close()


def test_entries_and_messages_carry_each_change_as_lake_changes_reads_it(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """The stream entry of a create, an update and a delete is the change as Lake.changes reads
    it, and the messages are its head (with after for creates and updates): the bridge passes the
    server's JSON on without parsing it, so this holds the shape."""
    client, name = embedded
    pubsub = client.pubsub()
    pubsub.subscribe("cache.invalidate", "cache.update")
    commit_changes(conn, "alice", 2, note='é "quoted" \\ \u2028')
    first, second = (
        r[0] for r in conn.execute("SELECT id FROM user_data.location_history ORDER BY id")
    )
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "UPDATE user_data.location_history SET doc = doc || '{\"n\": 1.50}' WHERE id = %s",
            [first],
        )
        conn.execute("DELETE FROM user_data.location_history WHERE id = %s", [second])
    seal(conn)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        changes = cur.execute(sql("changes"), {"since": 0, "limit": 100}).fetchall()
    assert [c["op"] for c in changes] == ["c", "c", "u", "d"]
    running = start(client, name, name)
    wait_for(lambda: running.bridge.cursor == changes[-1]["id"])
    as_json = [orjson.loads(orjson.dumps(c)) for c in changes]
    entries = [orjson.loads(f[b"change"]) for _, f in client.xrange(name)]
    assert entries == as_json
    assert entries[2]["after"]["doc"]["n"] == 1.5 and entries[3]["after"] is None
    messages: list[tuple[str, dict[str, object]]] = []
    wait_for(lambda: _collect(pubsub, messages) and len(messages) >= 7, 10)
    heads = [
        {k: c[k] for k in ("id", "dataset", "user_id", "record_id", "op", "ts_ms")}
        | {"kind": c["source"]["kind"]}
        for c in as_json
    ]
    assert [m for ch, m in messages if ch == "cache.invalidate"] == heads
    updates = [
        h | {"after": c["after"]} for h, c in zip(heads, as_json, strict=True) if c["op"] != "d"
    ]
    assert [m for ch, m in messages if ch == "cache.update"] == updates
    pubsub.close()


def test_the_stream_keeps_about_stream_maxlen_entries(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """Older entries are trimmed (Redis trims whole nodes of 100 entries, so "about"), and a
    trimmed stream still takes the next changes in order: its last generated id stays."""
    client, name = embedded
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [Jsonb([point(i + 1) for i in range(600)])],
        )
    running = start(client, name, name, stream_maxlen=100)
    ids = change_ids(conn)
    assert len(ids) == 600
    wait_for(lambda: running.bridge.cursor == ids[-1])
    kept = stream_ids(client, name)
    assert 100 <= len(kept) <= 200 and kept == ids[-len(kept) :]
    commit_changes(conn, "bob", 1)
    more = change_ids(conn, ids[-1])
    wait_for(lambda: running.bridge.cursor == more[-1])
    assert stream_ids(client, name)[-2:] == [ids[-1], more[-1]]
    with pytest.raises(BridgeError, match="stream_maxlen"):
        Bridge("", client, stream_maxlen=0)


def _collect(pubsub: redis.client.PubSub, into: list[tuple[str, dict[str, object]]]) -> bool:
    while (msg := pubsub.get_message(timeout=0.1)) is not None:
        if msg["type"] == "message":
            into.append((msg["channel"].decode(), orjson.loads(msg["data"])))
    return True


def test_large_changes_go_in_bounded_batches_and_without_their_rows(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """A batch holds no more than the byte budget of changes (but at least one), and the next
    follows at once; a change too large for a message or a stream entry goes without its rows,
    which Lake.changes still has."""
    client, name = embedded
    pubsub = client.pubsub()
    pubsub.subscribe("cache.invalidate", "cache.update")

    def blob(n: int) -> str:  # incompressible: stored at about its length
        return os.urandom(n // 4 * 3).hex()[:n]

    commit_changes(conn, "alice", 5, blob=blob(100_000))
    commit_changes(conn, "alice", 1, blob=blob(1_500_000))
    ids = change_ids(conn)
    assert len(ids) == 6
    batches: list[list[int]] = []
    start(  # after the commits: one backlog
        client,
        name,
        name,
        batch_bytes=250_000,
        on_batch=lambda rows: batches.append([int(r["id"]) for r in rows]),
        poll_s=120,  # a batch the budget cut is followed at once, not after a wake-up
    )
    # on_batch runs after the cursor moves (and the database cursor is written): wait for it.
    wait_for(lambda: bool(batches) and batches[-1][-1] == ids[-1])
    assert [i for b in batches for i in b] == ids
    assert max(len(b) for b in batches) == 3  # 100 kB changes: three start inside 250 kB
    entries = {int(f[b"id"]): orjson.loads(f[b"change"]) for _, f in client.xrange(name)}
    assert list(entries) == ids
    assert all(isinstance(entries[i]["after"], dict) for i in ids[:5])
    large = entries[ids[5]]
    assert large["rows_omitted"] is True and large["after"] is None and large["op"] == "c"
    messages: list[tuple[str, dict[str, object]]] = []
    wait_for(lambda: _collect(pubsub, messages) and len(messages) >= 2 * len(ids), 10)
    updates = {m["id"]: m for ch, m in messages if ch == "cache.update"}
    assert updates[ids[5]]["after_omitted"] is True and updates[ids[5]]["after"] is None
    assert isinstance(updates[ids[0]]["after"], dict) and "after_omitted" not in updates[ids[0]]
    full = conn.execute("SELECT after FROM lake.data_changes WHERE id = %s", [ids[5]]).fetchone()
    assert full is not None and len(full[0]["doc"]["blob"]) == 1_500_000
    pubsub.close()


def test_a_stopped_bridge_catches_up_exactly(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    client, name = embedded
    first = start(client, name, name)
    commit_changes(conn, "alice", 20)
    wait_for(lambda: first.bridge.cursor == change_ids(conn)[-1])
    first.halt()
    commit_changes(conn, "bob", 30)  # while no bridge runs
    second = start(client, name, name)
    ids = change_ids(conn)
    assert len(ids) == 50
    wait_for(lambda: second.bridge.cursor == ids[-1])
    assert stream_ids(client, name) == ids  # each once, in order, none missing


def test_entries_redis_lost_are_sent_again_in_order(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """Redis acknowledged entries and then lost them (as in a failover before replication, or a
    crash under appendfsync everysec; here the stream is rebuilt without them): the next batch
    finds the stream ending before the bridge's cursor, and the bridge sends the lost changes
    again first. The stream ends up with every change once, in order."""
    client, name = embedded
    running = start(client, name, name)
    commit_changes(conn, "alice", 5)
    ids = change_ids(conn)
    wait_for(lambda: running.bridge.cursor == ids[-1])
    lose_all_but(client, name, 3)
    assert stream_ids(client, name) == ids[:3]
    commit_changes(conn, "bob", 3)
    ids = change_ids(conn)
    wait_for(lambda: running.bridge.cursor == ids[-1])
    assert stream_ids(client, name) == ids
    assert [e.decode() for e, _ in client.xrange(name)] == [f"{i}-0" for i in ids]


def test_a_restarted_bridge_goes_on_from_what_the_stream_took(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """The stream, not the database's cursor, says what Redis has: a bridge started after Redis
    lost entries sends them again; an entry a consumer deleted is not lost (the stream's last
    generated id still counts it); a stream some other writer filled is refused."""
    client, name = embedded
    first = start(client, name, name)
    commit_changes(conn, "alice", 4)
    ids = change_ids(conn)
    wait_for(lambda: first.bridge.cursor == ids[-1])
    first.halt()
    lose_all_but(client, name, len(ids) - 1)
    second = start(client, name, name)
    wait_for(lambda: stream_ids(client, name) == ids)
    client.xdel(name, f"{ids[-1]}-0")
    commit_changes(conn, "bob", 1)
    new = change_ids(conn, ids[-1])
    wait_for(lambda: second.bridge.cursor == new[-1])
    assert stream_ids(client, name) == ids[:-1] + new
    second.halt()
    client.xadd(name, {"id": "x"}, id=f"{new[-1] + 1000}-0")  # beyond any change of the lake
    held = client.xlen(name)
    third = start(client, name, name)
    commit_changes(conn, "alice", 1)
    time.sleep(1.5)
    assert third.bridge.cursor == 0  # it never started: StreamError, retried with backoff
    assert client.xlen(name) == held


def test_a_stream_of_another_database_is_refused(
    conn: Conn, start: Callable[..., Running], embedded: tuple[redis.Redis, str]
) -> None:
    """Entries carry their lake database's identity: a stream left by an earlier (re-created)
    database, whose ids the new one has not passed yet, is refused instead of being taken for
    progress, both at start and by a running bridge."""
    client, name = embedded
    commit_changes(conn, "alice", 3)
    ids = change_ids(conn)
    client.xadd(name, {"id": "1", "change": "{}", "lake": "1234:5"}, id="1-0")
    first = start(client, name, name)
    time.sleep(1.5)
    assert first.bridge.cursor == 0 and client.xlen(name) == 1  # never started
    first.halt()
    client.delete(name)
    second = start(client, name, name)
    wait_for(lambda: stream_ids(client, name) == ids)
    client.xadd(name, {"id": "x", "lake": "1234:5"}, id=f"{ids[-1]}-1")  # another writer
    commit_changes(conn, "bob", 1)
    time.sleep(1.5)
    assert client.xlen(name) == len(ids) + 1  # refused: nothing appended after it
    assert second.bridge.cursor == ids[-1]


def lose_all_but(client: redis.Redis, stream: str, keep: int) -> None:
    """What a Redis that lost the stream's last entries holds: the first `keep`, and a last
    generated id that is the last of them (XDEL would leave it where it was)."""
    kept = client.xrange(stream)[:keep]
    client.delete(stream)
    for entry_id, fields in kept:
        client.xadd(stream, fields, id=entry_id)


def _redis_server(port: int, folder: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _pings(port), 10)
    return proc


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_a_redis_restart_loses_nothing(conn: Conn, start: Callable[..., Running]) -> None:
    port = free_ports(1)[0]
    folder = Path(tempfile.mkdtemp(prefix="lake-redis-"))
    proc = _redis_server(port, folder)
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        running = start(client, "changes", "lake")
        commit_changes(conn, "alice", 5)
        wait_for(lambda: running.bridge.cursor == change_ids(conn)[-1])
        before = running.bridge.cursor
        proc.kill()
        proc.wait(10)
        commit_changes(conn, "alice", 7)  # Redis is down: the cursor must not move
        time.sleep(1.5)
        assert running.bridge.cursor == before
        row = conn.execute("SELECT last_id FROM lake.bridge_cursors WHERE name = 'changes'")
        assert row.fetchone() == (before,)
        proc = _redis_server(port, folder)  # back, with its append-only file
        ids = change_ids(conn)
        wait_for(lambda: running.bridge.cursor == ids[-1], 60)
        assert stream_ids(client, "changes") == ids
    finally:
        proc.kill()
        proc.wait(10)
        client.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_bridge_killed_during_10000_commits_loses_nothing(
    conn: Conn, db: str, location_dataset: str
) -> None:
    """`lake bridge` runs as its own process and is killed (SIGKILL) twice while 10 000 commits go
    in from two writers, a tenth of which are rolled back; its PostgreSQL connection is also cut
    once. Afterwards every committed change is in the stream once, in commit order, and the
    cache of every user who changed is invalidated; nothing of rolled-back work arrives."""
    port = free_ports(1)[0]
    folder = Path(tempfile.mkdtemp(prefix="lake-redis-"))
    server = _redis_server(port, folder)
    client = redis.Redis(port=port)
    env = {**os.environ, "LAKE_DSN": db, "LAKE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    users = [f"u{i}" for i in range(20)]
    cache = LakeCache(client)
    for user in users:
        cache.put("location_history", user, "recent", "before")

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    committed = [0, 0]

    def write(k: int) -> None:
        with psycopg.connect(db, autocommit=True) as w:
            for i in range(5000):
                user = users[(i * 2 + k) % len(users)]
                try:
                    with w.transaction():
                        w.execute("SELECT lake.act_as(%s)", [user])
                        w.execute(
                            "INSERT INTO user_data.location_history (ts, doc)"
                            " SELECT t, jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',"
                            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', 1, 'lon', 2)"
                            " FROM date_trunc('second', now()) AS t"
                        )
                        if i % 10 == 9:
                            raise RuntimeError("roll back")
                    committed[k] += 1
                except RuntimeError:
                    pass

    bridge = spawn()
    writers = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    try:
        for t in writers:
            t.start()
        for kill_at in (2000, 5000):
            wait_for(lambda n=kill_at: sum(committed) >= n, 120)
            bridge.kill()
            bridge.wait(10)
            time.sleep(0.5)
            bridge = spawn()
        wait_for(lambda: sum(committed) >= 7000, 120)
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'lake-bridge' AND datname = current_database()"
        )
        for t in writers:
            t.join(300)
        ids = change_ids(conn)
        assert len(ids) == sum(committed) == 9000
        wait_for(lambda: ids[-1] in set(stream_ids(client, "lake:changes")), 120)
        arrived = stream_ids(client, "lake:changes")
        # Every committed change, once, in commit order; nothing rolled back. (Messages may be
        # published twice around a kill; the stream takes each change once.)
        assert arrived == ids
        changed = {
            str(r[0]) for r in conn.execute("SELECT DISTINCT user_id FROM lake.data_changes")
        }
        # u18 and u19 only ever wrote in the transactions that were rolled back.
        assert changed == set(users) - {"u18", "u19"}
        for user in users:
            expected = None if user in changed else "before"
            assert cache.get("location_history", user, "recent") == expected, user
    finally:
        bridge.kill()
        bridge.wait(10)
        for t in writers:
            t.join(300)
        server.kill()
        server.wait(10)
        client.close()
        shutil.rmtree(folder, ignore_errors=True)


# -- on a Redis Cluster -------------------------------------------------------------------------


def _subscribed(pubsub: redis.client.PubSub, *channels: str) -> None:
    """Subscribed to all of `channels` (confirmed by the node) before anything is published."""
    pubsub.subscribe(*channels)
    confirmed = 0
    while confirmed < len(channels):
        msg = pubsub.get_message(timeout=5)
        assert msg is not None, "no subscribe confirmation"
        confirmed += msg["type"] == "subscribe"


def test_the_bridge_on_a_redis_cluster_forwards_committed_changes_in_order(
    cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
    conn: Conn,
    start: Callable[..., Running],
) -> None:
    pubsub: redis.client.PubSub | None = None
    try:
        cache = LakeCache(cluster_client, prefix="lake")
        cache.put("location_history", "alice", "recent", ["old"])
        cache.put("location_history", "bob", "recent", ["bob's"])
        alice = cache.version("location_history", "alice")
        bob = cache.version("location_history", "bob")
        # Subscribed on a replica, not the master the bridge publishes to: the cluster broadcasts.
        masters = {int(n.port) for n in cluster_client.get_primaries()}
        replica = next(p for p in cluster.ports if p not in masters)
        pubsub = redis.Redis(port=replica).pubsub()
        _subscribed(pubsub, "cache.invalidate", "cache.update")
        running = start(cluster_client, "lake:changes", "lake", name="cluster")
        commit_changes(conn, "alice", 3)
        roll_back_a_change(conn, "alice")  # never reaches Redis
        ids = change_ids(conn)
        assert len(ids) == 3
        wait_for(lambda: running.bridge.cursor == ids[-1])
        assert stream_ids(cluster_client, "lake:changes") == ids
        assert cache.version("location_history", "alice") != alice
        assert cache.get("location_history", "alice", "recent") is None
        assert cache.version("location_history", "bob") == bob
        assert cache.get("location_history", "bob", "recent") == ["bob's"]
        messages: list[tuple[str, dict[str, object]]] = []
        wait_for(lambda: bool(_collect(pubsub, messages)) and len(messages) >= 2 * len(ids), 10)
        invalidations = [m for ch, m in messages if ch == "cache.invalidate"]
        assert [m["id"] for m in invalidations] == ids
        assert {(m["dataset"], m["user_id"], m["op"]) for m in invalidations} == {
            ("location_history", "alice", "c")
        }
        updates = [m for ch, m in messages if ch == "cache.update"]
        assert [m["id"] for m in updates] == ids
        assert all(isinstance(m["after"], dict) for m in updates)
    finally:
        if pubsub is not None:
            pubsub.close()


def test_a_cluster_failover_mid_stream_loses_nothing(
    cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
    conn: Conn,
    db: str,
    start: Callable[..., Running],
) -> None:
    """A backlog of 3 000 changes goes out in batches of 1 000; as the second batch arrives the
    master holding the stream is killed, and commits go on while its replica takes over.
    Afterwards every committed change is in the stream once, in commit order (a batch the old
    master took but its replica had not is sent again)."""
    dead = cluster.master_of("lake:changes")
    streamed_at_kill: list[int] = []
    done = threading.Event()
    committed: list[int] = []
    users = ["alice", "bob", "carol", "dave"]  # namespaces in several slots

    def kill_mid_batch() -> None:
        # As soon as the second batch arrives: the bridge's pipeline is most likely in flight.
        node = redis.Redis(port=dead)
        deadline = time.monotonic() + 60
        while (n := int(node.xlen("lake:changes"))) <= 1000 and time.monotonic() < deadline:
            pass
        node.close()
        cluster.kill(dead)
        streamed_at_kill.append(n)

    def write() -> None:
        with psycopg.connect(db, autocommit=True) as w:
            while not done.is_set():
                k = len(committed) + 1
                with w.transaction():
                    w.execute("SELECT lake.act_as(%s)", [users[k % len(users)]])
                    w.execute(
                        "SELECT lake.ingest('location_history', %s)", [Jsonb([point(k, lat=2.0)])]
                    )
                committed.append(k)

    writer = threading.Thread(target=write)
    try:
        for j, user in enumerate(users[:3]):
            with conn.transaction():
                conn.execute("SELECT lake.act_as(%s)", [user])
                backlog = [point(1000 * j + i + 1) for i in range(1000)]
                conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb(backlog)])
        assert len(change_ids(conn)) == 3000
        writer.start()
        killer = threading.Thread(target=kill_mid_batch)
        killer.start()
        running = start(cluster_client, "lake:changes", "lake", name="cluster")
        killer.join(90)
        assert streamed_at_kill and 1000 < streamed_at_kill[0] < 3000  # killed mid-stream
        cluster.wait_failover(dead, "lake:changes")
        at_failover = len(committed)
        wait_for(lambda: len(committed) >= at_failover + 50)  # commits go on after it
        done.set()
        writer.join(30)
        ids = change_ids(conn)
        assert len(ids) == 3000 + len(committed)
        wait_for(lambda: running.bridge.cursor == ids[-1], 120)
        arrived = stream_ids(cluster_client, "lake:changes")
        assert arrived == ids  # every committed change, once, in commit order
    finally:
        done.set()
        if writer.is_alive():
            writer.join(30)


def test_invalidations_a_failed_over_master_lost_are_sent_again(
    cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
    conn: Conn,
    start: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A master that fails over before its replica has the bridge's last INCR of a cache version
    takes that invalidation along: the version goes back, and the value cached under it before
    the write would be served again. The loss is made by hand (the version set back, as the
    replica would have it), then the master fails over: the bridge sees other masters and
    invalidates again what it invalidated in the last minute. A bridge that starts afterwards
    does the same for the changes of the last minute up to where it goes on."""
    cache = LakeCache(cluster_client, prefix="lake")
    running = start(cluster_client, "lake:changes", "lake", name="cluster")
    cache.put("location_history", "alice", "recent", ["old"])
    cache.put("location_history", "bob", "recent", ["bob's"])
    version = cache.version_key("location_history", "alice")
    before = cluster_client.get(version)
    commit_changes(conn, "alice", 1)
    ids = change_ids(conn)
    wait_for(lambda: running.bridge.cursor == ids[-1])
    assert cache.get("location_history", "alice", "recent") is None
    cluster_client.set(version, before)  # the INCR the failed-over master took along
    assert cache.get("location_history", "alice", "recent") == ["old"]  # stale
    time.sleep(2 * 1.0)  # looks at the masters meanwhile, finds them unchanged: no repair
    assert cache.get("location_history", "alice", "recent") == ["old"]
    with caplog.at_level("WARNING", logger="lake.bridge"):
        cluster.fail_over(cluster.master_of(version))
        wait_for(lambda: cache.get("location_history", "alice", "recent") is None)
    assert "masters changed; invalidating 1 namespaces again" in caplog.text
    assert cache.get("location_history", "bob", "recent") == ["bob's"]  # bob did not change
    assert stream_ids(cluster_client, "lake:changes") == ids  # nothing published or appended again
    # The same while no bridge runs: the one that starts next invalidates again what the
    # changes of the last minute touched.
    running.halt()
    cache.put("location_history", "alice", "recent", ["old"])  # as if the INCR was lost
    cluster.fail_over(cluster.master_of(version))
    with caplog.at_level("INFO", logger="lake.bridge"):
        start(cluster_client, "lake:changes", "lake", name="cluster")
        wait_for(lambda: cache.get("location_history", "alice", "recent") is None)
    assert "invalidating 1 namespaces again at start" in caplog.text
    assert cache.get("location_history", "bob", "recent") == ["bob's"]
    assert stream_ids(cluster_client, "lake:changes") == ids


def test_a_bridge_that_may_not_look_at_the_masters_still_forwards(
    cluster: LocalRedisCluster,
    conn: Conn,
    start: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis user without INFO and CLUSTER NODES (ACLs of a managed cluster): the bridge says
    so once, and forwards and invalidates as before."""
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            node.execute_command(
                "ACL",
                "SETUSER",
                "bridge",
                "on",
                ">secret",
                "~*",
                "&*",
                "+@all",
                "-info",
                "-cluster|nodes",
            )
    client = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster.ports],
        username="bridge",
        password="secret",
        socket_timeout=1,
    )
    try:
        cache = LakeCache(client, prefix="lake")
        alice = cache.version("location_history", "alice")
        with caplog.at_level("WARNING", logger="lake.bridge"):
            running = start(client, "lake:changes", "lake", name="cluster")
            commit_changes(conn, "alice", 3)
            ids = change_ids(conn)
            wait_for(lambda: running.bridge.cursor == ids[-1])
            time.sleep(2.5)  # more looks, idle
            commit_changes(conn, "alice", 1)
            ids = change_ids(conn)
            wait_for(lambda: running.bridge.cursor == ids[-1])
        assert stream_ids(client, "lake:changes") == ids
        assert cache.version("location_history", "alice") != alice
        assert caplog.text.count("cannot see the cluster's masters") == 1
        assert "no permissions" in caplog.text
        running.halt()  # before its client closes under it
    finally:
        client.close()


def test_a_cluster_out_of_reach_is_retried(
    cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
    conn: Conn,
    start: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With every node gone redis-py raises RedisClusterException, which is no RedisError: the
    bridge retries it like any lost connection, and its cursor stays."""
    running = start(cluster_client, "lake:changes", "lake", name="cluster")
    commit_changes(conn, "alice", 1)
    wait_for(lambda: running.bridge.cursor == change_ids(conn)[-1])
    before = running.bridge.cursor
    cluster.stop()
    commit_changes(conn, "bob", 1)

    def retried_out_of_reach() -> bool:
        return any(
            r.name == "lake.bridge" and isinstance(r.args[1], RedisClusterException)
            for r in caplog.records
            if isinstance(r.args, tuple) and len(r.args) > 1
        )

    wait_for(retried_out_of_reach)
    assert running.thread.is_alive()
    assert running.bridge.cursor == before


def test_lake_bridge_cluster_option(
    cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
    conn: Conn,
    db: str,
    location_dataset: str,
) -> None:
    """`lake bridge --cluster`, and with LAKE_REDIS_CLUSTER=1, talks to a Redis Cluster through
    the one node LAKE_REDIS_URL names (a plain client would get MOVED for most keys)."""
    # A node that does not hold the stream: only a cluster client finds its master.
    node = next(p for p in cluster.ports if p != cluster.master_of("lake:changes"))
    env = {**os.environ, "LAKE_DSN": db, "LAKE_REDIS_URL": f"redis://127.0.0.1:{node}/0"}
    env.pop("LAKE_REDIS_CLUSTER", None)
    bridge: subprocess.Popen[bytes] | None = None
    try:
        for user, args, extra in (
            ("alice", ["--cluster"], {}),
            ("bob", [], {"LAKE_REDIS_CLUSTER": "1"}),
        ):
            bridge = subprocess.Popen(
                [sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5", *args],
                env={**env, **extra},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            commit_changes(conn, user, 2)
            ids = change_ids(conn)
            wait_for(lambda i=ids: stream_ids(cluster_client, "lake:changes") == i)
            # Killed once its cursor is in, or the next one would send the last batch again.
            wait_for(lambda i=ids: _cursor(conn, "default") == i[-1])
            bridge.kill()
            bridge.wait(10)
    finally:
        if bridge is not None:
            bridge.kill()
            bridge.wait(10)


def test_lake_bridge_cluster_waits_for_the_cluster(
    conn: Conn, db: str, location_dataset: str
) -> None:
    """`lake bridge --cluster` started before its cluster waits for it (retrying with backoff)
    instead of exiting, and then forwards what was committed meanwhile."""
    cluster = LocalRedisCluster()  # its ports chosen, nothing started yet
    env = {
        **os.environ,
        "LAKE_DSN": db,
        "LAKE_REDIS_URL": f"redis://127.0.0.1:{cluster.ports[0]}/0",
    }
    bridge = subprocess.Popen(
        [sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5", "--cluster"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        commit_changes(conn, "alice", 2)
        time.sleep(2)
        assert bridge.poll() is None, "lake bridge --cluster exited without a cluster"
        cluster.start()
        client = cluster.client()
        ids = change_ids(conn)
        wait_for(lambda: stream_ids(client, "lake:changes") == ids, 90)
        client.close()
    finally:
        bridge.kill()
        bridge.wait(10)
        cluster.stop()


def _cursor(conn: Conn, name: str) -> int | None:
    row = conn.execute("SELECT last_id FROM lake.bridge_cursors WHERE name = %s", [name]).fetchone()
    return None if row is None else int(str(row[0]))


def test_bad_input_to_the_bridge_is_a_lake_error(
    db: str, settings: Settings, embedded: tuple[redis.Redis, str]
) -> None:
    """An invalid name or stream_maxlen fails at once with a LakeError that says what is valid
    (the name as lake.bridge_cursors' check constraint has it, which the database's refusal is
    mapped to as well); a stream of another lake database is refused with a StreamError."""
    client, name = embedded
    for bad in ("", "has space", "x" * 65, "a/b", "ünicode"):
        with pytest.raises(BridgeError, match="1 to 64 letters"):
            Bridge(db, client, name=bad)
        with pytest.raises(BridgeError, match="1 to 64 letters"):
            run_forever(db, settings.redis_url(), name=bad)
    with pytest.raises(BridgeError, match="stream_maxlen"):
        run_forever(db, settings.redis_url(), name=name, stream_maxlen=0)
    for cluster in (False, True):
        with pytest.raises(BridgeError, match="invalid Redis URL"):
            run_forever(db, "rediss+nonsense://x", name=name, cluster=cluster)
    bridge = Bridge(db, client, name=name, stream=name)
    bridge.name = "has space"  # as if the rule in Python and the constraint differed
    with (
        psycopg.connect(db, autocommit=True, row_factory=psycopg.rows.dict_row) as conn,
        pytest.raises(BridgeError, match="bridge_cursors_name_check") as refused,
    ):
        bridge._start(conn)
    assert refused.value.sqlstate == "23514" and "1 to 64 letters" in str(refused.value.hint)
    client.xadd(name, {"id": "1", "change": "{}", "lake": "1234:5"}, id="1-0")
    bridge.name = name
    with (
        psycopg.connect(db, autocommit=True, row_factory=psycopg.rows.dict_row) as conn,
        pytest.raises(StreamError, match="another lake database") as foreign,
    ):
        bridge._start(conn)
    assert isinstance(foreign.value, LakeError)


def test_lake_bridge_with_an_invalid_name_fails_at_once(db: str) -> None:
    """It used to loop for ever on the database's check constraint; now it says what a name is
    (exit 1 for a LakeError here; a usage error, 2, once the CLI checks the option itself)."""
    out = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "bridge", "--name", "no spaces allowed"],
        env={**os.environ, "LAKE_DSN": db, "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode in (1, 2)
    assert "1 to 64 letters" in out.stderr and "Traceback" not in out.stderr
