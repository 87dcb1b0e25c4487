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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from lake_client.config import Settings
from tests.conftest import ADMIN_ROLE, APP_ROLE, drop_database, seal

Conn = psycopg.Connection[tuple[object, ...]]

SCHEMA = {
    "type": "object",
    "required": ["ts", "n"],
    "properties": {"ts": {"type": "string"}, "n": {"type": "integer"}},
}


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


def test_tiers_are_recorded_and_cold_months_take_records(conn: Conn, steps: str, as_role):
    old, recent = "now() - interval '150 days'", "now() - interval '1 hour'"
    assert ingest(conn, steps, [old, recent]) == (2, 2, 0)
    assert scalar(conn, "SELECT count(*) FROM lake.partitions WHERE tiered_at IS NOT NULL") == 0

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
    # The view shows what was recorded; no partition carries a write ban.
    assert scalar(
        conn,
        "SELECT bool_and(p.tier = t.tier AND p.tiered_at IS NOT NULL)"
        " FROM lake.partitions p JOIN lake.partition_tiers t ON t.partition = p.partition",
    )
    assert scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'cold_reject'") == 0

    # A cold month is where data lives, not a ban: every ingest path stores its records there.
    assert ingest(conn, steps, [old, recent]) == (2, 2, 0)
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
    assert scalar(conn, "SELECT count(*) FROM lake.quarantine") == 0
    assert conn.execute(
        "SELECT source, sum(received), sum(accepted), sum(archived), sum(quarantined)"
        " FROM lake.batches GROUP BY source ORDER BY source"
    ).fetchall() == [("insert", 3, 3, 0, 0), ("sql", 4, 4, 0, 0)]
    part = scalar(conn, f"SELECT lake_internal._partition_name('steps', {old})")
    assert scalar(conn, f"SELECT count(*) FROM user_data_partitions.{part}") == 4

    # Updates and deletes in a cold month work like anywhere else.
    assert (
        app.execute(
            "UPDATE user_data.steps SET doc = doc || '{\"n\": 9}'"
            " WHERE ts < now() - interval '1 day'"
        ).rowcount
        == 4
    )
    assert (
        app.execute("DELETE FROM user_data.steps WHERE ts < now() - interval '1 day'").rowcount == 4
    )
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3


def _history(days: int) -> list[dict[str, Any]]:
    """One record a day for `days` days back, every 50th with a personal e-mail address."""
    now = datetime.now(UTC)
    return [
        {
            "ts": (now - timedelta(days=d, hours=1)).isoformat().replace("+00:00", "Z"),
            "n": d,
            **({"email": f"p{d}@example.com"} if d % 50 == 0 else {}),
        }
        for d in range(days)
    ]


def test_a_year_of_history_is_stored_or_archived_never_refused(
    conn: Conn, steps: str, archive_dir: Path, lake: Lake
):
    """After the tiering step, 430 days of history go in through lake.ingest, the COPY client
    and plain INSERT: nothing is quarantined for its age; records in cold months are stored;
    records older than the first month in the lake land in verified month archives (appended
    to by every batch), are counted as archived, and come back row for row with
    restore_partition."""
    conn.execute("SELECT lake.create_user('bob')")
    conn.execute("SELECT lake.create_user('carol')")
    assert retention(conn)["datasets"][steps]["errors"] == []
    first = scalar(conn, "SELECT partitions_from FROM lake.datasets")
    docs = _history(430)  # well over a year: a month or two before the lake's first month
    old = [d for d in docs if datetime.fromisoformat(d["ts"]) < first]
    assert 30 <= len(old) <= 70

    # lake.ingest (alice), the COPY client in batches of 150 (bob), plain INSERT (carol).
    row = conn.execute(
        "SELECT received, accepted, archived, quarantined"
        " FROM lake.ingest('steps', %s, NULL, 'alice')",
        [Jsonb(docs)],
    ).fetchone()
    assert row == (430, 430 - len(old), len(old), 0)
    lake.act_as("bob")
    summary = lake.ingest(steps, docs, batch_size=150)
    assert (summary.received, summary.accepted, summary.archived, summary.quarantined) == (
        430,
        430 - len(old),
        len(old),
        0,
    )
    assert [b.received == b.accepted + b.archived + b.quarantined for b in summary.batches] == [
        True
    ] * 3
    with conn.transaction():
        conn.execute("SELECT lake.act_as('carol')")
        conn.execute(
            "INSERT INTO user_data.steps (ts, doc)"
            " SELECT (d ->> 'ts')::timestamptz, d FROM jsonb_array_elements(%s) AS d",
            [Jsonb(docs)],
        )
    assert conn.execute(
        "SELECT source, sum(received), sum(accepted), sum(archived), sum(quarantined)"
        " FROM lake.batches GROUP BY source ORDER BY source"
    ).fetchall() == [
        ("client", 430, 430 - len(old), len(old), 0),
        ("insert", 430, 430 - len(old), len(old), 0),
        ("sql", 430, 430 - len(old), len(old), 0),
    ]
    assert scalar(conn, "SELECT count(*) FROM lake.quarantine") == 0

    # Cold months hold their records, like every month in the lake.
    assert scalar(conn, "SELECT count(*) FROM user_data.steps") == 3 * (430 - len(old))
    cold = scalar(
        conn,
        "SELECT count(*) FROM user_data.steps AS s JOIN lake.partition_tiers AS t"
        " ON t.dataset = 'steps' AND t.month = lake.month_start(s.ts) WHERE t.tier = 'cold'",
    )
    assert cold > 3 * 200

    # One verified archive per older month holds all three users' records of that month; the
    # archives each batch replaced are superseded, and the purge deletes their files.
    per_month: dict[str, int] = {}
    for d in old:
        per_month[d["ts"][:7]] = per_month.get(d["ts"][:7], 0) + 3
    assert len(per_month) >= 2
    live = conn.execute(
        "SELECT to_char(month AT TIME ZONE 'UTC', 'YYYY-MM'), rows, sha256, path"
        " FROM lake.archives WHERE status = 'dropped' ORDER BY month"
    ).fetchall()
    assert {m: n for m, n, _, _ in live} == per_month
    for _, n, sha, path in live:
        content = gzip.decompress(Path(str(path)).read_bytes())
        assert hashlib.sha256(content).hexdigest() == sha and content.count(b"\n") == n
    superseded = [
        Path(str(p))
        for (p,) in conn.execute("SELECT path FROM lake.archives WHERE status = 'superseded'")
    ]
    assert len(superseded) >= len(per_month) * 2 and all(p.exists() for p in superseded)
    conn.execute("SELECT lake.purge_archives()")
    assert not any(p.exists() for p in superseded)
    assert all(Path(str(p)).exists() for _, _, _, p in live)

    # Back with restore_partition, newest month first (the run extends backwards): row for row.
    for month in sorted(per_month, reverse=True):
        conn.execute("SELECT lake.restore_partition('steps', %s)", [month + "-01T00:00:00Z"])
    restored = conn.execute(
        "SELECT user_id, ts, doc FROM user_data.steps WHERE ts < %s ORDER BY user_id, ts",
        [first],
    ).fetchall()
    expected = sorted(
        (user, datetime.fromisoformat(d["ts"]), d["n"], d.get("email"))
        for user in ("alice", "bob", "carol")
        for d in old
    )
    assert [(u, t, doc["n"], doc.get("email")) for u, t, doc in restored] == [  # type: ignore[index, union-attr]
        (u, t, n, e and e[0] + "***@example.com") for u, t, n, e in expected
    ]
    # Sealed personal data came along: the owner's clear values are readable again.
    conn.execute("SELECT lake.act_as('alice')")
    revealed = conn.execute(
        "SELECT r.doc ->> 'email' FROM lake.pii_reveal('steps', ARRAY(SELECT id FROM"
        " user_data.steps WHERE user_id = 'alice' AND ts < %s AND doc ? 'email')) AS r",
        [first],
    ).fetchall()
    assert sorted(e for (e,) in revealed) == sorted(str(d["email"]) for d in old if "email" in d)
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM lake.batches WHERE received <> accepted + archived + quarantined",
        )
        == 0
    )


def test_a_rolled_back_batch_leaves_its_month_archive_as_it_was(
    conn: Conn, steps: str, archive_dir: Path
):
    """Archiving happens in the batch's transaction: rolled back, the month's archive in force
    is the one before, and the new file is an orphan that the purge finds."""
    docs = _history(430)[-5:]
    conn.execute("SELECT lake.ingest('steps', %s, NULL, 'alice')", [Jsonb(docs)])
    before = conn.execute("SELECT id, path, rows FROM lake.archives").fetchall()
    assert len(before) >= 1 and sum(int(str(r[2])) for r in before) == 5
    with pytest.raises(psycopg.errors.QueryCanceled), conn.transaction():
        conn.execute("SELECT lake.ingest('steps', %s, NULL, 'alice')", [Jsonb(docs)])
        conn.execute("SET LOCAL statement_timeout = 1")
        conn.execute("SELECT pg_sleep(1)")
    assert conn.execute("SELECT id, path, rows FROM lake.archives").fetchall() == before
    files = {str(p) for p in archive_dir.rglob("*.jsonl.gz")}
    orphans = files - {str(r[1]) for r in before}
    assert len(orphans) == len(before)  # one new file per month, registered nowhere
    found = conn.execute(
        "SELECT lake_internal._archive_orphans(%s, ARRAY(SELECT unnest(ARRAY[path, manifest_path])"
        " FROM lake.archives), now() + interval '1 minute')",
        [str(archive_dir)],
    ).fetchall()
    assert {f for (f,) in found if str(f).endswith(".jsonl.gz")} == orphans
    # The purge leaves files younger than a day (a running transaction may yet register one).
    conn.execute("SELECT lake.purge_archives()")
    assert {str(p) for p in archive_dir.rglob("*.jsonl.gz")} == files
    assert scalar(conn, "SELECT lake.restore_partition('steps', %s)", [docs[0]["ts"]])


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
    assert conn.execute(
        "SELECT status, count FROM lake.op_duration_histogram WHERE operation = 'restore'"
    ).fetchall() == [("ok", 1)]
    # The month between comes back empty (its archive stays as it is); the run is contiguous.
    assert scalar(conn, "SELECT partitions_from FROM lake.datasets") == oldest
    assert conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall() == [before[2]]
    # It takes records meanwhile; restoring it merges them with its archive's rows.
    assert ingest(conn, steps, [old[0]]) == (1, 1, 0)
    meanwhile = conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} AND id <> %s ORDER BY id",
        [before[2][0]],
    ).fetchall()
    assert len(meanwhile) == 1
    conn.execute(f"SELECT lake.restore_partition('steps', lake.month_start({old[0]}), {AHEAD})")
    after = conn.execute(
        f"SELECT * FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall()
    # ids, owners, times, documents, batches, ingest times, sealed PII
    assert after == sorted([*before, *meanwhile], key=lambda r: int(str(r[0])))
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'restored'") == 2
    # A restored month is in the lake: it takes records like any month.
    assert ingest(conn, steps, [old[0]]) == (1, 1, 0)
    with raises_lake("LK064"):
        conn.execute("SELECT lake.restore_partition('steps', %s)", [oldest])

    # Held for restore_hold (7 days) after the restore's "now", then archived again: the
    # oldest month's archive still equals the partition, so it is reused, not written anew;
    # the other month received records, so it is archived anew, with them.
    held = retention(conn, AHEAD)["datasets"][steps]
    assert held["dropped"] == 0 and held["kept"][0]["action"] == "held"
    assert scalar(conn, f"SELECT count(*) FROM user_data.steps WHERE ts < {STRADDLING}") == 5
    later = retention(conn, f"{AHEAD} + interval '8 days'")["datasets"][steps]
    assert later["errors"] == [] and later["archived"] == 1
    assert [m["archive"] for m in later["months"]][:2] == ["reused", "written"]
    assert conn.execute("SELECT status, rows FROM lake.archives ORDER BY id").fetchall() == [
        ("dropped", 1),
        ("superseded", 2),
        ("dropped", 4),
    ]


def test_a_month_that_came_back_empty_keeps_its_records_until_restored(conn: Conn, steps: str):
    """A month that came back empty beside a restored one and took records has two halves: its
    archive and the records. Retention does not archive the records alone (a restore would then
    miss the older archive); restoring the month merges both, row for row."""
    old = [f"{STRADDLING} - interval '20 days'", f"{STRADDLING} - interval '40 days'"]
    assert ingest(conn, steps, [*old, "now()"]) == (3, 3, 0)
    assert retention(conn, AHEAD)["datasets"][steps]["archived"] == 2
    conn.execute(f"SELECT lake.restore_partition('steps', lake.month_start({old[1]}), {AHEAD})")
    assert ingest(conn, steps, [old[0]]) == (1, 1, 0)  # into the month that came back empty

    report = retention(conn, f"{AHEAD} + interval '8 days'")
    ds = report["datasets"][steps]
    assert [(m["action"], m.get("archive")) for m in ds["months"]] == [
        ("dropped", "reused"),  # the restored month, again
        ("failed", None),
    ]
    assert [(e["action"], "restore it" in e["error"]) for e in ds["errors"]] == [("failed", True)]
    assert report["errors"] != []
    assert scalar(conn, f"SELECT count(*) FROM user_data.steps WHERE ts < {STRADDLING}") == 1

    month = scalar(conn, f"SELECT lake.month_start({old[0]})")
    restored = conn.execute(
        "SELECT status, rows FROM lake.restore_partition('steps', %s)", [month]
    ).fetchone()
    assert restored == ("restored", 1)  # the archive's row; the record stored since stays too
    assert conn.execute(
        f"SELECT doc ->> 'n' FROM user_data.steps WHERE ts < {STRADDLING} ORDER BY id"
    ).fetchall() == [("0",), ("0",)]
    again = retention(conn, f"{AHEAD} + interval '16 days'")["datasets"][steps]
    assert again["errors"] == [] and [m["archive"] for m in again["months"]] == ["written"]
    assert (
        scalar(
            conn, "SELECT rows FROM lake.archives WHERE month = %s AND status = 'dropped'", [month]
        )
        == 2
    )


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
    # Both the archive step and the run recorded their durations as errors.
    errors = (
        "SELECT count FROM lake.op_duration_histogram WHERE operation = %s AND status = 'error'"
    )
    assert conn.execute(errors, ["archive"]).fetchall() == [(1,)]
    assert conn.execute(errors, ["retention"]).fetchone() is not None

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
    assert scalar(admin, "SELECT count(*) FROM lake.settings") == 18  # and figure_history
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
        # Writing into the cold tablespace works: a record of that month is stored there.
        assert ingest(conn, steps, ["now() - interval '150 days'"]) == (1, 1, 0)
        part = scalar(
            conn, "SELECT lake_internal._partition_name('steps', now() - interval '150 days')"
        )
        assert scalar(conn, f"SELECT count(*) FROM user_data_partitions.{part}") == 2
        assert (
            scalar(conn, "SELECT tablespace FROM lake.partitions WHERE partition = %s", [part])
            == name
        )
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
