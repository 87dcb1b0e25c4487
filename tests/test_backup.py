"""Backups that restore (lake_client.local.backup, pgBackRest): ingest, take a backup, ingest
more, delete a dataset's rows by mistake, and restore the lake to the moment before the delete
on a fresh data directory. Every row acknowledged before that moment is back and none after it,
the audit chain verifies, and the checkpoints taken before the restore still roll back exactly:
a point-in-time restore continues the same cluster's history (same system identifier, new
timeline), which is what lake.rollback's cluster check (LK075) asks.

Needs a server of its own (the test stops it and swaps its data directory): a private embedded
cluster under /tmp on free ports, so the suite's shared server is never touched.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client import local, migrate
from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local import backup
from tests.conftest import LOCATION_SCHEMA, private_settings, server_folder
from tests.redis_cluster import free_ports

DATASET = "location_history"


@pytest.fixture(scope="module")
def private() -> Iterator[Settings]:
    """A private embedded PostgreSQL + Redis, migrated, with the location_history dataset."""
    base = server_folder("lake-backup-")
    s = private_settings(base, *free_ports(2))
    try:
        local.up(s, quiet=True)
        migrate.upgrade(s.dsn())
        with psycopg.connect(s.dsn(), autocommit=True) as conn:
            conn.execute("SELECT lake.create_dataset(%s, %s)", [DATASET, Jsonb(LOCATION_SCHEMA)])
        yield s
    finally:
        local.down(s)
        shutil.rmtree(base, ignore_errors=True)


def _ingest(conn: psycopg.Connection[tuple[object, ...]], n: int, lat: float) -> set[int]:
    """n rows of user alice in one transaction; their ids once the commit is acknowledged."""
    conn.execute("SELECT lake.act_as('alice')")
    ids = conn.execute(
        "INSERT INTO user_data.location_history (ts, doc)"
        " SELECT t, jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', %s::float8, 'lon', i::float8 / 1000)"
        " FROM generate_series(1, %s) AS i, date_trunc('second', now()) AS t"
        " RETURNING id",
        [lat, n],
    ).fetchall()
    conn.commit()
    return {int(str(row[0])) for row in ids}


def _ids(conn: psycopg.Connection[tuple[object, ...]]) -> set[int]:
    return {int(str(r[0])) for r in conn.execute("SELECT id FROM user_data.location_history")}


def _scalar(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_point_in_time_restore_brings_back_every_acknowledged_row(private: Settings) -> None:
    s = private
    with psycopg.connect(s.dsn()) as conn:
        first = _ingest(conn, 200, 1.0)
        checkpoint = int(str(_scalar(conn, f"SELECT id FROM lake.checkpoint('{DATASET}')")))
        conn.commit()
        system_id = _scalar(conn, "SELECT system_identifier FROM pg_control_system()")

    taken = backup.backup(s, "full")
    assert taken["type"] == "full" and not taken["error"]
    assert (backup.BackupFiles(s.home).passphrase.stat().st_mode & 0o777) == 0o600
    conf = backup.BackupFiles(s.home).conf.read_text()
    assert "repo1-cipher-type=aes-256-cbc" in conf

    with psycopg.connect(s.dsn()) as conn:
        second = _ingest(conn, 300, 2.0)
        before_delete = _scalar(conn, "SELECT clock_timestamp()")
        assert isinstance(before_delete, datetime)
        conn.commit()
        # The mistake, then more work that the restore must leave out.
        deleted = conn.execute("DELETE FROM user_data.location_history").rowcount
        conn.commit()
        after = _ingest(conn, 50, 9.0)
    assert deleted == len(first | second) == 500

    live = s.home / "pg"
    with pytest.raises(ClusterError, match="running lake's data directory"):
        backup.restore(s, before_delete, live)
    target = s.home.parent / "restored"
    done = backup.restore(s, before_delete, target)
    assert done["timeline"] >= 2

    # The switch-over the README describes: stop, swap the data directories, start.
    local.down(s)
    live.rename(s.home / "pg.before-restore")
    target.rename(live)
    local.up(s, quiet=True)

    with psycopg.connect(s.dsn(), autocommit=True) as conn:
        restored = _ids(conn)
        assert restored == first | second, (
            f"{len(first | second - restored)} acknowledged rows missing, "
            f"{len(restored & after)} rows from after the target present"
        )
        assert _scalar(conn, "SELECT system_identifier FROM pg_control_system()") == system_id
        assert int(str(_scalar(conn, "SELECT timeline_id FROM pg_control_checkpoint()"))) >= 2
        conn.execute("SELECT lake.seal()")
        ok, entries = conn.execute("SELECT ok, entries FROM lake.verify_audit_chain()").fetchone()
        assert ok is True and int(str(entries)) > 0

        # A checkpoint from before the restore is of this cluster's history: accepted, and exact.
        rolled = conn.execute(
            "SELECT rows_deleted, rows_restored FROM lake.rollback(%s, %s)", [DATASET, checkpoint]
        ).fetchone()
        assert rolled == (300, 0)
        assert _ids(conn) == first
        ok, _ = conn.execute("SELECT ok, entries FROM lake.verify_audit_chain()").fetchone()
        assert ok is True

    # The restored lake archives on its new timeline into the same repository, and the backups
    # job takes what is due there: a full backup 8 days on (backup_full_every, 7 days); now,
    # nothing (that backup is younger than backup_incr_every, 1 day).
    with psycopg.connect(s.dsn(), autocommit=True) as conn:
        # The test runs the job at the times it chooses: pg_cron's schedule (minute 45 of each
        # hour) would otherwise take the advisory lock first now and then (the run 'skipped').
        conn.execute("UPDATE cron.job SET active = false")
        deadline = time.monotonic() + 120
        while _scalar(
            conn, "SELECT count(*) FROM lake.job_runs WHERE job = 'backups' AND status = 'running'"
        ):
            assert time.monotonic() < deadline, "a backups run pg_cron started did not end"
            time.sleep(0.5)
        later = _scalar(conn, "SELECT now() + interval '8 days'")
        runs = []
        for when in (later, _scalar(conn, "SELECT now()")):
            conn.execute("CALL lake.run_maintenance('backups', %s)", [when])
            runs += conn.execute(
                "SELECT status, details, error FROM lake.job_runs WHERE job = 'backups'"
                " ORDER BY id DESC LIMIT 1"
            ).fetchall()
    assert [r[0] for r in runs] == ["ok", "ok"], runs
    made, again = runs[0][1], runs[1][1]
    assert isinstance(made, dict) and made["type"] == "full"
    assert isinstance(again, dict) and again["backup"] is None
    assert [b["label"] for b in backup.backups(s)][-1] == made["backup"]
    with psycopg.connect(s.dsn(), autocommit=True) as conn:
        listed = [r[0] for r in conn.execute("SELECT label FROM lake.backups()")]
    assert listed == [b["label"] for b in backup.backups(s)]
    assert local.status(s).backups[-1]["label"] == made["backup"]


def test_restore_refuses_a_non_empty_target(tmp_path: Path) -> None:
    s = private_settings(tmp_path, 1, 2)  # no server: the target is checked first
    (tmp_path / "something").write_text("x")
    with pytest.raises(ClusterError, match="not empty"):
        backup.restore(s, datetime.now().astimezone(), tmp_path)
