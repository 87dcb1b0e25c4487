"""Per-user quotas (issue 16): stored bytes, quarantined bytes and records an hour, per dataset
with lake-wide defaults, checked on every ingest path; a refusal is LK032, writes nothing and
leaves an audit entry that survives its rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import APP_ROLE, seal

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC)
DATASET = "location_history"


def doc(minutes_ago: int = 60, lat: float = 1.0) -> dict[str, object]:
    ts = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"ts": ts, "lat": lat, "lon": 2.0}


def counts(conn: Conn, dataset: str = DATASET) -> tuple[object, ...]:
    """What the lake holds of a dataset: stored rows, quarantine items, batches, inbox rows."""
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM user_data.{dataset}),"
        " (SELECT count(*) FROM lake.quarantine WHERE dataset = %s),"
        " (SELECT count(*) FROM lake.batches WHERE dataset = %s),"
        f" (SELECT count(*) FROM inbox.{dataset})",
        [dataset, dataset],
    ).fetchone()
    assert row is not None
    return row


def usage(conn: Conn, user: str, dataset: str = DATASET) -> tuple[int, int, int]:
    """A user's usage of a dataset: stored bytes, quarantined bytes, records this hour."""
    row = conn.execute(
        "SELECT coalesce(sum(stored_bytes), 0), coalesce(sum(quarantined_bytes), 0),"
        " coalesce(sum(hour_records) FILTER (WHERE hour = date_trunc('hour', now(), 'UTC')), 0)"
        " FROM lake.quota_usage WHERE dataset = %s AND user_id = %s",
        [dataset, user],
    ).fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1])), int(str(row[2]))


def refusals(conn: Conn) -> list[dict[str, object]]:
    """The quota refusals in the sealed audit chain (two seals: the first brings the spooled
    entries in, the second chains them), after checking the chain."""
    seal(conn)
    seal(conn)
    assert conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone() == (True,)
    rows = conn.execute(
        "SELECT object, lake_user, detail FROM lake.audit_log"
        " WHERE action = 'quota.refused' ORDER BY id"
    ).fetchall()
    out = []
    for dataset, lake_user, detail in rows:
        assert isinstance(detail, dict)
        # The spool file it came through, and the refused statement's transaction.
        assert str(detail.pop("spool")).endswith(".json")
        assert int(detail.pop("refused_xact")) > 0
        out.append({"dataset": dataset, "lake_user": lake_user, **detail})
    return out


# Each ingest path as the application role acting for a user: a function that sends `docs`.
def via_insert(app: Conn, docs: list[dict[str, object]]) -> None:
    values = ", ".join(["(%s, %s)"] * len(docs))
    app.execute(
        f"INSERT INTO user_data.{DATASET} (ts, doc) VALUES {values}",
        [v for d in docs for v in (d["ts"], Jsonb(d))],
    )


def via_copy(app: Conn, docs: list[dict[str, object]]) -> None:
    with app.cursor() as cur, cur.copy(f"COPY inbox.{DATASET} (ts, doc) FROM STDIN") as cp:
        for d in docs:
            cp.write_row((d["ts"], json.dumps(d)))


def begin_batch(app: Conn) -> uuid.UUID:
    batch = uuid.uuid4()
    app.execute("SELECT lake.begin_batch(%s, %s, NULL)", [DATASET, batch])
    return batch


def via_ingest(app: Conn, docs: list[dict[str, object]]) -> None:
    app.execute("SELECT lake.ingest(%s, %s)", [DATASET, Jsonb(docs)])


def via_ingest_raw(app: Conn, docs: list[dict[str, object]]) -> None:
    with app.transaction():
        batch = begin_batch(app)
        app.execute(
            "SELECT lake.ingest_raw(%s, %s, %s, %s)",
            [
                DATASET,
                batch,
                [f"line {i}" for i in range(len(docs))],
                [json.dumps(d).encode() for d in docs],
            ],
        )


PATHS: dict[str, Callable[[Conn, list[dict[str, object]]], None]] = {
    "insert": via_insert,
    "copy": via_copy,
    "ingest": via_ingest,
    "ingest_raw": via_ingest_raw,
}


@pytest.fixture(autouse=True)
def _not_across_an_hour() -> None:
    """Records are counted per clock hour (UTC): a test that straddled the hour would start
    counting afresh halfway. One starting less than a minute before the hour waits for it."""
    now = datetime.now(UTC)
    left = (
        now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now
    ).total_seconds()
    if left < 60:
        time.sleep(left + 1)


@pytest.fixture
def connect_app(db: str, location_dataset: str) -> Iterator[Callable[[str], Conn]]:
    """Connections (autocommit) as the application role, each acting for a lake user for its
    session (as tests/test_direct_writes.py makes them)."""
    opened: list[Conn] = []

    def connect(user: str) -> Conn:
        c = psycopg.connect(db, autocommit=True)
        opened.append(c)
        c.execute("SELECT lake.act_as(%s, 'session')", [user])
        c.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
        return c

    yield connect
    for c in opened:
        c.close()


def test_the_defaults_are_lake_settings(conn: Conn):
    rows = dict(
        conn.execute("SELECT key, value FROM lake.settings WHERE key LIKE 'quota\\_%'").fetchall()
    )
    assert rows == {
        "quota_stored_bytes": "10 GB",
        "quota_quarantined_bytes": "1 GB",
        "quota_records_per_hour": "10000000",
    }
    conn.execute("SELECT lake.set_setting('quota_stored_bytes', '500 MB')")
    for key, bad in (("quota_stored_bytes", "lots"), ("quota_records_per_hour", "0")):
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT lake.set_setting(%s, %s)", [key, bad])
        assert err.value.sqlstate == "LK060"


@pytest.mark.parametrize("path", sorted(PATHS))
def test_records_per_hour_refused_on_every_path(
    conn: Conn, connect_app: Callable[[str], Conn], path: str
):
    conn.execute("SELECT lake.set_quota(%s, records_per_hour => 5)", [DATASET])
    alice = connect_app("alice")
    PATHS[path](alice, [doc(i) for i in range(1, 4)])
    before = counts(conn)
    assert before[0] == 3
    with pytest.raises(psycopg.Error) as err:
        PATHS[path](alice, [doc(i) for i in range(10, 13)])
    assert err.value.sqlstate == "LK032"
    assert "records_per_hour" in str(err.value)
    assert "lake.set_quota" in (err.value.diag.message_hint or "")
    assert counts(conn) == before  # nothing of the refused statement, not even its batch
    assert usage(conn, "alice")[2] == 3
    assert refusals(conn) == [
        {
            "dataset": DATASET,
            "lake_user": "alice",
            "user_id": "alice",
            "quota": "records_per_hour",
            "used": 3,
            "adding": 3,
            "limit": 5,
        }
    ]
    # Under the quota, the same user goes on.
    PATHS[path](alice, [doc(20), doc(21)])
    assert counts(conn)[0] == 5


@pytest.mark.parametrize("path", sorted(PATHS))
def test_stored_bytes_refused_on_every_path(
    conn: Conn, connect_app: Callable[[str], Conn], path: str
):
    alice = connect_app("alice")
    PATHS[path](alice, [doc(1)])
    one = usage(conn, "alice")[0]
    assert one > 0
    conn.execute("SELECT lake.set_quota(%s, stored_bytes => %s)", [DATASET, 4 * one])
    PATHS[path](alice, [doc(2), doc(3)])
    before = counts(conn)
    with pytest.raises(psycopg.Error) as err:
        PATHS[path](alice, [doc(4), doc(5)])
    assert err.value.sqlstate == "LK032"
    assert "stored_bytes" in str(err.value)
    assert counts(conn) == before
    assert usage(conn, "alice")[0] == 3 * one
    (entry,) = refusals(conn)
    assert (entry["quota"], entry["used"], entry["adding"], entry["limit"]) == (
        "stored_bytes",
        3 * one,
        2 * one,
        4 * one,
    )
    # Deleting records frees their bytes: the user may store again.
    conn.execute(
        f"DELETE FROM user_data.{DATASET} WHERE ts < (SELECT max(ts) FROM user_data.{DATASET})"
    )
    assert usage(conn, "alice")[0] == one
    PATHS[path](alice, [doc(4), doc(5)])
    assert usage(conn, "alice")[0] == 3 * one


@pytest.mark.parametrize("path", sorted(PATHS))
def test_quarantined_bytes_refused_on_every_path(
    conn: Conn, connect_app: Callable[[str], Conn], path: str
):
    conn.execute("SELECT lake.set_quota(%s, quarantined_bytes => 2000)", [DATASET])
    alice = connect_app("alice")
    bad = {**doc(), "device": "x" * 700}  # longer than the schema's maxLength 64
    PATHS[path](alice, [doc(1), bad])
    before = counts(conn)
    assert before[:2] == (1, 1)
    held = usage(conn, "alice")[1]
    assert 700 < held < 1000
    with pytest.raises(psycopg.Error) as err:
        PATHS[path](alice, [doc(2), bad, bad])
    assert err.value.sqlstate == "LK032"
    assert "quarantined_bytes" in str(err.value)
    assert counts(conn) == before  # not even the valid record of the refused statement
    assert usage(conn, "alice")[1] == held
    (entry,) = refusals(conn)
    assert (entry["quota"], entry["used"], entry["limit"]) == ("quarantined_bytes", held, 2000)


def test_raw_bytes_count_against_the_quarantine(conn: Conn, connect_app: Callable[[str], Conn]):
    """Records that never parsed are kept as raw bytes: a flood of them is what filled the disk."""
    conn.execute("SELECT lake.set_quota(%s, quarantined_bytes => 100000)", [DATASET])
    alice = connect_app("alice")
    junk = [{"not json": "y" * 30000}]  # sent as bytes that are no JSON at all below
    with alice.transaction():
        batch = begin_batch(alice)
        alice.execute(
            "SELECT lake.ingest_raw(%s, %s, ARRAY['line 1', 'line 2', 'line 3'], %s)",
            [DATASET, batch, [b"{" + json.dumps(junk).encode()] * 3],
        )
    assert usage(conn, "alice")[1] > 90000
    with pytest.raises(psycopg.Error) as err, alice.transaction():
        batch = begin_batch(alice)
        alice.execute(
            "SELECT lake.ingest_raw(%s, %s, ARRAY['line 1'], %s)",
            [DATASET, batch, [b"{" + json.dumps(junk).encode()]],
        )
    assert err.value.sqlstate == "LK032"
    assert counts(conn)[1] == 3


def test_a_release_from_quarantine_is_checked(conn: Conn, connect_app: Callable[[str], Conn]):
    alice = connect_app("alice")
    via_ingest(alice, [doc(1), doc(2, lat=95)])
    (item,) = conn.execute("SELECT id FROM lake.quarantine").fetchone()  # type: ignore[misc]
    one = usage(conn, "alice")[0]
    conn.execute("SELECT lake.set_quota(%s, stored_bytes => %s)", [DATASET, one + 10])
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.quarantine_release(%s, %s)", [item, Jsonb(doc(2))])
    assert err.value.sqlstate == "LK032"
    assert conn.execute("SELECT status FROM lake.quarantine").fetchone() == ("pending",)
    assert counts(conn)[0] == 1
    conn.execute("SELECT lake.set_quota(%s, stored_bytes => %s)", [DATASET, 10 * one])
    conn.execute("SELECT lake.quarantine_release(%s, %s)", [item, Jsonb(doc(2))])
    assert counts(conn)[0] == 2


def test_the_dataset_quota_beats_the_default(conn: Conn, connect_app: Callable[[str], Conn]):
    from tests.conftest import LOCATION_SCHEMA

    conn.execute("SELECT lake.create_dataset('other_places', %s)", [Jsonb(LOCATION_SCHEMA)])
    conn.execute("SELECT lake.set_setting('quota_records_per_hour', '2')")
    conn.execute("SELECT lake.set_quota(%s, records_per_hour => 10)", [DATASET])
    alice = connect_app("alice")
    via_ingest(alice, [doc(i) for i in range(1, 6)])  # 5 > 2, but the dataset allows 10
    assert counts(conn)[0] == 5
    with pytest.raises(psycopg.Error) as err:
        alice.execute("SELECT lake.ingest('other_places', %s)", [Jsonb([doc(1), doc(2), doc(3)])])
    assert err.value.sqlstate == "LK032"
    # reset => true returns the dataset to the default.
    conn.execute("SELECT lake.set_quota(%s, reset => true)", [DATASET])
    assert conn.execute(
        "SELECT stored_bytes, quarantined_bytes, records_per_hour FROM lake.quotas"
    ).fetchall() == [(None, None, None)]
    with pytest.raises(psycopg.Error) as err:
        via_ingest(alice, [doc(7)])
    assert err.value.sqlstate == "LK032"
    # Setting a quota is audited; a quota must be positive and the dataset must exist.
    seal(conn)
    assert conn.execute(
        "SELECT count(*) FROM lake.audit_log WHERE action = 'quota.set'"
    ).fetchone() == (2,)
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.set_quota(%s, stored_bytes => 0)", [DATASET])
    assert err.value.sqlstate == "LK005"
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.set_quota('nope', stored_bytes => 1)")
    assert err.value.sqlstate == "LK003"


def test_another_users_usage_does_not_count(conn: Conn, connect_app: Callable[[str], Conn]):
    conn.execute("SELECT lake.set_quota(%s, records_per_hour => 4)", [DATASET])
    bob, alice = connect_app("bob"), connect_app("alice")
    via_copy(bob, [doc(i) for i in range(1, 5)])
    with pytest.raises(psycopg.Error) as err:
        via_copy(bob, [doc(5)])
    assert err.value.sqlstate == "LK032"
    via_copy(alice, [doc(i) for i in range(1, 5)])
    assert usage(conn, "alice")[2] == 4
    assert usage(conn, "bob")[2] == 4
    assert counts(conn)[0] == 8


def test_under_the_defaults_usage_is_counted_and_nothing_refused(
    conn: Conn, connect_app: Callable[[str], Conn]
):
    alice = connect_app("alice")
    for path in PATHS.values():
        path(alice, [doc(1), doc(2), doc(3, lat=95)])
    stored, quarantined, records = usage(conn, "alice")
    assert records == 12
    assert counts(conn)[:2] == (8, 4)
    assert (stored, quarantined) == conn.execute(
        f"SELECT (SELECT sum(pg_column_size(doc)) FROM user_data.{DATASET}),"
        " (SELECT sum(pg_column_size(doc)) FROM lake.quarantine)"
    ).fetchone()
    assert refusals(conn) == []
    # A recount from the tables finds the same; a month gone without DELETE is set right by it.
    assert conn.execute("SELECT * FROM lake.quota_recount(%s)", [DATASET]).fetchall() == [
        ("alice", stored, quarantined)
    ]
    conn.execute(f"TRUNCATE user_data.{DATASET}")
    assert conn.execute("SELECT * FROM lake.quota_recount(%s)", [DATASET]).fetchall() == [
        ("alice", 0, quarantined)
    ]
    assert usage(conn, "alice") == (0, quarantined, 12)


RSS_SCRIPT = """
import resource, sys
from lake_client import cli
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.argv = ["lake", "ingest", sys.argv[1], sys.argv[2], "--user", "alice"]
try:
    cli.main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_large_record_is_streamed_not_copied(db: str, conn: Conn, tmp_path: Path):
    """`lake ingest` of one record over the size limit (quarantined with its raw bytes) holds it
    about twice at most (reading a line joins its blocks: 2.4 times measured), not 7.5 times as
    when it went as hex text in an array parameter. Memory, not time: a subprocess's peak RSS."""
    conn.execute("SELECT lake.create_dataset('blobs', '{\"type\": \"object\"}')")
    size = 32 << 20
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"ts": "%s", "blob": "' % doc()["ts"].encode() + b"x" * size + b'"}\n')
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, "blobs", str(big)],
        env={**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    before_kb, peak_kb = map(int, proc.stdout.split()[-2:])
    assert conn.execute(
        "SELECT octet_length(raw), reasons->0->>'rule' FROM lake.quarantine WHERE dataset = 'blobs'"
    ).fetchall() == [(big.stat().st_size - 1, "too_large")]
    assert (peak_kb - before_kb) * 1024 < 4 * size
