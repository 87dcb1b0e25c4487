"""The audit log: what is recorded, that no application role can alter it, and that its hash
chain stays linear under concurrent writers and shows where it was tampered with."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.conftest import APP_ROLE, seal

Conn = psycopg.Connection[tuple[object, ...]]

POINT = (
    "jsonb_build_object('ts', to_char(now() AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', 1, 'lon', 2)"
)


def verify(conn: Conn) -> tuple[object, ...]:
    seal(conn)
    row = conn.execute("SELECT ok, entries, first_bad_id, problem FROM lake.verify_audit_chain()")
    result = row.fetchone()
    assert result is not None
    return result


def actions(conn: Conn) -> list[object]:
    seal(conn)
    return [r[0] for r in conn.execute("SELECT action FROM lake.audit_log ORDER BY id")]


def test_changes_to_user_data_are_audited_before_and_after(conn: Conn, location_dataset: str):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        f"INSERT INTO user_data.location_history (ts, doc) SELECT now(), {POINT}"
        " FROM generate_series(1, 2500)"
    )
    conn.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 3}'")
    conn.execute("DELETE FROM user_data.location_history WHERE id % 2 = 0")
    conn.execute("TRUNCATE user_data.location_history")
    seal(conn)
    rows = conn.execute(
        "SELECT action, object, lake_user, (detail->>'rows')::int, jsonb_array_length(before),"
        " jsonb_array_length(after), before->0->'doc'->>'lat', after->0->'doc'->>'lat'"
        " FROM lake.audit_log WHERE action LIKE 'data.%' OR action = 'ingest.batch' ORDER BY id"
    ).fetchall()
    table = "user_data.location_history"
    assert rows == [
        ("ingest.batch", "location_history", "alice", None, None, None, None, None),
        # 2 500 updated rows: entries of at most 1 000 rows each
        ("data.update", table, "alice", 1000, 1000, 1000, "1", "3"),
        ("data.update", table, "alice", 1000, 1000, 1000, "1", "3"),
        ("data.update", table, "alice", 500, 500, 500, "1", "3"),
        ("data.delete", table, "alice", 1000, 1000, None, "3", None),
        ("data.delete", table, "alice", 250, 250, None, "3", None),
        ("data.truncate", table, "alice", None, None, None, None, None),
    ]
    batch = conn.execute(
        "SELECT detail->>'received', detail->>'accepted' FROM lake.audit_log"
        " WHERE action = 'ingest.batch'"
    ).fetchone()
    assert batch == ("2500", "2500")
    assert verify(conn)[0] is True


def test_invalid_rows_moved_by_the_lake_are_not_audited_as_deletes(
    conn: Conn, location_dataset: str
):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        "INSERT INTO user_data.location_history (ts, doc)"
        f' VALUES (now(), {POINT}), (now(), \'{{"ts": "2026-01-01T00:00:00Z"}}\')'
    )
    assert "data.delete" not in actions(conn)
    assert conn.execute(
        "SELECT detail->>'accepted', detail->>'quarantined' FROM lake.audit_log"
        " WHERE action = 'ingest.batch'"
    ).fetchone() == ("1", "1")


def test_quarantine_decisions_and_administration_are_audited(conn: Conn, location_dataset: str):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        'SELECT lake.ingest(\'location_history\', \'[{"ts": "2026-01-01T00:00:00Z"},'
        ' {"ts": "2026-01-02T00:00:00Z"}]\')'
    )
    ids = [r[0] for r in conn.execute("SELECT id FROM lake.quarantine ORDER BY id")]
    conn.execute(
        "SELECT lake.quarantine_release(%s, jsonb_build_object('ts', to_char(now() AT TIME ZONE"
        " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', 1, 'lon', 2), 'fixed')",
        [ids[0]],
    )
    conn.execute("SELECT lake.quarantine_discard(%s, 'test data')", [ids[1]])
    got = actions(conn)
    assert got[0] == "dataset.create"
    assert "quarantine.release" in got and "quarantine.discard" in got
    released = conn.execute(
        "SELECT detail->>'note', before, after->>'lat' FROM lake.audit_log"
        " WHERE action = 'quarantine.release'"
    ).fetchone()
    assert released == ("fixed", {"ts": "2026-01-01T00:00:00Z"}, "1")


def test_no_application_role_can_alter_the_log(conn: Conn, location_dataset: str):
    conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
    for statement in (
        "INSERT INTO lake.audit_log (id) VALUES (1)",
        "UPDATE lake.audit_log SET action = 'x'",
        "DELETE FROM lake.audit_log",
        "TRUNCATE lake.audit_log",
        "UPDATE lake_internal.audit_head SET last_id = 0",
        "SELECT lake_internal._audit('forged', 'x')",
        "INSERT INTO lake.audit_pending (occurred_at, action, db_role, xact_id)"
        " VALUES (now(), 'forged', 'x', pg_current_xact_id())",
        "SELECT lake.seal()",
        "SELECT lake.arm_sealer(true)",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    conn.execute("RESET SESSION AUTHORIZATION")
    seal(conn)
    # Not even its owner (or a superuser going through the table) may change an entry.
    for statement in (
        "UPDATE lake.audit_log SET action = 'x'",
        "DELETE FROM lake.audit_log",
        "TRUNCATE lake.audit_log",
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(statement)
        assert err.value.sqlstate == "LK050"


def test_the_chain_shows_the_first_altered_or_missing_entry(conn: Conn, location_dataset: str):
    for name in ("u1", "u2", "u3", "u4", "u5"):
        conn.execute("SELECT lake.create_user(%s)", [name])
    ok, entries, _, _ = verify(conn)
    assert ok is True and entries == 6  # the dataset and five users

    # A superuser who switches the guard off can change a row; the chain shows where.
    conn.execute("ALTER TABLE lake.audit_log DISABLE TRIGGER USER")
    conn.execute("UPDATE lake.audit_log SET object = 'mallory' WHERE id = 3")
    assert verify(conn)[2:] == (3, "entry 3 was altered: its hash does not match its content")
    conn.execute("UPDATE lake.audit_log SET object = 'u2' WHERE id = 3")
    assert verify(conn)[0] is True

    conn.execute("DELETE FROM lake.audit_log WHERE id = 4")
    assert verify(conn)[2:] == (5, "entries 4 to 4 are missing")
    conn.execute("DELETE FROM lake.audit_log WHERE id >= 5")
    assert verify(conn)[2:] == (4, "entries 4 to 6 are missing (the chain's head is entry 6)")


def test_a_rolled_back_append_leaves_no_gap(conn: Conn, location_dataset: str):
    conn.autocommit = False
    conn.execute("SELECT lake.create_user('ghost')")
    conn.rollback()
    conn.execute("SELECT lake.create_user('real')")
    conn.commit()
    seal(conn)
    conn.commit()
    assert [r[0] for r in conn.execute("SELECT id FROM lake.audit_log ORDER BY id")] == [1, 2]
    assert verify(conn)[0] is True
    conn.rollback()


def test_the_chain_stays_linear_under_concurrent_writers(db: str, conn: Conn):
    conn.execute("SELECT lake.create_dataset('points', '{\"type\": \"object\"}')")
    writers, each = 4, 40
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            with psycopg.connect(make_conninfo(db), autocommit=True) as c:
                start.wait()
                for i in range(each):
                    c.execute("SELECT lake.create_user(%s)", [f"w{n}-{i}"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ok, entries, bad, problem = verify(conn)
    assert (ok, bad, problem) == (True, None, None)
    assert entries == 1 + writers * each
    ids = [r[0] for r in conn.execute("SELECT id FROM lake.audit_log ORDER BY id")]
    assert ids == list(range(1, 2 + writers * each))


def test_an_open_transaction_does_not_hold_up_other_audited_work(db: str, conn: Conn):
    conn.execute("SELECT lake.create_user('alice')")
    with psycopg.connect(db) as slow, psycopg.connect(db, autocommit=True) as other:
        slow.execute("SELECT lake.create_user('bob')")  # audited, transaction left open
        other.execute("SET lock_timeout = '2s'")
        other.execute("SELECT lake.create_user('carol')")  # would wait on a held chain lock
        seal(conn)  # bob's entry is not committed: it waits for the next seal
        slow.commit()
    seal(conn)
    rows = conn.execute("SELECT id, object FROM lake.audit_log ORDER BY id").fetchall()
    assert rows == [(1, "alice"), (2, "carol"), (3, "bob")]  # chained in commit order
    assert verify(conn)[0] is True


def test_months_past_365_days_are_dropped_and_the_chain_still_verifies(conn: Conn):
    for name in ("u1", "u2", "u3"):
        conn.execute("SELECT lake.create_user(%s)", [name])
    # Nothing is old enough today.
    assert conn.execute("SELECT lake.purge_audit_log()").fetchone() == (0,)
    assert verify(conn)[:2] == (True, 3)
    # 400 days on, this month is past retention: dropped, and the chain starts after it.
    assert conn.execute("SELECT lake.purge_audit_log(now() + interval '400 days')").fetchone() == (
        1,
    )
    seal(conn)
    assert conn.execute("SELECT first_id, last_id FROM lake_internal.audit_head").fetchone() == (
        4,
        4,
    )
    # The purge is itself the first entry of the new month; the chain verifies from there.
    assert actions(conn) == ["audit.purge"]
    conn.execute("SELECT lake.create_user('u4')")
    assert verify(conn)[:3] == (True, 2, None)
