"""Writes that scale: writers only append to the pending tables and lock nothing shared at
commit; the sealer (lake.seal()) orders and chains after commit. Under many concurrent writers,
with rollbacks and the sealer running all along, the audit chain verifies, the change log holds
exactly the committed changes with contiguous ids in order, a consumer never sees id n + 1 before
n, and the bridge delivers every committed change once, in order."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from lake_client.bridge import Bridge
from lake_client.config import Settings
from tests.conftest import APP_ROLE, point, seal
from tests.test_bridge import Running, change_ids, stream_ids, wait_for

Conn = psycopg.Connection[tuple[object, ...]]

WRITERS = 16
EACH = 30  # transactions per writer after its first; every tenth rolls back
UPDATE = (
    "UPDATE user_data.location_history SET doc = doc || jsonb_build_object('altitude_m', %s)"
    " WHERE id = %s"
)
INSERT = "INSERT INTO user_data.location_history (ts, doc) VALUES (now(), %s) RETURNING id"


def keys_for(conn: Conn, users: list[str]) -> dict[str, str]:
    keys = {}
    for user in users:
        conn.execute("SELECT lake.create_user(%s)", [user])
        row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [user]).fetchone()
        assert row is not None
        keys[user] = str(row[0])
    return keys


class Writer(threading.Thread):
    """An application's session: each transaction authenticates with the user's key (the
    identity lasts the transaction), inserts a record and updates the user's first record; every
    tenth rolls back (its changes carry altitude -1)."""

    def __init__(self, dsn: str, key: str, start: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.dsn, self.key, self.start_together = dsn, key, start
        self.first = 0
        self.inserted: list[int] = []  # committed inserts
        self.altitudes: list[int] = []  # committed updates of the first record, in order
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn) as c:
                c.execute("SELECT lake.authenticate(%s)", [self.key])
                row = c.execute(INSERT, [Jsonb(point(1))]).fetchone()
                assert row is not None
                self.first = int(str(row[0]))
                c.commit()
                self.start_together.wait()
                for i in range(1, EACH + 1):
                    back = i % 10 == 0
                    altitude = -1 if back else i
                    c.execute("SELECT lake.authenticate(%s)", [self.key])
                    row = c.execute(
                        INSERT, [Jsonb({**point(2), "altitude_m": altitude})]
                    ).fetchone()
                    assert row is not None
                    c.execute(UPDATE, [altitude, self.first])
                    if back:
                        c.rollback()
                        continue
                    c.commit()
                    self.inserted.append(int(str(row[0])))
                    self.altitudes.append(altitude)
        except BaseException as exc:  # reported by the test
            self.error = exc


class Consumer(threading.Thread):
    """Reads lake.data_changes with a cursor while the writers run, as a service would; notes any
    batch that does not continue exactly from the cursor (id n + 1 seen before n)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.cursor = 0
        self.gaps: list[tuple[int, list[int]]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as c:
                while True:
                    done = self.stop.is_set()
                    ids = [
                        int(str(r[0]))
                        for r in c.execute(
                            "SELECT id FROM lake.data_changes WHERE id > %s ORDER BY id LIMIT 500",
                            [self.cursor],
                        )
                    ]
                    if ids and ids != list(range(self.cursor + 1, self.cursor + 1 + len(ids))):
                        self.gaps.append((self.cursor, ids[:5]))
                    if ids:
                        self.cursor = ids[-1]
                    elif done:
                        return
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_many_writers_with_rollbacks_and_a_running_sealer_lose_and_reorder_nothing(
    conn: Conn, db: str, settings: Settings, location_dataset: str
) -> None:
    users = [f"w{n}" for n in range(WRITERS)]
    keys = keys_for(conn, users)
    client = redis.Redis.from_url(settings.redis_url())
    stream = f"test{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(WRITERS + 1)
    writers = [Writer(make_conninfo(db, user=APP_ROLE), keys[u], start) for u in users]
    consumer = Consumer(db)
    stop_sealing = threading.Event()
    sealer_failed: list[BaseException] = []

    def sealer() -> None:  # besides the bridge's: a second sealer returns at once
        try:
            with psycopg.connect(db, autocommit=True) as c:
                while not stop_sealing.wait(0.001):
                    c.execute("SELECT lake.seal()")
        except BaseException as exc:  # reported below
            sealer_failed.append(exc)

    sealing = threading.Thread(target=sealer, daemon=True)
    bridge = Running(Bridge(db, client, name=stream, stream=stream, cache_prefix=stream))
    try:
        for w in writers:
            w.start()
        start.wait()
        consumer.start()
        sealing.start()
        for w in writers:
            w.join(300)
            assert not w.is_alive()
            assert w.error is None, w.error
        stop_sealing.set()
        sealing.join(30)
        assert sealer_failed == []
        ids = change_ids(conn)  # seals what is left
        consumer.stop.set()
        consumer.join(60)
        assert consumer.error is None, consumer.error
        wait_for(lambda: bridge.bridge.cursor == ids[-1], 60)
        delivered = stream_ids(client, stream)
    finally:
        bridge.halt()
        for key in client.scan_iter(match=f"{stream}*"):
            client.delete(key)
        client.close()

    # The audit chain: whole, nothing left waiting.
    ok, problem, pending = conn.execute(
        "SELECT ok, problem, pending FROM lake.verify_audit_chain()"
    ).fetchone()  # type: ignore[misc]
    assert (ok, problem, pending) == (True, None, 0)
    # Exactly the committed changes, ids without a gap, nothing of the rolled-back work.
    assert ids == list(range(1, len(ids) + 1))
    committed = sum(1 + len(w.inserted) * 2 for w in writers)  # first insert; insert + update
    assert len(ids) == committed
    rows = conn.execute(
        "SELECT op, record_id, (after->'doc'->>'altitude_m')::int FROM lake.data_changes"
        " ORDER BY id"
    ).fetchall()
    assert all(r[2] != -1 for r in rows)
    inserted = {r[1] for r in rows if r[0] == "c"}
    assert inserted == {w.first for w in writers} | {i for w in writers for i in w.inserted}
    # Each row's events in the order they happened.
    for w in writers:
        assert [r[2] for r in rows if r[0] == "u" and r[1] == w.first] == w.altitudes
    # A consumer polling all along never saw a gap that was filled later.
    assert consumer.gaps == []
    assert consumer.cursor == ids[-1]
    # The bridge delivered every committed change once, in id order.
    assert delivered == ids


def test_no_writer_waits_on_another_at_commit(conn: Conn, db: str, location_dataset: str) -> None:
    """A transaction that wrote (and was audited) and stays open, and a sealer holding its
    transaction open, hold up no other writer's commit: writers lock nothing shared. A second
    sealer returns at once rather than wait."""
    keys = keys_for(conn, ["alice", "bob"])
    app = make_conninfo(db, user=APP_ROLE)
    with (
        psycopg.connect(app) as open_writer,
        psycopg.connect(db) as open_sealer,
        psycopg.connect(app) as other,
    ):
        open_writer.execute("SELECT lake.authenticate(%s)", [keys["alice"]])
        row = open_writer.execute(INSERT, [Jsonb(point(1))]).fetchone()
        assert row is not None
        open_writer.execute(UPDATE, [5, row[0]])  # idle in transaction from here

        other.execute("SET lock_timeout = '2s'")  # fails, rather than hangs, if it must wait
        for _ in range(3):
            other.execute("SELECT lake.authenticate(%s)", [keys["bob"]])
            mine = other.execute(INSERT, [Jsonb(point(2))]).fetchone()
            assert mine is not None
            other.execute(UPDATE, [7, mine[0]])
            other.commit()

        # A sealer in the middle of its transaction (the heads locked, the lock held).
        assert open_sealer.execute("SELECT changes FROM lake.seal()").fetchone() == (6,)
        other.execute("SELECT lake.authenticate(%s)", [keys["bob"]])
        other.execute(INSERT, [Jsonb(point(3))])
        other.commit()
        with psycopg.connect(db, autocommit=True) as second:
            second.execute("SET lock_timeout = '2s'")
            assert second.execute("SELECT * FROM lake.seal()").fetchone() == (None, None, None)
        open_sealer.commit()
        open_writer.commit()
    seal(conn)
    rows = conn.execute("SELECT user_id, op FROM lake.data_changes ORDER BY id").fetchall()
    # The open sealer's batch: bob's three commits. The last batch: alice's changes, captured
    # first, and bob's fourth insert.
    first = [("bob", "c"), ("bob", "u")] * 3
    assert rows == [*first, ("alice", "c"), ("alice", "u"), ("bob", "c")]
    assert conn.execute("SELECT ok, pending FROM lake.verify_audit_chain()").fetchone() == (True, 0)


@pytest.mark.parametrize("level", ["repeatable read", "serializable"])
def test_the_sealer_seals_nothing_outside_read_committed(
    conn: Conn, db: str, location_dataset: str, level: str
) -> None:
    """Its batch is what committed before each statement looked; a snapshot taken earlier could
    miss a seal that committed since and number changes again."""
    conn.execute("SELECT lake.create_user('alice')")
    with psycopg.connect(db) as c:
        c.execute(f"SET TRANSACTION ISOLATION LEVEL {level.upper()}")
        assert c.execute("SELECT * FROM lake.seal()").fetchone() == (None, None, None)
    waiting = conn.execute("SELECT pending FROM lake.verify_audit_chain()").fetchone()
    assert waiting is not None and int(str(waiting[0])) > 0
    seal(conn)
    assert conn.execute("SELECT ok, pending FROM lake.verify_audit_chain()").fetchone() == (True, 0)


def test_writers_wake_the_sealer_only_while_it_is_idle(conn: Conn, db: str, location_dataset: str):
    """A writer sends NOTIFY lake_seal only while the flag is up (the bridge idle); a flag left
    up by a session that is gone (a bridge killed while idle) is lowered by the next seal."""
    keys = keys_for(conn, ["alice"])
    app = make_conninfo(db, user=APP_ROLE)

    def write_once() -> None:
        with psycopg.connect(app) as w:
            w.execute("SELECT lake.authenticate(%s)", [keys["alice"]])
            w.execute(INSERT, [Jsonb(point(1))])

    with psycopg.connect(db, autocommit=True) as listener:
        listener.execute("LISTEN lake_seal")
        write_once()  # the flag is down: no NOTIFY
        with psycopg.connect(db, autocommit=True) as bridge:
            bridge.execute("SELECT lake.arm_sealer(true)")
            write_once()  # up: this one wakes
            seal(conn)  # the bridge's session is alive: the flag stays up
            write_once()
        heard = list(listener.notifies(timeout=2, stop_after=3))
    assert [n.channel for n in heard] == ["lake_seal", "lake_seal"]
    # The arming session has closed: the next seal lowers its flag (once its backend is gone).
    for _ in range(500):
        seal(conn)
        if conn.execute("SELECT armed FROM lake_internal.sealer_wakeup").fetchone() == (False,):
            break
        time.sleep(0.01)
    assert conn.execute("SELECT armed, pid FROM lake_internal.sealer_wakeup").fetchone() == (
        False,
        None,
    )
