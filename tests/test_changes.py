"""Change capture: lake.data_changes holds every committed change to user data in commit order,
in a Debezium-style envelope; rolled-back work leaves nothing; NOTIFY only wakes readers; the
purge_changes job keeps 7 days."""

from __future__ import annotations

import select
import threading
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from tests.conftest import APP_ROLE, point, seal

Conn = psycopg.Connection[tuple[object, ...]]
DS = "location_history"


def changes(conn: Conn) -> list[tuple[object, ...]]:
    seal(conn)
    return conn.execute(
        "SELECT op, user_id, record_id, source->>'kind', before IS NOT NULL, after IS NOT NULL"
        " FROM lake.data_changes ORDER BY id"
    ).fetchall()


def test_row_changes_in_a_debezium_envelope(conn: Conn, location_dataset: str) -> None:
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "INSERT INTO user_data.location_history (ts, doc) VALUES"
            " (now(), jsonb_build_object('ts', now(), 'lat', 1, 'lon', 2)),"
            " (now(), jsonb_build_object('ts', now(), 'lat', 99, 'lon', 2))"  # quarantined
        )
    stored = conn.execute("SELECT id FROM user_data.location_history").fetchall()
    assert len(stored) == 1
    rid = stored[0][0]
    conn.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 3}'")
    conn.execute("DELETE FROM user_data.location_history")
    conn.execute("TRUNCATE user_data.location_history")
    assert changes(conn) == [
        ("c", "alice", rid, "row", False, True),
        ("u", "alice", rid, "row", True, True),
        ("d", "alice", rid, "row", True, False),
        ("t", None, None, "truncate", False, False),
    ]
    before, after, source, lsn = conn.execute(
        "SELECT before, after, source, lsn::text FROM lake.data_changes WHERE op = 'u'"
    ).fetchone()  # type: ignore[misc]
    assert before["doc"]["lat"] == 1 and after["doc"]["lat"] == 3
    assert set(after) == {"id", "user_id", "ts", "doc", "batch_id", "ingested_at", "pii"}
    assert source["table"] == DS and source["schema"] == "user_data"
    assert source["lsn"] == lsn and int(source["txId"]) > 0 and source["ts_ms"] > 0
    ids = [r[0] for r in conn.execute("SELECT id FROM lake.data_changes ORDER BY id")]
    lsns = [r[0] for r in conn.execute("SELECT lsn FROM lake.data_changes ORDER BY id")]
    assert ids == sorted(ids) and lsns == sorted(lsns)  # type: ignore[type-var]


def test_only_kept_rows_are_changes_whatever_the_session_says(
    conn: Conn, location_dataset: str
) -> None:
    """lake_internal._tg_capture skips its lookup when lake_internal._tg_validate reported
    nothing quarantined in the statement; a session cannot forge that report (validate writes
    it just before)."""
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(f"SET LOCAL lake.diverted = '{DS}:0'")
        conn.execute(
            "INSERT INTO user_data.location_history (ts, doc) VALUES"
            " (now(), jsonb_build_object('ts', now(), 'lat', 99, 'lon', 2)),"  # quarantined
            " (now(), jsonb_build_object('ts', now(), 'lat', 1, 'lon', 2))"
        )
        conn.execute(
            "INSERT INTO user_data.location_history (ts, doc)"
            " VALUES (now(), jsonb_build_object('ts', now(), 'lat', 5, 'lon', 2))"
        )
    stored = [r[0] for r in conn.execute("SELECT id FROM user_data.location_history ORDER BY id")]
    assert len(stored) == 2
    assert [r[2] for r in changes(conn)] == stored
    assert conn.execute("SELECT count(*) FROM lake.quarantine").fetchone() == (1,)


def test_a_bulk_batch_is_one_event_and_sql_ingest_row_events(
    conn: Conn, lake: Lake, location_dataset: str
) -> None:
    with conn.transaction():
        conn.execute("SELECT lake.act_as('bob')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [Jsonb([point(5), point(6), {"ts": "nope"}])],
        )
    lake.act_as("carol")
    lake.ingest(DS, [point(7), point(8)])
    seal(conn)
    rows = conn.execute(
        "SELECT op, user_id, record_id IS NOT NULL, after->>'source', after->>'accepted',"
        " after->>'quarantined', source->>'kind' FROM lake.data_changes ORDER BY id"
    ).fetchall()
    # lake.ingest goes through user_data.location_history: a row event per stored record. Bulk
    # COPY through the inbox: one event for the batch.
    assert rows == [
        ("c", "bob", True, None, None, None, "row"),
        ("c", "bob", True, None, None, None, "row"),
        ("c", "carol", False, "client", "2", "0", "batch"),
    ]


def test_a_rolled_back_transaction_leaves_nothing(conn: Conn, location_dataset: str) -> None:
    conn.autocommit = False
    conn.execute("SELECT lake.act_as('alice')")
    conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    conn.execute("INSERT INTO user_data.location_history (ts, doc) VALUES (now(), '{}')")
    conn.rollback()
    conn.execute("SAVEPOINT s")
    conn.execute("SELECT lake.act_as('alice')")
    conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    conn.execute("ROLLBACK TO SAVEPOINT s")
    conn.commit()
    conn.autocommit = True
    assert changes(conn) == []
    assert conn.execute("SELECT count(*) FROM lake_internal.change_pending").fetchone() == (0,)


def test_ids_follow_commit_order(conn: Conn, db: str, location_dataset: str) -> None:
    """The transaction that started first but commits after a seal gets the larger ids: each
    seal takes what committed before it looked, so batches follow commit order. A transaction
    still running when the sealer looks is not sealed, and holds up nothing."""
    with psycopg.connect(db) as first, psycopg.connect(db) as second:
        first.execute("SELECT lake.act_as('alice')")
        first.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
        second.execute("SELECT lake.act_as('bob')")
        second.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(6)])])
        second.commit()
        assert [r[1] for r in changes(conn)] == ["bob"]
        first.commit()
    assert [r[1] for r in changes(conn)] == ["bob", "alice"]


def test_a_row_changed_by_two_transactions_in_one_batch_keeps_their_order(
    conn: Conn, db: str, location_dataset: str
) -> None:
    """Within a batch changes are numbered in the order they were captured: a transaction that
    waited for another's row lock captured its change of that row after the other's, even if it
    began first."""
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    seal(conn)
    row = conn.execute("SELECT id FROM user_data.location_history").fetchone()
    assert row is not None
    update = "UPDATE user_data.location_history SET doc = doc || %s WHERE id = %s"
    failed: list[BaseException] = []
    with psycopg.connect(db) as early, psycopg.connect(db) as late:
        early.execute("SELECT lake.act_as('alice')")
        early.execute(
            "INSERT INTO user_data.location_history (ts, doc) VALUES (now(), %s)",
            [Jsonb(point(9))],
        )  # early is first to capture a change, in another statement
        late.execute("SELECT lake.act_as('alice')")
        late.execute(update, [Jsonb({"lat": 2}), row[0]])

        def wait_and_update() -> None:
            try:
                early.execute(update, [Jsonb({"lat": 3}), row[0]])  # waits for late's lock
            except BaseException as exc:  # reported below
                failed.append(exc)

        waiter = threading.Thread(target=wait_and_update)
        waiter.start()
        pid = early.info.backend_pid
        for _ in range(3000):  # until early waits on the lock (or has failed)
            waiting = conn.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if failed or (waiting is not None and waiting[0]):
                break
            time.sleep(0.01)
        late.commit()
        waiter.join()
        early.commit()
    assert failed == []
    seal(conn)  # one batch for both
    lats = conn.execute(
        "SELECT after->'doc'->>'lat' FROM lake.data_changes WHERE op = 'u' ORDER BY id"
    ).fetchall()
    assert lats == [("2",), ("3",)]


def test_notify_wakes_readers_with_the_last_id_only(
    conn: Conn, db: str, location_dataset: str
) -> None:
    """The sealer sends one NOTIFY lake_changes per batch it seals (writers send none)."""
    with psycopg.connect(db, autocommit=True) as listener:
        listener.execute("LISTEN lake_changes")
        with conn.transaction():
            conn.execute("SELECT lake.act_as('alice')")
            conn.execute(
                "SELECT lake.ingest('location_history', %s)", [Jsonb([point(5), point(6)])]
            )
        seal(conn)
        select.select([listener.fileno()], [], [], 10)
        notes = list(listener.notifies(timeout=1, stop_after=1))
    last = conn.execute("SELECT max(id) FROM lake.data_changes").fetchone()
    assert [(n.channel, n.payload) for n in notes] == [("lake_changes", str(last[0]))]  # type: ignore[index]


def test_a_rollback_is_visible_to_change_consumers(conn: Conn, location_dataset: str) -> None:
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    cp = conn.execute("SELECT id FROM lake.checkpoint('location_history')").fetchone()
    assert cp is not None
    conn.execute("DELETE FROM user_data.location_history")
    conn.execute("SELECT * FROM lake.rollback('location_history', %s)", [cp[0]])
    ops = [(r[0], r[1], r[3]) for r in changes(conn)]
    assert ops == [
        ("c", "alice", "row"),  # the ingest
        ("d", "alice", "row"),  # the DELETE
        ("c", "alice", "row"),  # the rollback putting the row back
    ]


def test_changes_are_kept_seven_days(conn: Conn, location_dataset: str) -> None:
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    seal(conn)
    conn.execute("CALL lake.run_maintenance('purge_changes', now() + interval '6 days')")
    assert conn.execute("SELECT count(*) FROM lake.data_changes").fetchone() == (1,)
    conn.execute("CALL lake.run_maintenance('purge_changes', now() + interval '8 days')")
    assert conn.execute("SELECT count(*) FROM lake.data_changes").fetchone() == (0,)
    details = conn.execute(
        "SELECT details FROM lake.job_runs WHERE job = 'purge_changes' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert details == ({"changes_deleted": 1},)


def test_applications_cannot_read_or_write_the_change_log(as_role, location_dataset: str) -> None:

    app = as_role(APP_ROLE)
    for stmt in (
        "SELECT * FROM lake.data_changes",
        "INSERT INTO lake_internal.change_pending (dataset, op, source) VALUES ('x', 'c', '{}')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(stmt)


def test_a_service_reads_the_change_stream_with_a_cursor(
    conn: Conn, lake: Lake, location_dataset: str
) -> None:
    for user in ("alice", "bob", "carol"):
        with conn.transaction():
            conn.execute("SELECT lake.act_as(%s)", [user])
            conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
    seen: list[str] = []
    cursor = 0
    while batch := lake.changes(since=cursor, limit=2):
        seen += [str(c["user_id"]) for c in batch]
        cursor = int(batch[-1]["id"])
    assert seen == ["alice", "bob", "carol"]
    assert lake.changes(since=cursor) == []


def deferred_lake_constraints(conn: Conn) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT c.conname FROM pg_constraint AS c"
            " JOIN pg_namespace AS n ON n.oid = c.connamespace"
            " WHERE n.nspname = 'lake' AND c.condeferrable ORDER BY 1"
        )
    ]


def write_both_ways(conn: Conn, n: int) -> None:
    """A lake.ingest (row events, an audited batch) and a batch through the COPY inbox (its
    change event is written by lake_internal._tg_batch_commit)."""
    conn.execute("SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(n)])])
    batch = uuid.uuid4()
    conn.execute("SELECT * FROM lake.begin_batch(%s, %s, %s)", [DS, batch, "0" * 64])
    conn.execute(
        "INSERT INTO inbox.location_history (ts, doc, batch_id, ref) VALUES (now(), %s, %s, 'r')",
        [Jsonb(point(n + 1)), batch],
    )
    conn.execute("SELECT * FROM lake.end_batch(%s, 1)", [batch])


@pytest.mark.parametrize("when", ["before", "after"])
def test_the_commit_time_triggers_refuse_to_run_early(
    conn: Conn, db: str, location_dataset: str, when: str
) -> None:
    """Made IMMEDIATE by SET CONSTRAINTS (ALL, or the lake's commit-time trigger by name,
    before or after writing), the batch trigger would audit and capture batches before their
    counts are final. Every such transaction fails with LK051 instead. No writer ever takes the
    chain's head (only the sealer does), so it stays free meanwhile. Without SET CONSTRAINTS the
    same writes commit as usual."""
    # One name for all (lake_internal._require_commit probes it): no other name escapes the probe.
    assert deferred_lake_constraints(conn) == ["at_commit"]
    conn.execute("SELECT lake.create_user('alice')")
    key = conn.execute("SELECT api_key FROM lake.create_api_key('alice')").fetchone()
    assert key is not None
    app = make_conninfo(db, user=APP_ROLE)  # an application's login, no superuser
    for target in ["ALL", "lake.at_commit"]:
        with psycopg.connect(app) as client, psycopg.connect(db) as other:
            client.execute("SELECT lake.authenticate(%s, 'session')", [key[0]])
            with pytest.raises(psycopg.Error) as refused:
                if when == "before":
                    client.execute(f"SET CONSTRAINTS {target} IMMEDIATE")
                write_both_ways(client, 1)
                if when == "after":
                    client.execute(f"SET CONSTRAINTS {target} IMMEDIATE")
                # Not refused yet: then the lock must be free for everyone else.
                other.execute("SELECT FROM lake_internal.audit_head FOR UPDATE NOWAIT")
                other.rollback()
                client.commit()
            assert refused.value.sqlstate == "LK051", (target, refused.value)
    assert changes(conn) == []
    with psycopg.connect(app) as client:
        client.execute("SELECT lake.authenticate(%s, 'session')", [key[0]])
        write_both_ways(client, 1)
    assert len(changes(conn)) == 2  # the lake.ingest row and the inbox batch
    assert conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone() == (True,)
