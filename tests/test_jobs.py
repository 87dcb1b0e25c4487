"""The scheduled jobs: lake.run_maintenance (each job, its records, failures, overlaps), lake.jobs,
their installation in pg_cron by the migrations, and pg_cron really running one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from lake_client import migrate
from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.errors import JobError
from tests.conftest import ADMIN_ROLE, APP_ROLE, seal

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC)
TS = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
PROCEDURE_JOBS = [
    "verify_audit",
    "premake",
    "checkpoints",
    "quarantine_review",
    "pii_keys",
    "server_certs",
    "retention",
    "purge_changes",
    "purge_audit",
    "purge_logs",
    "purge_cron_history",
    "figures",
    "analyze",
    "backups",
]


def runs(conn: Conn, job: str | None = None) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT job, status, details, error FROM lake.job_runs"
        " WHERE %(job)s::text IS NULL OR job = %(job)s ORDER BY id",
        {"job": job},
    ).fetchall()


def months_after(conn: Conn, dataset: str) -> datetime:
    row = conn.execute(
        "SELECT partitions_to FROM lake.datasets WHERE name = %s", [dataset]
    ).fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]


def test_every_job_runs_and_is_recorded(conn: Conn, location_dataset: str) -> None:
    conn.execute("CALL lake.run_maintenance()")
    got = runs(conn)
    assert [r[0] for r in got] == PROCEDURE_JOBS
    assert {r[1] for r in got} == {"ok"}, got
    jobs = conn.execute(
        "SELECT job, kind, scheduled, last_status FROM lake.jobs ORDER BY job"
    ).fetchall()
    # Not the cron database: nothing is scheduled here, and the view says so.
    assert {(j[0], j[2]) for j in jobs} == {(j[0], False) for j in jobs}
    assert {j[0]: j[3] for j in jobs if j[1] == "procedure"} == dict.fromkeys(PROCEDURE_JOBS, "ok")
    assert {j[0] for j in jobs if j[1] == "statement"} == {"seal", "vacuum", "reindex"}


def month_partitions(conn: Conn, dataset: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM lake.partitions WHERE dataset = %s AND kind = 'month'", [dataset]
    ).fetchone()
    assert row is not None and isinstance(row[0], int)
    return row[0]


def test_premake_makes_months_ahead_once(conn: Conn, location_dataset: str) -> None:
    before = month_partitions(conn, location_dataset)
    later = NOW + timedelta(days=200)
    conn.execute("CALL lake.run_maintenance('premake', %s)", [later])
    # The month of `later` and the 3 after it (premake) now exist, contiguous with the old run.
    month = datetime(later.year, later.month, 1, tzinfo=UTC)
    end = months_after(conn, location_dataset)
    assert (end.year - month.year) * 12 + end.month - month.month == 4
    made = runs(conn, "premake")[-1][2]
    assert isinstance(made, dict)
    created = made["partitions_created"][location_dataset]
    assert created >= 6 and month_partitions(conn, location_dataset) == before + created
    # Idempotent: the same "now" again creates nothing.
    conn.execute("CALL lake.run_maintenance('premake', %s)", [later])
    again = runs(conn, "premake")[-1][2]
    assert isinstance(again, dict)
    assert again["partitions_created"] == {location_dataset: 0}
    assert month_partitions(conn, location_dataset) == before + created


def test_one_datasets_failure_does_not_stop_the_others(conn: Conn, location_dataset: str) -> None:
    conn.execute("SELECT lake.create_dataset('other', '{\"type\": \"object\"}')")
    # A table squatting the name of location_history's next partition: creating it fails.
    nxt = months_after(conn, location_dataset)
    conn.execute(
        sql.SQL("CREATE TABLE user_data_partitions.{} (x int)").format(
            sql.Identifier(f"location_history_p{nxt:%Y_%m}")
        )
    )
    later = nxt + timedelta(days=5)
    conn.execute("CALL lake.run_maintenance('premake', %s)", [later])
    _, status, details, _ = runs(conn, "premake")[-1]
    assert status == "failed"
    assert isinstance(details, dict)
    assert "location_history" in details["errors"]
    assert "already exists" in details["errors"]["location_history"]
    assert details["partitions_created"]["other"] > 0
    assert months_after(conn, "other") > later
    failures = conn.execute(
        "SELECT last_status, failures_24h FROM lake.jobs WHERE job = 'premake'"
    ).fetchone()
    assert failures == ("failed", 1)
    # The jobs after it still ran.
    conn.execute("CALL lake.run_maintenance(NULL, %s)", [later])
    assert runs(conn, "analyze")[-1][1] == "ok"


def test_quarantine_review_expires_and_keeps(conn: Conn, location_dataset: str) -> None:
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [Jsonb([{"ts": TS, "lat": 95, "lon": 2}, {"ts": TS, "lat": 1, "lon": 2}])],
        )
    # Not yet due.
    conn.execute("CALL lake.run_maintenance('quarantine_review')")
    assert conn.execute("SELECT status FROM lake.quarantine").fetchall() == [("pending",)]
    conn.execute("CALL lake.run_maintenance('quarantine_review', now() + interval '25 hours')")
    assert conn.execute("SELECT status FROM lake.quarantine").fetchall() == [("expired",)]
    details = runs(conn, "quarantine_review")[-1][2]
    assert details == {
        "expired_now": {"location_history": 1},
        "expired_awaiting_decision": {"location_history": 1},
    }
    report = conn.execute(
        "SELECT pending_review, expired_review FROM lake.quality_report"
    ).fetchone()
    assert report == (1, 1)
    seal(conn)
    audit = conn.execute(
        "SELECT object, detail->>'items' FROM lake.audit_log WHERE action = 'quarantine.expire'"
    ).fetchall()
    assert audit == [("location_history", "1")]
    # Expired is not decided: the item can still be released or discarded.
    item = conn.execute("SELECT id FROM lake.quarantine").fetchone()
    assert item is not None
    conn.execute("SELECT lake.quarantine_discard(%s, 'reviewed late')", [item[0]])
    assert conn.execute("SELECT status FROM lake.quarantine").fetchall() == [("discarded",)]


def test_checkpoints_job_takes_one_per_dataset_and_purges(
    conn: Conn, location_dataset: str
) -> None:
    conn.execute("SELECT lake.create_dataset('other', '{\"type\": \"object\"}')")
    conn.execute("CALL lake.run_maintenance('checkpoints')")
    conn.execute("CALL lake.run_maintenance('checkpoints')")  # within 30 minutes: no new one
    rows = conn.execute(
        "SELECT dataset, label, count(*) FROM lake.checkpoints GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    assert rows == [("location_history", "hourly", 1), ("other", "hourly", 1)]
    details = runs(conn, "checkpoints")[-1][2]
    assert isinstance(details, dict) and details["checkpoints_purged"] == 0
    conn.execute("CALL lake.run_maintenance('checkpoints', now() + interval '25 hours')")
    details = runs(conn, "checkpoints")[-1][2]
    assert isinstance(details, dict)
    # The two from "now" are past 24 hours at the later time and go; two new ones are taken.
    assert details["checkpoints_purged"] == 2 and details["errors"] == {}
    assert conn.execute("SELECT count(*) FROM lake.checkpoints").fetchone() == (2,)


def test_a_job_still_running_is_skipped_not_queued(conn: Conn, db: str) -> None:
    with psycopg.connect(db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('lake.job'), hashtext('purge_logs'))")
        conn.execute("CALL lake.run_maintenance('purge_logs')")
        assert [r[:2] for r in runs(conn)] == [("purge_logs", "skipped")]
        # The other jobs are not held up by it.
        conn.execute("CALL lake.run_maintenance('purge_audit')")
        assert runs(conn, "purge_audit")[-1][1] == "ok"
        other.execute("SELECT pg_advisory_unlock(hashtext('lake.job'), hashtext('purge_logs'))")
    conn.execute("CALL lake.run_maintenance('purge_logs')")
    assert [r[1] for r in runs(conn, "purge_logs")] == ["skipped", "ok"]


def test_a_run_whose_session_died_is_closed_as_abandoned(conn: Conn, db: str) -> None:
    with psycopg.connect(db, autocommit=True) as dead:
        dead.execute("SELECT lake_internal._job_start('premake', now())")
    assert [r[1] for r in runs(conn, "premake")] == ["running"]
    conn.execute("CALL lake.run_maintenance('premake')")
    got = runs(conn, "premake")
    assert [r[1] for r in got] == ["failed", "ok"]
    assert "abandoned" in str(got[0][3])


def test_purges_keep_what_is_recent(conn: Conn) -> None:
    conn.execute("CALL lake.run_maintenance('purge_logs')")
    conn.execute("CALL lake.run_maintenance('purge_logs', now() + interval '20 days')")
    assert len(runs(conn, "purge_logs")) == 2
    conn.execute("CALL lake.run_maintenance('purge_logs', now() + interval '31 days')")
    # The two runs started today are over 30 days old for that "now"; the run itself stays.
    got = runs(conn, "purge_logs")
    assert len(got) == 1 and got[0][2] == {"job_runs_deleted": 2, "durations_folded": 0}
    # The audit log keeps 365 days: this month's partition stays whatever "now" is below that.
    conn.execute("CALL lake.run_maintenance('purge_audit', now() + interval '300 days')")
    assert runs(conn, "purge_audit")[-1][2] == {"months_dropped": 0}


def test_unknown_and_statement_jobs_are_refused_clearly(
    conn: Conn, lake: Lake, location_dataset: str
) -> None:
    with pytest.raises(psycopg.Error, match="no lake job 'nope'") as info:
        conn.execute("CALL lake.run_maintenance('nope')")
    assert info.value.sqlstate == "LK080"
    with pytest.raises(psycopg.Error, match="cannot run inside a procedure") as info:
        conn.execute("CALL lake.run_maintenance('vacuum')")
    assert info.value.sqlstate == "LK081"
    assert "VACUUM (SKIP_LOCKED)" in str(info.value.diag.message_hint)
    with pytest.raises(JobError):
        lake.run_job("nope")
    # The client runs statement jobs as pg_cron does: outside a transaction.
    lake.run_job("vacuum")
    before = conn.execute(
        "SELECT c.relfilenode FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'user_data_partitions' AND c.relkind = 'i' ORDER BY c.relname"
    ).fetchall()
    lake.run_job("reindex")  # REINDEX SCHEMA CONCURRENTLY: every partition index rebuilt
    after = conn.execute(
        "SELECT c.relfilenode FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'user_data_partitions' AND c.relkind = 'i' ORDER BY c.relname"
    ).fetchall()
    assert before and len(after) == len(before)
    assert not set(before) & set(after)
    lake.run_job("premake", "2027-01-01T00:00:00Z")
    assert [r["job"] for r in lake.job_runs()] == ["premake"]
    assert lake.job_runs()[0]["job_now"] == datetime(2027, 1, 1, tzinfo=UTC)


def test_only_administrators_run_jobs(conn: Conn, as_role: Callable[[str], Conn]) -> None:
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("CALL lake.run_maintenance('premake')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM lake.jobs")
    admin = as_role(ADMIN_ROLE)
    admin.execute("CALL lake.run_maintenance('purge_logs')")
    assert admin.execute(
        "SELECT last_status FROM lake.jobs WHERE job = 'purge_logs'"
    ).fetchone() == ("ok",)


# -- pg_cron, in the embedded cluster's cron database -----------------------------------------


@pytest.fixture
def cron_conn(settings: Settings, template_db: str) -> Conn:
    """A superuser connection to the database where pg_cron lives (cron.database_name); the
    test roles exist (template_db makes them)."""
    c = psycopg.connect(settings.dsn("postgres"), autocommit=True)
    row = c.execute("SELECT current_setting('cron.database_name')").fetchone()
    c.close()
    assert row is not None
    return psycopg.connect(settings.dsn(str(row[0])), autocommit=True)


def test_the_migrations_install_the_jobs_in_pg_cron(settings: Settings, cron_conn: Conn) -> None:
    with cron_conn:
        dsn = settings.dsn(str(conninfo_to_dict(cron_conn.info.dsn)["dbname"]))
        migrate.upgrade(dsn)  # what `lake migrate` and `make demo` do; idempotent
        migrate.check_sources(dsn)
        cron_conn.execute(
            "SELECT lake_internal._install_jobs()"
        )  # a second install changes nothing
        scheduled = cron_conn.execute(
            "SELECT jobname, schedule, command FROM cron.job WHERE jobname LIKE 'lake.%'"
            " ORDER BY jobname"
        ).fetchall()
        defs = cron_conn.execute(
            "SELECT 'lake.' || name, schedule, command FROM lake.job_defs ORDER BY 1"
        ).fetchall()
        assert scheduled == defs
        expected = {
            "lake.vacuum": "0 3 * * *",
            "lake.analyze": "0 4 * * *",
            "lake.reindex": "0 1 * * 0",
            "lake.premake": "0 * * * *",
            "lake.quarantine_review": "15 * * * *",
        }
        assert {k: v for k, v, _ in scheduled if k in expected} == expected
        # An administrator (not superuser) sees them through lake.jobs.
        cron_conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ADMIN_ROLE)))
        seen = cron_conn.execute("SELECT job FROM lake.jobs WHERE scheduled").fetchall()
        cron_conn.execute("RESET ROLE")
        assert len(seen) == len(defs)


def test_pg_cron_really_runs_a_job(conn: Conn, db: str, cron_conn: Conn) -> None:
    """pg_cron (minute resolution in 1.4) runs lake.run_maintenance in this test's database."""
    name = f"lake-test-{uuid.uuid4().hex[:8]}"
    dbname = conninfo_to_dict(db)["dbname"]
    with cron_conn:
        cron_conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        jobid = cron_conn.execute(
            "SELECT cron.schedule_in_database(%s, '* * * * *',"
            " 'CALL lake.run_maintenance(''purge_logs'')', %s)",
            [name, dbname],
        ).fetchone()
        assert jobid is not None
        try:
            # The run is recorded as 'running' when it starts (committed at once), and
            # finished by the same procedure a moment later.
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not [
                r for r in runs(conn, "purge_logs") if r[1] != "running"
            ]:
                time.sleep(1)
            got = runs(conn, "purge_logs")
            detail = cron_conn.execute(
                "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s",
                [jobid[0]],
            ).fetchall()
        finally:
            cron_conn.execute("SELECT cron.unschedule(%s)", [jobid[0]])
        assert got and got[0][1] == "ok", detail
        row = conn.execute("SELECT db_role FROM lake.job_runs WHERE job = 'purge_logs'").fetchone()
        assert row == ("postgres",)
