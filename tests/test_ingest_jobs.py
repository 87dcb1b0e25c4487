"""`lake ingest` on parallel sessions, run as a user would run it: the same stored contents and
batch ids whatever --jobs, a re-run stores nothing new, a failing batch or Ctrl-C stops every
session with each batch stored whole or not at all and the report true to what is stored."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from lake_client import loader
from lake_client.demo import SCHEMA
from lake_client.records import scan, sources
from tests.test_cli import interrupt_held_ingest, lake, records

Conn = psycopg.Connection[tuple[object, ...]]
BATCH = 100


@pytest.fixture
def dataset(db: str, tmp_path: Path) -> str:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    lake("create-dataset", "location_history", str(schema), "-o", "retention=12 months", dsn=db)
    return "location_history"


def jsonl(recs: list[dict[str, object]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in recs)


def batch_positions(path: Path, dataset: str, n_batches: int) -> dict[uuid.UUID, int]:
    """The id of each batch of the file as `lake ingest --user alice --batch-size BATCH` makes
    it, and the input position of its first record."""
    sha256 = scan(sources(str(path))[0]).sha256
    ns = loader.namespace(dataset, "alice", BATCH, sha256)
    return {uuid.uuid5(ns, str(i)): i * BATCH + 1 for i in range(n_batches)}


def contents(conn: Conn, dataset: str) -> dict[str, object]:
    """What a load stored, apart from row ids and batch ids (which name the dataset)."""
    rows = conn.execute(
        f"SELECT user_id, ts, doc::text FROM user_data.{dataset} ORDER BY 1, 2, 3"
    ).fetchall()
    quarantined = conn.execute(
        "SELECT record_ref, user_id, ts, doc::text, raw, reasons::text FROM lake.quarantine"
        " WHERE dataset = %s ORDER BY 1",
        [dataset],
    ).fetchall()
    totals = conn.execute(
        "SELECT count(*), sum(received), sum(accepted), sum(quarantined), sum(archived)"
        " FROM lake.batches WHERE dataset = %s",
        [dataset],
    ).fetchone()
    return {"rows": rows, "quarantine": quarantined, "totals": totals}


def stored_batches(conn: Conn, dataset: str) -> dict[uuid.UUID, tuple[int, int, int]]:
    """Each committed batch: (received, rows stored with its id, quarantine entries), so that
    a batch stored in part would show."""
    rows = conn.execute(
        f"SELECT b.id, b.received,"
        f" (SELECT count(*) FROM user_data.{dataset} d WHERE d.batch_id = b.id),"
        f" (SELECT count(*) FROM lake.quarantine q WHERE q.batch_id = b.id)"
        f" FROM lake.batches b WHERE b.dataset = %s",
        [dataset],
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def runs(firsts: list[int], total: int) -> str:
    """The record runs of batches starting at `firsts` as the CLI reports them."""
    out: list[list[int]] = []
    for first in sorted(firsts):
        last = min(first + BATCH - 1, total)
        if out and first == out[-1][1] + 1:
            out[-1][1] = last
        else:
            out.append([first, last])
    parts = [f"{a:,} to {z:,}" for a, z in out]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def test_any_number_of_jobs_stores_the_same_and_a_rerun_stores_nothing_new(
    db: str, dataset: str, conn: Conn, tmp_path: Path
):
    schema = tmp_path / "schema.json"
    lake("create-dataset", "twin", str(schema), "-o", "retention=12 months", dsn=db)
    path = tmp_path / "points.jsonl"
    path.write_bytes(jsonl(records(2_050, bad_every=7)))  # 21 batches, the last one short
    args = ["--user", "alice", "--batch-size", str(BATCH), "--json"]

    one = json.loads(lake("ingest", dataset, str(path), *args, "--jobs", "1", dsn=db).stdout)
    three = json.loads(lake("ingest", "twin", str(path), *args, "--jobs", "3", dsn=db).stdout)
    assert one["sources"][0]["jobs"] == 1 and three["sources"][0]["jobs"] == 3
    for doc in (one, three):
        assert doc["received"] == 2_050
        assert doc["received"] == doc["accepted"] + doc["archived"] + doc["quarantined"]
        assert doc["quarantined"] == len(range(0, 2_050, 7))
        assert doc["sources"][0]["batches"] == 21
    assert contents(conn, dataset) == contents(conn, "twin")
    # The batch ids follow from the content and the batch's place, whatever the sessions.
    for name in (dataset, "twin"):
        assert set(stored_batches(conn, name)) == set(batch_positions(path, name, 21))

    # Loaded again with other --jobs: every batch is recognised, nothing is stored twice.
    before = contents(conn, dataset)
    again = json.loads(lake("ingest", dataset, str(path), *args, "--jobs", "3", dsn=db).stdout)
    assert again["sources"][0]["batches_skipped"] == 21
    assert (again["received"], again["accepted"]) == (one["received"], one["accepted"])
    assert contents(conn, dataset) == before


def test_the_default_is_one_session_per_server_core(db: str, dataset: str, conn: Conn, tmp_path):
    cores = conn.execute("SELECT lake.server_cores()").fetchone()[0]
    # The server runs on this machine in the tests: it may use some of its cores, not more.
    assert 1 <= cores <= (os.cpu_count() or 1)
    path = tmp_path / "points.jsonl"
    path.write_bytes(jsonl(records(500)))
    args = ["--user", "alice", "--batch-size", str(BATCH), "--json"]
    doc = json.loads(lake("ingest", dataset, str(path), *args, dsn=db).stdout)
    assert doc["sources"][0]["jobs"] == cores
    # One batch needs one session.
    small = tmp_path / "small.jsonl"
    small.write_bytes(jsonl(records(20)))
    doc = json.loads(lake("ingest", dataset, str(small), *args, dsn=db).stdout)
    assert doc["sources"][0]["jobs"] == 1


@pytest.fixture
def failing_marker(conn: Conn, dataset: str):
    """A fault of the database for one record: a trigger on the dataset's inbox that fails the
    statement that sends a record with "boom" in it (no retry can help)."""
    conn.execute(
        "CREATE FUNCTION public.fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.doc ? 'boom' THEN RAISE EXCEPTION 'a test fault: boom'; END IF;"
        " RETURN NEW; END $$"
    )
    conn.execute(
        f"CREATE TRIGGER fail_on_boom BEFORE INSERT ON inbox.{dataset}"
        " FOR EACH ROW EXECUTE FUNCTION public.fail_on_boom()"
    )


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_a_failing_batch_stops_every_session_and_the_report_is_true(
    db: str, dataset: str, conn: Conn, tmp_path: Path, failing_marker: None, jobs: str
):
    recs = records(2_000, bad_every=1_000)
    recs[1_234]["boom"] = True  # in batch 13 of 20
    path = tmp_path / "points.jsonl"
    path.write_bytes(jsonl(recs))
    args = ["--user", "alice", "--batch-size", str(BATCH), "--jobs", jobs]
    out = lake("ingest", dataset, str(path), *args, dsn=db, check=False)

    assert out.returncode == 1, out.stderr
    assert "error: a test fault: boom" in out.stderr
    assert "Traceback" not in out.stderr
    positions = batch_positions(path, dataset, 20)
    stored = stored_batches(conn, dataset)
    failing = next(b for b, first in positions.items() if first == 1_201)
    assert failing not in stored
    # Each batch is stored whole: all its records, as rows or quarantine entries.
    assert all(
        received == BATCH == rows + quarantined for received, rows, quarantined in stored.values()
    )
    # The report names exactly the batches that are stored, by their records.
    if stored:
        firsts = [positions[b] for b in stored]
        assert "stopped by the error below; stored so far:" in out.stderr
        assert f"points.jsonl: {len(stored)} batch(es), records {runs(firsts, 2_000)}" in out.stderr
    else:
        assert "stopped by the error below: nothing was stored" in out.stderr
    if jobs == "1":  # one session stops at the failing batch: the 12 before it are stored
        assert sorted(positions[b] for b in stored) == list(range(1, 1_201, BATCH))


def test_ctrl_c_stops_every_session_and_says_what_was_stored(
    db: str, dataset: str, conn: Conn, tmp_path: Path
):
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(records(5_000, bad_every=5_000)))
    argv = [sys.executable, "-m", "lake_client.cli", "ingest", dataset, str(path)]
    argv += ["--user", "alice", "--batch-size", str(BATCH), "--jobs", "3"]
    returncode, stderr = interrupt_held_ingest(db, conn, argv)
    assert returncode == 130, stderr
    text = stderr.decode()
    assert "Traceback" not in text
    positions = batch_positions(path, dataset, 50)
    stored = stored_batches(conn, dataset)
    assert stored and len(stored) < 50
    assert all(received == BATCH == rows + q for received, rows, q in stored.values())
    firsts = [positions[b] for b in stored]
    assert f"big.jsonl: {len(stored)} batch(es), records {runs(firsts, 5_000)}" in text
    assert "run the same command again" in text
    again = lake(*argv[3:], "--json", dsn=db)
    doc = json.loads(again.stdout)
    assert doc["sources"][0]["batches_skipped"] == len(stored)
    assert doc["received"] == 5_000 and len(stored_batches(conn, dataset)) == 50


@pytest.mark.fast
def test_the_report_gives_the_stored_records_as_runs():
    """Sessions commit batches out of order: the report names the runs of stored records."""
    from lake_client.client import BatchResult
    from lake_client.render import _runs

    def batch(first: int, n: int = BATCH) -> BatchResult:
        return BatchResult(uuid.uuid4(), n, n, 0, first=first)

    assert _runs([batch(101), batch(1)]) == "1 to 200"
    assert _runs([batch(301), batch(1), batch(101, 50)]) == "1 to 150 and 301 to 400"
    assert _runs([batch(501), batch(1), batch(201)]) == "1 to 100, 201 to 300 and 501 to 600"
