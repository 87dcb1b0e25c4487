"""Change capture: lake.data_changes holds every committed change to user data in commit order,
in a Debezium-style envelope; rolled-back work leaves nothing; NOTIFY only wakes readers; the
purge_changes job keeps 7 days."""

from __future__ import annotations

import select
import threading
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from tests.conftest import APP_ROLE, point

Conn = psycopg.Connection[tuple[object, ...]]
DS = "location_history"


def changes(conn: Conn) -> list[tuple[object, ...]]:
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
    """lake._tg_capture skips its lookup when lake._tg_validate reported nothing quarantined in
    the statement; a session cannot forge that report (validate writes it just before)."""
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
    assert conn.execute("SELECT count(*) FROM lake.change_pending").fetchone() == (0,)


def test_ids_follow_commit_order(conn: Conn, db: str, location_dataset: str) -> None:
    """The transaction that started first but commits last gets the larger ids."""
    with psycopg.connect(db) as first, psycopg.connect(db) as second:
        first.execute("SELECT lake.act_as('alice')")
        first.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(5)])])
        second.execute("SELECT lake.act_as('bob')")
        second.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(6)])])
        second.commit()
        first.commit()
    assert [r[1] for r in changes(conn)] == ["bob", "alice"]


def test_notify_wakes_readers_with_the_last_id_only(
    conn: Conn, db: str, location_dataset: str
) -> None:
    with psycopg.connect(db, autocommit=True) as listener:
        listener.execute("LISTEN lake_changes")
        with conn.transaction():
            conn.execute("SELECT lake.act_as('alice')")
            conn.execute(
                "SELECT lake.ingest('location_history', %s)", [Jsonb([point(5), point(6)])]
            )
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
        "INSERT INTO lake.change_pending (dataset, op, source) VALUES ('x', 'c', '{}')",
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


def test_a_session_idle_while_holding_the_commit_lock_is_ended(
    conn: Conn, db: str, as_role, location_dataset: str
) -> None:
    """SET CONSTRAINTS ALL IMMEDIATE makes the seals run at the end of the statement: the
    application's transaction then holds the lake's commit lock, and every other writer's COMMIT
    waits for it. lake.release_commit_lock (the commit_lock job) ends such a session once it has
    been idle for the given time; its work is rolled back, the waiting writer commits, and the
    ending is audited. Sessions that hold no lake lock, or that block no one, are left alone."""
    conn.execute("SELECT lake.create_user('mallory')")
    key = conn.execute(
        "SELECT api_key FROM lake.create_api_key('mallory', ARRAY['read', 'write'])"
    ).fetchone()
    assert key is not None
    holder = as_role(APP_ROLE)
    holder.execute("SELECT lake.authenticate(%s, 'session')", [key[0]])
    holder_pid = holder.info.backend_pid
    bystander = as_role(APP_ROLE)  # idle in a transaction too, but holding nothing of the lake's
    bystander.execute("BEGIN")
    bystander.execute("SELECT count(*) FROM lake.datasets")
    holder.execute("BEGIN")
    holder.execute("SET CONSTRAINTS ALL IMMEDIATE")
    holder.execute("SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(3)])])
    # Idle, holding the lock, but no one waits yet: nothing to do.
    assert conn.execute("SELECT * FROM lake.release_commit_lock('0 seconds')").fetchall() == []

    def write() -> None:
        with psycopg.connect(db, autocommit=True) as writer:
            writer.execute("SELECT lake.act_as('bob', 'session')")
            writer.execute("SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(4)])])

    waiting = threading.Thread(target=write)
    waiting.start()
    deadline = time.monotonic() + 10
    while conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    ).fetchone() != (1,):
        assert time.monotonic() < deadline, "the writer never waited for the lock"
        time.sleep(0.05)
    waiting.join(1)
    assert waiting.is_alive()  # its commit waits for the idle holder
    # Not idle long enough yet.
    assert conn.execute("SELECT * FROM lake.release_commit_lock('1 hour')").fetchall() == []
    ended = conn.execute(
        "SELECT pid, usename, ended FROM lake.release_commit_lock('0 seconds')"
    ).fetchall()
    assert ended == [(holder_pid, APP_ROLE, True)]
    waiting.join(10)
    assert not waiting.is_alive()
    with pytest.raises(psycopg.OperationalError):
        holder.execute("SELECT 1")
    assert bystander.execute("SELECT 1").fetchone() == (1,)  # left alone
    bystander.execute("ROLLBACK")
    assert [r[1] for r in changes(conn)] == ["bob"]  # mallory's work rolled back
    audited = conn.execute(
        "SELECT object, detail->>'pid' FROM lake.audit_log WHERE action = 'session.ended'"
    ).fetchall()
    assert audited == [(APP_ROLE, str(holder_pid))]
    job = conn.execute(
        "SELECT kind, schedule, command FROM lake.job_defs WHERE name = 'commit_lock'"
    ).fetchone()
    assert job == ("statement", "* * * * *", "SELECT count(*) FROM lake.release_commit_lock()")
