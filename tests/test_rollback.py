"""Checkpoints and rollback: a dataset returns row for row (ids, owners, documents, batches,
ingest times, sealed PII) to its state at one of its last 5 checkpoints; the rollback is an
audited change of its own that can be undone; checkpoints and undo rows are purged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from lake_client.errors import LakeError
from tests.conftest import ADMIN_ROLE, APP_ROLE, point, seal, wait_for_older_transactions

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC)
DS = "location_history"
# Every column but xact_id, the bookkeeping of which transaction wrote a row version: a restored
# row is written by the rollback.
COLUMNS = "id, user_id, ts, doc, batch_id, ingested_at, pii"


@contextmanager
def refused(sqlstate: str) -> Iterator[pytest.ExceptionInfo[psycopg.Error]]:
    with pytest.raises(psycopg.Error) as err:
        yield err
    assert err.value.sqlstate == sqlstate, err.value


def state(conn: Conn, dataset: str = DS) -> list[tuple[object, ...]]:
    """The whole dataset, every user's rows (the test connection is a superuser)."""
    return conn.execute(f"SELECT {COLUMNS} FROM user_data.{dataset} ORDER BY id").fetchall()


def checkpoint(conn: Conn, label: str = "test", dataset: str = DS) -> int:
    row = conn.execute("SELECT id FROM lake.checkpoint(%s, %s)", [dataset, label]).fetchone()
    assert row is not None
    return int(str(row[0]))


def rollback(conn: Conn, cp: int, dataset: str = DS) -> tuple[int, int, int, int]:
    row = conn.execute(
        "SELECT before_checkpoint, rows_deleted, rows_restored, rows_not_restored"
        " FROM lake.rollback(%s, %s)",
        [dataset, cp],
    ).fetchone()
    assert row is not None
    return (int(str(row[0])), int(str(row[1])), int(str(row[2])), int(str(row[3])))


def ingest(conn: Conn, user: str, records: list[dict[str, object]]) -> None:
    conn.execute(
        "SELECT lake.ingest(%s, %s, for_user => %s)", [DS, Jsonb(records), user]
    ).fetchone()


@pytest.fixture
def loaded(conn: Conn, lake: Lake, location_dataset: str) -> Conn:
    """alice's and bob's points, stored by every path: lake.ingest, Lake.ingest (COPY through
    the inbox) and plain INSERT."""
    ingest(conn, "alice", [point(i) for i in range(1, 21)])
    ingest(conn, "bob", [point(i, 5.0) for i in range(1, 11)])
    lake.act_as("alice")
    lake.ingest(DS, [point(i, 7.0) for i in range(30, 40)])
    conn.execute("SELECT lake.act_as('bob', 'session')")
    conn.execute(
        "INSERT INTO user_data.location_history (ts, doc)"
        " SELECT now() - make_interval(mins => g), jsonb_build_object('ts', to_char("
        "(now() - make_interval(mins => g)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'lat', 3, 'lon', 4) FROM generate_series(1, 5) AS g"
    )
    conn.execute("SELECT lake.reset_identity()")
    assert len(state(conn)) == 45
    return conn


def change_everything(conn: Conn, lake: Lake) -> None:
    """Inserts by every path, updates and deletes of both users' rows."""
    ingest(conn, "alice", [point(i, 9.0) for i in range(100, 105)])
    lake.act_as("bob")
    lake.ingest(DS, [point(i, 8.0) for i in range(200, 204)])
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        "INSERT INTO user_data.location_history (ts, doc) VALUES (now(), jsonb_build_object("
        "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', 6,"
        " 'lon', 6))"
    )
    conn.execute("SELECT lake.reset_identity()")
    conn.execute(
        "UPDATE user_data.location_history SET doc = doc || '{\"lat\": 42}' WHERE id % 3 = 0"
    )
    conn.execute(
        "UPDATE user_data.location_history SET doc = doc || '{\"lat\": 43}' WHERE id % 6 = 0"
    )
    conn.execute("DELETE FROM user_data.location_history WHERE id % 4 = 1")
    # Into another month's partition.
    conn.execute(
        "UPDATE user_data.location_history SET ts = ts - interval '40 days' WHERE id IN (2, 3)"
    )


def test_rollback_restores_the_checkpoint_row_for_row(loaded: Conn, lake: Lake):
    conn = loaded
    at_checkpoint = state(conn)
    batches = conn.execute("SELECT * FROM lake.batches ORDER BY id").fetchall()
    cp = checkpoint(conn)
    change_everything(conn, lake)
    assert state(conn) != at_checkpoint

    before, deleted, restored, not_restored = rollback(conn, cp)

    assert state(conn) == at_checkpoint
    assert {r[1] for r in at_checkpoint} == {"alice", "bob"}
    assert deleted > 0 and restored > 0 and not_restored == 0
    # History stays history: the batches that came after the checkpoint are still recorded.
    after = conn.execute("SELECT * FROM lake.batches ORDER BY id").fetchall()
    assert set(batches) < set(after)
    # The rollback is a recorded change: its own checkpoint, its deletes and restores audited.
    assert conn.execute(
        "SELECT label FROM lake.checkpoints WHERE id = %s", [before]
    ).fetchone() == (f"before rollback to #{cp}",)
    seal(conn)
    audit = conn.execute(
        "SELECT action, (detail->>'rows')::int, jsonb_array_length(after) FROM lake.audit_log"
        " WHERE id > (SELECT max(id) FROM lake.audit_log WHERE action = 'checkpoint.create'"
        "              AND (detail->>'checkpoint')::bigint = %s)"
        " ORDER BY id",
        [before],
    ).fetchall()
    assert audit == [
        ("data.delete", deleted, None),
        ("data.restore", restored, restored),
        ("dataset.rollback", None, None),
    ]
    assert conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone() == (True,)
    # The rollback recorded its duration (data_processing_duration_seconds).
    assert conn.execute(
        "SELECT status, count FROM lake.op_duration_histogram WHERE operation = 'rollback'"
    ).fetchall() == [("ok", 1)]


def test_rollback_of_the_rollback_restores_the_state_before_it(loaded: Conn, lake: Lake):
    conn = loaded
    cp = checkpoint(conn)
    change_everything(conn, lake)
    changed = state(conn)
    before, *_ = rollback(conn, cp)
    assert state(conn) != changed
    rollback(conn, before)
    assert state(conn) == changed
    # ...and again forth: the first checkpoint is still among the last 5.
    rollback(conn, cp)
    at_checkpoint_again = state(conn)
    rollback(conn, before)
    assert state(conn) == changed
    assert at_checkpoint_again != changed


def test_a_transaction_in_flight_at_the_checkpoint_is_undone(loaded: Conn, db: str):
    conn = loaded
    with psycopg.connect(db) as other:  # a transaction, not autocommit
        other.execute("SELECT lake.act_as('carol')")
        other.execute(
            "SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(i, 11.0) for i in range(1, 4)])]
        )
        other.execute("DELETE FROM user_data.location_history WHERE (doc->>'lat')::numeric = 11")
        with other.transaction():  # a savepoint: its rows carry the top-level transaction
            other.execute(
                "SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(i, 12.0) for i in range(1, 3)])]
            )
            other.execute(
                "UPDATE user_data.location_history SET doc = doc || '{\"lat\": 13}' WHERE id < 5"
            )
        at_checkpoint = state(conn)  # what had been committed when the checkpoint was taken
        cp = checkpoint(conn)
        other.commit()
    assert len(state(conn)) == len(at_checkpoint) + 2
    rollback(conn, cp)
    assert state(conn) == at_checkpoint


def test_a_transaction_committed_after_the_checkpoint_is_undone(loaded: Conn, db: str):
    """Its changes to rows the checkpoint saw: the checkpoint's versions come back."""
    conn = loaded
    at_checkpoint = state(conn)
    with psycopg.connect(db) as other:
        other.execute("SELECT 1")  # the transaction starts before the checkpoint
        cp = checkpoint(conn)
        other.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 0}'")
        other.execute("DELETE FROM user_data.location_history WHERE id % 2 = 0")
        other.commit()
    rollback(conn, cp)
    assert state(conn) == at_checkpoint


def test_truncate_is_undone(loaded: Conn, lake: Lake):
    conn = loaded
    at_checkpoint = state(conn)
    cp = checkpoint(conn)
    conn.execute("TRUNCATE user_data.location_history")
    ingest(conn, "alice", [point(i, 9.0) for i in range(1, 4)])
    _, deleted, restored, _ = rollback(conn, cp)
    assert (deleted, restored) == (3, len(at_checkpoint))
    assert state(conn) == at_checkpoint


def test_only_the_last_five_checkpoints_can_be_targeted(loaded: Conn, conn: Conn):
    ids = [checkpoint(conn, f"cp {i}") for i in range(6)]
    targets = [r[0] for r in conn.execute(f"SELECT id FROM lake.rollback_targets('{DS}')")]
    assert targets == ids[::-1][:5]
    with refused("LK071") as err:
        rollback(conn, ids[0])
    assert err.value.diag.message_hint is not None
    hint = err.value.diag.message_hint
    assert f"#{ids[1]} (cp 1" in hint and hint.index(f"#{ids[5]}") < hint.index(f"#{ids[1]}")
    with refused("LK070"):
        rollback(conn, 999_999)
    conn.execute("SELECT lake.create_dataset('other', '{\"type\": \"object\"}')")
    other = checkpoint(conn, dataset="other")
    with refused("LK070"):
        rollback(conn, other)  # a checkpoint of another dataset
    with refused("LK003"):
        rollback(conn, ids[-1], dataset="nope")
    # A refused rollback changed nothing; the newest is still a target.
    rollback(conn, ids[-1])


def test_rollback_needs_read_committed(loaded: Conn):
    cp = checkpoint(loaded)
    with refused("LK072"), loaded.transaction():
        loaded.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rollback(loaded, cp)


def test_rollback_refuses_a_transaction_that_changed_the_dataset(loaded: Conn):
    cp = checkpoint(loaded)
    for change in (
        "DELETE FROM user_data.location_history WHERE id = 1",
        "INSERT INTO user_data.location_history (user_id, ts, doc)"
        " SELECT user_id, ts, doc FROM user_data.location_history WHERE id = 2",
    ):
        with refused("LK074"), loaded.transaction():
            loaded.execute(change)
            rollback(loaded, cp)
    with loaded.transaction():  # an xid for other reasons is fine
        loaded.execute("SELECT pg_current_xact_id()")
        rollback(loaded, cp)


def test_repeated_hourly_checkpoints_are_one(loaded: Conn):
    conn = loaded
    q = "SELECT id FROM lake.checkpoint(%s, 'hourly', min_gap => '30 minutes')"
    first = conn.execute(q, [DS]).fetchone()
    assert conn.execute(q, [DS]).fetchone() == first
    other = conn.execute("SELECT id FROM lake.checkpoint(%s, 'manual')", [DS]).fetchone()
    assert other != first
    assert conn.execute("SELECT count(*) FROM lake.checkpoints").fetchone() == (2,)
    with refused("LK073"):
        conn.execute("SELECT lake.checkpoint(%s, '')", [DS])
    with refused("LK003"):
        conn.execute("SELECT lake.checkpoint('nope')")


def test_purge_drops_old_checkpoints_and_the_undo_rows_nobody_needs(loaded: Conn, lake: Lake):
    conn = loaded
    old = checkpoint(conn, "old")
    conn.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 50}' WHERE id < 6")
    conn.execute("UPDATE lake.checkpoints SET created_at = created_at - interval '2 hours'")
    at_young = state(conn)
    young = checkpoint(conn, "young")
    conn.execute("DELETE FROM user_data.location_history WHERE id < 4")
    assert conn.execute("SELECT count(*) FROM lake_internal.row_undo").fetchone() == (8,)
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None and isinstance(now[0], datetime)
    # The purge keeps undo rows that a transaction still running may need: any transaction in
    # the cluster older than these writes (the next test's database being cloned, say) would
    # keep them all. Wait for those to end, so the counts depend on the checkpoints alone.
    wait_for_older_transactions(conn)

    # An hour later nothing is due: both checkpoints are younger than 24 hours.
    purge = "SELECT checkpoints_purged, undo_rows_purged FROM lake.purge_checkpoints(%s)"
    assert conn.execute(purge, [now[0] + timedelta(hours=1)]).fetchone() == (0, 0)
    # 23 hours on, "old" (2 hours older) is gone, and with it the before-images of the update
    # that only it needed; the delete's are still needed by "young".
    assert conn.execute(purge, [now[0] + timedelta(hours=23)]).fetchone() == (1, 5)
    assert conn.execute("SELECT id FROM lake.checkpoints").fetchall() == [(young,)]
    assert conn.execute("SELECT count(*) FROM lake_internal.row_undo").fetchone() == (3,)
    assert conn.execute(purge, [now[0] + timedelta(hours=23)]).fetchone() == (0, 0)  # repeatable
    with refused("LK070"):
        rollback(conn, old)
    rollback(conn, young)
    assert state(conn) == at_young

    # A day later the rest goes; what the rollback itself kept too.
    wait_for_older_transactions(conn)
    assert conn.execute(purge, [now[0] + timedelta(hours=49)]).fetchone() == (2, 3)
    assert conn.execute("SELECT count(*) FROM lake_internal.row_undo").fetchone() == (0,)
    seal(conn)
    assert conn.execute(
        "SELECT detail->>'checkpoints' FROM lake.audit_log WHERE action = 'checkpoint.purge'"
        " ORDER BY id"
    ).fetchall() == [("1",), ("2",)]


def test_pii_fields_come_back_sealed_and_findings_with_them(conn: Conn):
    # The schema's pattern matches the originals only: restored masks must not be re-validated.
    schema = {"type": "object", "properties": {"email": {"type": "string", "pattern": "^[a-z]+@"}}}
    conn.execute(
        "SELECT lake.create_dataset('contacts', %s, '{\"pii_fields\": [\"email\"]}')",
        [Jsonb(schema)],
    )
    ts = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    records = [{"ts": ts, "email": "ann@example.com", "note": "or +44 20 7946 0958"}]
    conn.execute("SELECT lake.ingest('contacts', %s, for_user => 'alice')", [Jsonb(records)])
    at_checkpoint = state(conn, "contacts")
    findings = conn.execute("SELECT record_id, path, kind FROM lake.pii_findings").fetchall()
    assert findings
    cp = checkpoint(conn, dataset="contacts")
    conn.execute('UPDATE user_data.contacts SET doc = doc || \'{"email": "bob@example.org"}\'')
    conn.execute("DELETE FROM user_data.contacts")
    rollback(conn, cp, dataset="contacts")
    assert state(conn, "contacts") == at_checkpoint
    assert conn.execute("SELECT doc->>'email' FROM user_data.contacts").fetchone() == (
        "a***@example.com",
    )
    assert conn.execute(
        "SELECT doc->>'email' FROM lake.pii_reveal('contacts', ARRAY[1]::bigint[])"
    ).fetchone() == ("ann@example.com",)
    assert (
        conn.execute("SELECT record_id, path, kind FROM lake.pii_findings").fetchall() == findings
    )
    assert conn.execute("SELECT count(*) FROM lake.quarantine").fetchone() == (0,)


def test_rows_past_retention_are_not_brought_back(loaded: Conn):
    conn = loaded
    cp = checkpoint(conn)
    conn.execute("DELETE FROM user_data.location_history")
    # As if the retention job had since dropped the months these rows lie in.
    conn.execute("UPDATE lake.datasets SET partitions_from = now() + interval '1 day'")
    _, _, restored, not_restored = rollback(conn, cp)
    assert (restored, not_restored) == (0, 45)


def test_applications_cannot_roll_back_or_forge_row_versions(loaded: Conn, as_role):
    conn = loaded
    cp = checkpoint(conn)
    conn.execute("SELECT lake.create_user('alice')")
    key = conn.execute("SELECT api_key FROM lake.create_api_key('alice')").fetchone()
    assert key is not None
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [key[0]])
    for call in (
        f"SELECT lake.rollback('{DS}', {cp})",
        f"SELECT lake.checkpoint('{DS}')",
        "SELECT lake.purge_checkpoints()",
        f"SELECT lake.rollback_targets('{DS}')",
        "SELECT count(*) FROM lake_internal.row_undo",
        "SELECT count(*) FROM lake.checkpoints",
        "INSERT INTO user_data.location_history (ts, doc, xact_id) VALUES (now(), '{}', '1')",
        "UPDATE user_data.location_history SET xact_id = '1'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(call)
    # An ordinary update stamps the row with the updating transaction, whatever the app wants.
    with app.transaction():
        xact = app.execute("SELECT pg_current_xact_id()::text").fetchone()
        app.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 2}'")
    assert app.execute(
        "SELECT DISTINCT xact_id::text FROM user_data.location_history"
    ).fetchall() == [xact]
    # Administrators may.
    admin = as_role(ADMIN_ROLE)
    admin.execute(f"SELECT lake.rollback('{DS}', {cp})")


def test_the_client_lists_checkpoints_and_rolls_back(loaded: Conn, lake: Lake):
    at_checkpoint = state(loaded)
    cp = lake.checkpoint(DS, "before the import")
    assert cp["label"] == "before the import"
    loaded.execute("DELETE FROM user_data.location_history")
    result = lake.rollback(DS, int(cp["id"]))
    assert result["rows_restored"] == len(at_checkpoint)
    assert state(loaded) == at_checkpoint
    rows = lake.checkpoints(DS)
    assert [(r["label"], r["can_rollback"]) for r in rows] == [
        (f"before rollback to #{cp['id']}", True),
        ("before the import", True),
    ]
    with pytest.raises(LakeError) as err:
        lake.rollback(DS, 999_999)
    assert err.value.sqlstate == "LK070"


def cli(*args: str, dsn: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKE_DSN": dsn, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lake_client.cli", *args],
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_takes_lists_and_rolls_back_with_confirmation(loaded: Conn, db: str):
    at_checkpoint = state(loaded)
    out = cli("checkpoint", DS, "--label", "nightly", dsn=db)
    assert out.returncode == 0, out.stderr
    found = re.search(r"checkpoint (\d+) of", out.stdout)
    assert found is not None
    cp = found.group(1)
    loaded.execute("DELETE FROM user_data.location_history")

    no = cli("rollback", DS, cp, dsn=db, answer="n\n")
    assert no.returncode != 0 and "for all users?" in no.stdout
    assert state(loaded) == []
    out = cli("rollback", DS, cp, dsn=db, answer="y\n")
    assert out.returncode == 0, out.stderr
    assert "0 rows removed, 45 restored" in out.stdout
    assert state(loaded) == at_checkpoint

    listing = cli("checkpoints", DS, dsn=db).stdout
    assert "nightly" in listing and f"before rollback to #{cp}" in listing
    undo = re.search(r"lake rollback location_history (\d+)", out.stdout)
    assert undo is not None
    assert cli("rollback", DS, undo.group(1), "--yes", dsn=db).returncode == 0
    assert state(loaded) == []
    refused = cli("rollback", DS, "999999", "--yes", dsn=db)
    assert refused.returncode != 0 and "has no checkpoint 999999" in refused.stderr


def test_writers_wait_for_a_rollback_and_readers_do_not(loaded: Conn, db: str):
    conn = loaded
    cp = checkpoint(conn)
    conn.execute("DELETE FROM user_data.location_history WHERE id < 10")
    with psycopg.connect(db) as admin, psycopg.connect(db, autocommit=True) as other:
        admin.execute("SELECT * FROM lake.rollback(%s, %s)", [DS, cp])  # not committed yet
        other.execute("SET lock_timeout = '200ms'")
        assert other.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (36,)
        other.execute("SELECT lake.act_as('alice', 'session')")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT lake.ingest(%s, %s)", [DS, Jsonb([point(1)])])
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("UPDATE user_data.location_history SET doc = doc WHERE id = 20")
        with (  # COPY through the inbox, which writes the partitions directly
            pytest.raises(psycopg.errors.LockNotAvailable),
            other.cursor() as cur,
            cur.copy("COPY inbox.location_history (ts, doc) FROM STDIN") as cp,
        ):
            cp.write_row([NOW, Jsonb(point(1))])
        admin.commit()
    assert len(state(conn)) == 45


def test_checkpoints_and_rows_of_another_cluster_are_refused(loaded: Conn):
    conn = loaded
    cp = checkpoint(conn)
    before = state(conn)
    # As if the checkpoint had been taken before the database was dumped and restored here.
    conn.execute("UPDATE lake.checkpoints SET system_id = system_id + 1 WHERE id = %s", [cp])
    with refused("LK075"):
        rollback(conn, cp)
    # As if rows had been restored from a dump of a cluster further on in its transactions.
    cp = checkpoint(conn)
    alien = "SELECT (pg_current_xact_id()::text::bigint + 1000000)::text::xid8"
    conn.execute(
        "INSERT INTO user_data.location_history (user_id, ts, doc, xact_id)"
        f" SELECT user_id, ts, doc, ({alien}) FROM user_data.location_history WHERE id = 1"
    )
    with refused("LK075") as err:
        rollback(conn, cp)
    assert "SET doc = doc" in str(err.value.diag.message_hint)
    assert len(state(conn)) == len(before) + 1  # nothing changed
    # Their before-images are of no use to this cluster's checkpoints: purged at once.
    conn.execute(
        "INSERT INTO lake_internal.row_undo (dataset, undo_xact, op, id, user_id, ts, doc,"
        f" batch_id, ingested_at, row_xact) SELECT 'location_history', ({alien}), 'DELETE', id,"
        " user_id,"
        " ts, doc, batch_id, ingested_at, xact_id FROM user_data.location_history WHERE id = 2"
    )
    assert conn.execute("SELECT undo_rows_purged FROM lake.purge_checkpoints()").fetchone() == (1,)


def test_a_rollback_puts_rows_back_into_a_cold_month(conn: Conn, location_dataset: str):
    """A tier is where data lives, not a ban: rows deleted in a cold month since the checkpoint
    come back like any others."""
    ingest(conn, "alice", [point(150 * 24 * 60), point(60)])  # 150 days ago: a cold month soon
    cp = checkpoint(conn)
    at_checkpoint = state(conn)
    conn.execute("DELETE FROM user_data.location_history WHERE ts < now() - interval '120 days'")
    conn.execute("CALL lake.apply_retention()")  # tiers: that month is cold now
    assert conn.execute(
        "SELECT tier FROM lake.partitions WHERE dataset = %s"
        " AND range_from = lake.month_start(now() - interval '150 days')",
        [DS],
    ).fetchone() == ("cold",)
    assert rollback(conn, cp)[2] == 1
    assert state(conn) == at_checkpoint
