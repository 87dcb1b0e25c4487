"""Tiers, retention with verified archives, restore (lake.apply_retention, lake.restore_partition).

Retention runs as `CALL lake.apply_retention(<simulated now>)` on an autocommit connection, as
the daily job does. The archives are written by the server's OS user into a folder of the test's
own (the archive_dir setting), which the test reads and damages from outside.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from lake_client.config import Settings
from tests.conftest import ADMIN_ROLE, APP_ROLE, drop_database, seal

Conn = psycopg.Connection[tuple[object, ...]]

SCHEMA = {
    "type": "object",
    "required": ["ts", "n"],
    "properties": {"ts": {"type": "string"}, "n": {"type": "integer"}},
}


@pytest.fixture
def archive_dir(settings: Settings, conn: Conn) -> Iterator[Path]:
    """A fresh archive folder that the server's OS user owns, set as archive_dir."""
    if not settings.embedded:
        pytest.skip("archives are written on the server's machine: needs the embedded cluster")
    path = Path(tempfile.mkdtemp(prefix="lake-archive-", dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    conn.execute("SELECT lake.set_setting('archive_dir', %s)", [str(path)])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def steps(conn: Conn, archive_dir: Path) -> str:
    """Dataset steps (pii_fields: email) and its lake user alice."""
    conn.execute(
        "SELECT lake.create_dataset('steps', %s, %s)",
        [Jsonb(SCHEMA), Jsonb({"pii_fields": ["email"]})],
    )
    conn.execute("SELECT lake.create_user('alice')")
    return "steps"


def ingest(conn: Conn, dataset: str, times: list[str], email: bool = False) -> tuple[Any, ...]:
    """Ingest one record at each SQL time expression for alice; returns (received, accepted,
    quarantined)."""
    docs = ", ".join(
        f"jsonb_build_object('ts', {t}, 'n', {i}, 'x', 0.1000000000000000000001"
        + (f", 'email', 'p{i}@example.com'" if email else "")
        + ")"
        for i, t in enumerate(times)
    )
    row = conn.execute(
        "SELECT received, accepted, quarantined FROM lake.ingest(%s, jsonb_build_array("
        + docs
        + "), NULL, 'alice')",
        [dataset],
    ).fetchone()
    assert row is not None
    return tuple(row)


def retention(conn: Conn, now: str = "now()") -> dict[str, Any]:
    row = conn.execute(f"CALL lake.apply_retention({now})").fetchone()
    assert row is not None
    report: dict[str, Any] = row[0]  # type: ignore[assignment]
    return report


@contextmanager
def raises_lake(sqlstate: str, match: str | None = None) -> Iterator[None]:
    """The block fails with one of the lake's own SQLSTATEs."""
    with pytest.raises(psycopg.Error, match=match) as err:
        yield
    assert err.value.sqlstate == sqlstate, err.value


def scalar(conn: Conn, query: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# A simulated "now" 3 months and a half ahead, in the middle of a month: the retention cutoff
# (now - 12 months) is then the 15th of the month 9 months ago, so that month straddles it.
AHEAD = "(date_trunc('month', now(), 'UTC') + interval '3 months 14 days')"
CUTOFF = f"({AHEAD} - interval '12 months')"
STRADDLING = f"date_trunc('month', {CUTOFF}, 'UTC')"
# A time in the oldest month of a new dataset's run, the first one retention reaches.
OLDEST = (
    "greatest(lake.month_start(now() - interval '12 months') + interval '27 days',"
    " now() - interval '12 months' + interval '1 hour')"
)


def test_tiers_are_recorded_and_cold_months_reject_writes(conn: Conn, steps: str, as_role):
    old, recent = "now() - interval '150 days'", "now() - interval '1 hour'"
    # Before any tiering: as today, a five-month-old record is accepted; no tier recorded.
    assert ingest(conn, steps, [old, recent]) == (2, 2, 0)
    assert scalar(conn, "SELECT count(*) FROM lake.partitions WHERE tiered_at IS NOT NULL") == 0
    assert scalar(conn, "SELECT writable_from FROM lake.datasets") is None

    report = retention(conn)["datasets"][steps]
    assert report["errors"] == [] and report["dropped"] == 0
    assert report["tiers_changed"] == scalar(
        conn, "SELECT count(*) FROM lake.partitions WHERE kind = 'month'"
    )
    tiers = dict(
        conn.execute(
            "SELECT to_char(month, 'YYYY-MM'), tier FROM lake.partition_tiers ORDER BY month"
        ).fetchall()
    )
    month = scalar(conn, f"SELECT to_char({old}, 'YYYY-MM')")
    assert tiers[month] == "cold"
    assert tiers[scalar(conn, "SELECT to_char(now(), 'YYYY-MM')")] == "hot"
    assert set(tiers.values()) == {"hot", "warm", "cold"}
    assert scalar(
        conn,
        "SELECT writable_from = lake.month_start(now() - interval '90 days') FROM lake.datasets",
    )
    # The view shows what was recorded, and the safety net sits on the cold partitions only.
    assert scalar(
        conn,
        "SELECT bool_and(p.tier = t.tier AND p.tiered_at IS NOT NULL"
        " AND EXISTS (SELECT FROM pg_trigger g WHERE g.tgname = 'cold_reject'"
        "   AND g.tgrelid = format('user_data_partitions.%I', p.partition)::regclass)"
        "   = (t.tier IN ('cold', 'expired')))"
        " FROM lake.partitions p JOIN lake.partition_tiers t ON t.partition = p.partition",
    )

    # Every ingest path quarantines a record of a cold month with a reason; nothing is lost.
    assert ingest(conn, steps, [old, recent]) == (2, 1, 1)
    conn.execute("SELECT lake.act_as('alice', 'session')")
    app = as_role(APP_ROLE)
    key = scalar(conn, "SELECT api_key FROM lake.create_api_key('alice')")
    app.execute("SELECT lake.authenticate(%s, 'session')", [key])
    app.execute(
        f"INSERT INTO user_data.steps (ts, doc) SELECT t, jsonb_build_object('ts', t, 'n', 1)"
        f" FROM (VALUES ({old}), ({recent})) AS v(t)"
    )
    with app.cursor() as cur, cur.copy("COPY inbox.steps (ts, doc) FROM STDIN") as cp:
        t = scalar(conn, f"SELECT ({old})::text")
        cp.write_row([t, f'{{"ts": "{t}", "n": 3}}'])
    rules = conn.execute(
        "SELECT b.source, b.received, b.accepted, b.quarantined, q.reasons -> 0 ->> 'rule',"
        " q.reasons -> 0 ->> 'message' LIKE '% a cold month: only months from % on take new%'"
        " FROM lake.quarantine q JOIN lake.batches b ON b.id = q.batch_id ORDER BY q.id"
    ).fetchall()
    assert rules == [
        ("sql", 2, 1, 1, "partition_cold", True),
        ("insert", 2, 1, 1, "partition_cold", True),
        ("insert", 1, 0, 1, "partition_cold", True),
    ]
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 4

    # An UPDATE that would change a cold row is refused like any invalid update.
    with raises_lake("LK040"):
        app.execute(
            "UPDATE user_data.steps SET doc = doc || '{\"n\": 9}'"
            " WHERE ts < now() - interval '1 day'"
        )
    # A write around the ingest paths, into the partition itself, fails at commit.
    part = scalar(conn, f"SELECT lake_internal._partition_name('steps', {old})")
    with raises_lake("LK061"):
        conn.execute(
            f"INSERT INTO user_data_partitions.{part} (id, user_id, ts, doc, batch_id)"
            f" VALUES (-1, 'alice', {old}, '{{}}', gen_random_uuid())"
        )
    # Erasure stays possible.
    assert (
        app.execute("DELETE FROM user_data.steps WHERE ts < now() - interval '1 day'").rowcount == 1
    )
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3


def test_retention_archives_and_drops_whole_months_only(conn: Conn, steps: str, archive_dir):
    times = [
        f"{STRADDLING} - interval '20 days'",  # the month before: wholly expired
        f"{STRADDLING} + interval '1 day'",  # the straddling month, before the cutoff
        f"{CUTOFF} + interval '1 hour'",  # the straddling month, inside the window
        "now() - interval '1 hour'",
    ]
    assert ingest(conn, steps, times, email=True) == (4, 4, 0)
    first = scalar(conn, "SELECT partitions_from FROM lake.datasets")
    report = retention(conn, AHEAD)
    ds = report["datasets"][steps]
    assert report["errors"] == [] and ds["errors"] == [] and ds["kept"] == []
    expired = scalar(
        conn,
        f"SELECT count(*) FROM generate_series(%s, {STRADDLING} - interval '1 month',"
        " interval '1 month')",
        [first],
    )
    assert ds["dropped"] == expired and ds["archived"] == 1 and ds["rows_dropped"] == 1
    assert [m["archive"] for m in ds["months"]].count("written") == 1

    # The straddling month stays whole; exactly the three younger rows are left.
    assert scalar(conn, f"SELECT partitions_from = {STRADDLING} FROM lake.datasets")
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3
    assert scalar(conn, f"SELECT min(ts) = {times[1]} FROM user_data.steps")
    assert scalar(conn, "SELECT count(*) FROM lake.partitions WHERE range_from < %s", [first]) == 0
    assert scalar(conn, "SELECT count(*) FROM user_data_partitions.steps_p_before") == 0

    # The archive: a manifest and a gzip JSON Lines file holding the row with all its columns.
    path, rows, sha, status = conn.execute(
        "SELECT path, rows, sha256, status FROM lake.archives"
    ).fetchone()  # type: ignore[misc]
    assert (rows, status) == (1, "dropped")
    month = scalar(conn, f"SELECT to_char({times[0]}, 'YYYY-MM')")
    assert Path(path).parent == archive_dir / steps / month
    content = gzip.decompress(Path(path).read_bytes())
    assert hashlib.sha256(content).hexdigest() == sha
    (line,) = content.decode().splitlines()
    record = json.loads(line)
    assert set(record) == {
        "id",
        "user_id",
        "ts",
        "doc",
        "batch_id",
        "ingested_at",
        "pii",
        "xact_id",
    }
    assert record["doc"]["email"] == "p***@example.com" and record["pii"].startswith("\\x")
    manifest = json.loads(Path(path.replace(".jsonl.gz", ".manifest.json")).read_text())
    assert manifest["row_count"] == 1 and manifest["sha256"] == sha
    assert manifest["month"] == month and manifest["dataset"] == steps
    assert [c["name"] for c in manifest["columns"]][:3] == ["id", "user_id", "ts"]
    seal(conn)
    assert (
        scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE action = 'retention.drop'")
        == expired
    )

    # A second run does nothing.
    files = sorted(archive_dir.rglob("*"))
    again = retention(conn, AHEAD)["datasets"][steps]
    assert (again["dropped"], again["archived"], again["tiers_changed"], again["months"]) == (
        0,
        0,
        0,
        [],
    )
    assert sorted(archive_dir.rglob("*")) == files
    assert scalar(conn, "SELECT count(*) FROM lake.archives") == 1


def test_restore_brings_a_month_back_row_for_row(conn: Conn, steps: str):
    old = [f"{STRADDLING} - interval '{d} days'" for d in (20, 25, 40)]
    assert ingest(conn, steps, [*old, "now()"], email=True) == (4, 4, 0)
    before = conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall()
    assert len(before) == 3
    # old[0] and old[1] lie in the month before the straddling one, old[2] in the month before.
    months = ", ".join(old)
    assert (
        scalar(conn, f"SELECT count(DISTINCT lake.month_start(t)) FROM unnest(ARRAY[{months}]) t")
        == 2
    )
    assert retention(conn, AHEAD)["datasets"][steps]["archived"] == 2
    assert scalar(conn, f"SELECT count(*) FROM user_data.steps WHERE ts < {STRADDLING}") == 0

    oldest = scalar(conn, f"SELECT lake.month_start({old[2]})")
    restored = conn.execute(
        f"SELECT status, rows, hold_until = {AHEAD} + interval '7 days'"
        f" FROM lake.restore_partition('steps', %s, {AHEAD})",
        [oldest],
    ).fetchone()
    assert restored == ("restored", 1, True)
    # The month between comes back empty (its archive stays as it is); the run is contiguous.
    assert scalar(conn, "SELECT partitions_from FROM lake.datasets") == oldest
    assert conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall() == [before[2]]
    conn.execute(f"SELECT lake.restore_partition('steps', lake.month_start({old[0]}), {AHEAD})")
    after = conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall()
    assert after == before  # ids, owners, times, documents, batches, ingest times, sealed PII
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'restored'") == 2
    # Restored months are read-only and refuse new records like cold ones.
    assert ingest(conn, steps, [old[0]]) == (1, 0, 1)
    with raises_lake("LK064"):
        conn.execute("SELECT lake.restore_partition('steps', %s)", [oldest])

    # Held for restore_hold (7 days) after the restore's "now", then archived again: the
    # archive still equals the partition, so it is reused, not written anew.
    held = retention(conn, AHEAD)["datasets"][steps]
    assert held["dropped"] == 0 and held["kept"][0]["action"] == "held"
    assert scalar(conn, f"SELECT count(*) FROM user_data.steps WHERE ts < {STRADDLING}") == 3
    later = retention(conn, f"{AHEAD} + interval '8 days'")["datasets"][steps]
    assert later["errors"] == [] and later["archived"] == 0
    assert [m["archive"] for m in later["months"]][:2] == ["reused", "reused"]
    assert scalar(conn, "SELECT count(*) FROM lake.archives") == 2
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'dropped'") == 2


def test_a_locked_table_and_a_damaged_archive_drop_nothing(
    conn: Conn, steps: str, db: str, archive_dir
):
    conn.execute("SELECT lake.create_dataset('other', %s)", [Jsonb(SCHEMA)])
    old = OLDEST
    ingest(conn, steps, [old, f"{old} + interval '1 minute'", "now()"])
    ingest(conn, "other", [old])
    conn.execute("SELECT lake.set_setting('lock_timeout', '100ms')")
    conn.execute("SELECT lake.set_setting('lock_attempts', '2')")
    first = scalar(conn, "SELECT partitions_from FROM lake.datasets WHERE name = 'steps'")

    # Another session holds a lock on the table: retention archives, then gives up detaching.
    with psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE user_data.steps IN ACCESS SHARE MODE")
        report = retention(conn, AHEAD)
    ds = report["datasets"][steps]
    assert ds["dropped"] == 0 and ds["errors"] == []
    (kept,) = ds["kept"]
    assert kept["action"] == "kept" and "stayed locked: 2 attempt(s) of 100ms" in kept["reason"]
    assert report["errors"] == [{"dataset": steps, **kept}]  # where a job runner looks
    assert scalar(conn, "SELECT partitions_from FROM lake.datasets WHERE name = 'steps'") == first
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3
    assert scalar(conn, "SELECT status FROM lake.archives WHERE dataset = 'steps'") == "verified"
    # The other dataset went its way.
    assert report["datasets"]["other"]["rows_dropped"] == 1
    assert scalar(conn, "SELECT count(*) FROM user_data.other") == 0
    seal(conn)
    assert (
        scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE action = 'retention.lock_timeout'")
        == 1
    )

    # The verified archive is damaged before the next run: it fails verification, nothing is
    # dropped, and the failure is recorded.
    path = Path(scalar(conn, "SELECT path FROM lake.archives WHERE dataset = 'steps'"))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:1]) + "\n").encode()))
    report = retention(conn, AHEAD)
    failed = report["datasets"][steps]
    assert failed["dropped"] == 0
    (error,) = failed["errors"]
    assert report["errors"] == [{"dataset": steps, **error}]
    assert error["action"] == "failed" and "does not hold what was recorded" in error["error"]
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3
    assert conn.execute(
        "SELECT status, error IS NOT NULL FROM lake.archives WHERE dataset = 'steps'"
    ).fetchall() == [("failed", True)]
    seal(conn)
    assert (
        scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE action = 'retention.verify_failed'")
        == 1
    )

    # The next run writes a new archive and drops the month.
    done = retention(conn, AHEAD)["datasets"][steps]
    assert done["errors"] == [] and done["rows_dropped"] == 2 and done["archived"] == 1
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
    assert conn.execute(
        "SELECT status, rows FROM lake.archives WHERE dataset = 'steps' ORDER BY id"
    ).fetchall() == [("failed", 2), ("dropped", 2)]


def test_erased_rows_do_not_survive_in_an_archive(conn: Conn, steps: str, db: str):
    old = OLDEST
    ingest(conn, steps, [old, f"{old} + interval '1 minute'"])
    conn.execute("SELECT lake.set_setting('lock_timeout', '50ms')")
    conn.execute("SELECT lake.set_setting('lock_attempts', '1')")
    with psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE user_data.steps IN ACCESS SHARE MODE")
        assert retention(conn, AHEAD)["datasets"][steps]["kept"]
    old_path = Path(scalar(conn, "SELECT path FROM lake.archives"))
    assert old_path.exists()
    conn.execute(f"DELETE FROM user_data.steps WHERE ts = {old}")  # erasure of a cold row
    ds = retention(conn, AHEAD)["datasets"][steps]
    assert ds["rows_dropped"] == 1 and ds["archived"] == 1
    assert not old_path.exists()
    assert conn.execute("SELECT status, rows FROM lake.archives ORDER BY id").fetchall() == [
        ("superseded", 2),
        ("dropped", 1),
    ]


def test_archives_are_purged_after_archive_retention(conn: Conn, steps: str):
    ingest(conn, steps, [f"{STRADDLING} - interval '20 days'"])
    retention(conn, AHEAD)
    path = Path(scalar(conn, "SELECT path FROM lake.archives"))
    assert path.exists()
    assert retention(conn, f"{AHEAD} + interval '6 years'")["purged"] == 0
    assert retention(conn, "now() + interval '7 years 1 day'")["purged"] == 1
    assert not path.exists() and not Path(str(path).replace(".jsonl.gz", ".manifest.json")).exists()
    assert conn.execute("SELECT status, purged_at IS NOT NULL FROM lake.archives").fetchall() == [
        ("purged", True)
    ]
    seal(conn)
    assert scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE action = 'archive.purge'") == 1
    with raises_lake("LK062"):
        conn.execute(f"SELECT lake.restore_partition('steps', {STRADDLING} - interval '20 days')")


def test_restore_refuses_a_damaged_archive(conn: Conn, steps: str):
    ingest(conn, steps, [f"{STRADDLING} - interval '20 days'"])
    retention(conn, AHEAD)
    path = Path(scalar(conn, "SELECT path FROM lake.archives"))
    path.write_bytes(b"not gzip")
    month = f"lake.month_start({STRADDLING} - interval '20 days')"
    with raises_lake("LK065", match="does not verify"):
        conn.execute(f"SELECT lake.restore_partition('steps', {month})")
    assert scalar(conn, f"SELECT partitions_from = {STRADDLING} FROM lake.datasets")
    assert scalar(conn, "SELECT status FROM lake.archives") == "dropped"


def test_settings_are_checked_audited_and_for_administrators(conn: Conn, as_role):
    assert scalar(conn, "SELECT value FROM lake.settings WHERE key = 'archive_retention'") == (
        "7 years"
    )
    for key, value in (
        ("nope", "1"),
        ("archive_dir", "relative/path"),
        ("archive_retention", "soon"),
        ("lock_attempts", "0"),
        ("tablespace_cold", "no_such_tablespace"),
    ):
        with raises_lake("LK060"):
            conn.execute("SELECT lake.set_setting(%s, %s)", [key, value])
    conn.execute("SELECT lake.set_setting('restore_hold', '2 days')")
    seal(conn)
    assert scalar(
        conn,
        "SELECT detail FROM lake.audit_log"
        " WHERE action = 'setting.set' AND object = 'restore_hold'",
    ) == {"old": "7 days", "new": "2 days"}
    admin = as_role(ADMIN_ROLE)
    assert scalar(admin, "SELECT count(*) FROM lake.settings") == 8
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT lake.set_setting('restore_hold', '1 day')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("CALL lake.apply_retention()")


def test_tiers_move_partitions_to_their_tablespace(
    conn: Conn, steps: str, admin_conn: Conn, settings: Settings
):
    name = "lake_test_cold_" + os.urandom(4).hex()
    path = Path(tempfile.mkdtemp(prefix="lake-ts-", dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    admin_conn.execute(
        sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
            sql.Identifier(name), sql.Literal(str(path))
        )
    )
    try:
        conn.execute(
            sql.SQL("GRANT CREATE ON TABLESPACE {} TO lake_owner").format(sql.Identifier(name))
        )
        conn.execute("SELECT lake.set_setting('tablespace_cold', %s)", [name])
        ingest(conn, steps, ["now() - interval '150 days'"])
        ds = retention(conn)["datasets"][steps]
        assert ds["errors"] == []
        cold = scalar(conn, "SELECT count(*) FROM lake.partition_tiers WHERE tier = 'cold'")
        assert ds["moved"] == cold > 0
        assert scalar(
            conn,
            "SELECT bool_and((tier = 'cold') = (tablespace = %s)) FROM lake.partitions"
            " WHERE kind = 'month'",
            [name],
        )
        # Indexes move along; the data is still there.
        assert scalar(
            conn,
            "SELECT bool_and(c.reltablespace = s.oid) FROM lake.partition_tiers t"
            " JOIN pg_index x"
            "   ON x.indrelid = format('user_data_partitions.%%I', t.partition)::regclass"
            " JOIN pg_class c ON c.oid = x.indexrelid, pg_tablespace s"
            " WHERE t.tier = 'cold' AND s.spcname = %s",
            [name],
        )
        assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
        assert retention(conn)["datasets"][steps]["moved"] == 0
    finally:
        # The tablespace can go only once the test's database (whose partitions use it) has.
        dbname = conn.info.dbname
        conn.close()
        drop_database(admin_conn, str(dbname))
        admin_conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))
        shutil.rmtree(path, ignore_errors=True)


def test_an_administrator_runs_retention_and_restores(conn: Conn, steps: str, as_role):
    ingest(conn, steps, [OLDEST])
    admin = as_role(ADMIN_ROLE)
    ds = retention(admin, AHEAD)["datasets"][steps]
    assert ds["errors"] == [] and ds["rows_dropped"] == 1 and ds["archived"] == 1
    assert scalar(admin, "SELECT count(*) FROM lake.archives WHERE status = 'dropped'") == 1
    month = f"lake.month_start({OLDEST})"
    assert scalar(admin, f"SELECT rows FROM lake.restore_partition('steps', {month})") == 1
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
    assert admin.execute(
        f"SELECT tier, tiered_at IS NOT NULL FROM lake.partitions WHERE range_from = {month}"
    ).fetchall() == [("cold", True)]


def test_cli_lists_archives_and_restores_a_month(conn: Conn, steps: str, db: str):
    from tests.test_cli import lake

    ingest(conn, steps, [OLDEST, f"{OLDEST} + interval '1 minute'"])
    retention(conn, AHEAD)
    month = scalar(conn, f"SELECT to_char({OLDEST}, 'YYYY-MM')")
    listing = lake("archives", dsn=db).stdout
    (line,) = [x for x in listing.splitlines() if month in x]
    # Tab-separated (stdout is a pipe): id, dataset, month, rows, size, status, created, path.
    cells = line.split("\t")
    assert (cells[1], cells[2], cells[3], cells[5]) == ("steps", month, "2", "dropped")
    bad = lake("restore", "steps", "2025-13", dsn=db, check=False)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stderr
    out = lake("restore", "steps", month, dsn=db).stdout
    assert f"restored steps {month}: 2 rows" in out
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 2
    again = lake("restore", "steps", month, dsn=db, check=False)
    assert again.returncode != 0 and "is in the lake" in again.stderr
    assert "restored (held until" in lake("archives", "steps", dsn=db).stdout


def test_an_archive_folder_it_cannot_write_drops_nothing(conn: Conn, steps: str, tmp_path: Path):
    # pytest's tmp_path is private to root: the server's OS user cannot create folders there.
    if os.geteuid() != 0:
        pytest.skip("needs a folder that the server's OS user cannot write")
    conn.execute("SELECT lake.set_setting('archive_dir', %s)", [str(tmp_path / "archive")])
    ingest(conn, steps, [OLDEST])
    first = scalar(conn, "SELECT partitions_from FROM lake.datasets")
    report = retention(conn, AHEAD)
    ds = report["datasets"][steps]
    (error,) = ds["errors"]
    assert error["step"] == "retention" and "Permission denied" in error["error"]
    assert report["errors"] == [{"dataset": steps, **error}]
    assert ds["dropped"] == 0 and ds["months"] == []
    assert scalar(conn, "SELECT partitions_from FROM lake.datasets") == first
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
    assert scalar(conn, "SELECT count(*) FROM lake.archives") == 0


def test_the_daily_job_runs_retention_and_records_it(conn: Conn, steps: str, db: str):
    ingest(conn, steps, [OLDEST, f"{STRADDLING} + interval '1 day'"])
    conn.execute(f"CALL lake.run_maintenance('retention', {AHEAD})")
    status, details = conn.execute(
        "SELECT status, details FROM lake.job_runs WHERE job = 'retention'"
    ).fetchone()  # type: ignore[misc]
    assert status == "ok" and details["datasets"][steps]["rows_dropped"] == 1
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
    # A month that could not be dropped makes the run failed, with the dataset named.
    conn.execute("SELECT lake.set_setting('lock_timeout', '50ms')")
    conn.execute("SELECT lake.set_setting('lock_attempts', '1')")
    with psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE user_data.steps IN ACCESS SHARE MODE")
        conn.execute(f"CALL lake.run_maintenance('retention', {AHEAD} + interval '1 month')")
    status, details = conn.execute(
        "SELECT status, details FROM lake.job_runs WHERE job = 'retention' ORDER BY id DESC"
    ).fetchone()  # type: ignore[misc]
    assert status == "failed" and details["errors"][0]["dataset"] == steps
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 1
