"""The `lake` command line, run as a user would run it."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import signal
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from lake_client.demo import SCHEMA

NOW = datetime.now(UTC)


def lake(*args: str, dsn: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKE_DSN": dsn, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def records(n: int, bad_every: int = 10) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        ts = (NOW - timedelta(minutes=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({"ts": ts, "lat": 120.0 if i % bad_every == 0 else 12.5, "lon": 3.25})
    return out


@pytest.fixture
def dataset(db: str, tmp_path: Path) -> str:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = lake(
        "create-dataset", "location_history", str(schema), "-o", "retention=12 months", dsn=db
    )
    assert "created user_data.location_history" in out.stdout
    return "location_history"


@pytest.mark.fast
def test_help_explains_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    for command in ("up", "down", "status", "migrate", "ingest", "quarantine", "demo", "psql"):
        assert command in out
    ingest = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "ingest", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "JSON Lines" in ingest and "--format" in ingest and "--user" in ingest


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_ingest_formats(db: str, dataset: str, tmp_path: Path, fmt: str):
    recs = records(50)
    path = tmp_path / f"points.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    elif fmt == "json":
        path.write_text(json.dumps(recs, indent=2))
    else:
        path.write_text(
            "ts,lat,lon\n" + "".join(f"{r['ts']},{r['lat']},{r['lon']}\n" for r in recs)
        )
    out = lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    assert "received 50, accepted 45, quarantined 5" in out.stdout
    assert "maximum" in out.stdout  # the top reason is shown
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*), min(user_id) FROM user_data.location_history"
        ).fetchone() == (45, "alice")


def test_same_file_twice_is_not_stored_twice(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "points.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records(30)))
    lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    again = lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    assert "nothing new: 1 batch(es) were already stored" in again.stdout
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (27,)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02 not json at all", "is not JSON"),
        (b'[{"ts": 1}, {"ts": 2}', "not closed"),
        (b"[1, 2] trailing", "after the end"),
    ],
)
def test_unreadable_files_give_clear_errors(
    db: str, dataset: str, tmp_path: Path, content: bytes, message: str
):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    out = lake("ingest", dataset, str(path), "--user", "alice", dsn=db, check=False)
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_errors_say_what_to_do(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(records(1)[0]) + "\n")
    out = lake("ingest", dataset, str(path), dsn=db, check=False)  # no --user: no owner
    assert out.returncode == 1
    assert "no lake user" in out.stderr and "act_as" in out.stderr
    out = lake("ingest", "nope", str(path), "--user", "alice", dsn=db, check=False)
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_quarantine_commands(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records(20)))
    lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    listing = lake("quarantine", "list", "--dataset", dataset, dsn=db).stdout
    assert "maximum" in listing
    with psycopg.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM lake.quarantine ORDER BY id")]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**records(1)[0], "lat": 12.5}))
    lake("quarantine", "release", str(ids[0]), "--corrected", str(fixed), "--note", "fixed", dsn=db)
    lake("quarantine", "discard", str(ids[1]), "--reason", "sensor glitch", dsn=db)
    out = lake("quarantine", "discard", str(ids[1]), "--reason", "again", dsn=db, check=False)
    assert out.returncode == 1 and "already discarded" in out.stderr
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT status, count(*) FROM lake.quarantine GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("corrected", 1), ("discarded", 1)]


def test_evolve_schema_and_drop_dataset_commands(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records(20)))  # 18 stored, lat 12.5
    lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    stricter = tmp_path / "v2.json"
    props = {**SCHEMA["properties"], "lat": {"type": "number", "minimum": -90, "maximum": 12}}
    stricter.write_text(json.dumps({**SCHEMA, "properties": props}))
    dry = lake("evolve-schema", dataset, str(stricter), "--dry-run", dsn=db).stdout
    assert "version 2 would reject 18 of 18 stored rows (nothing changed)" in dry
    assert dry.count("$.lat: 12.5 is greater than the maximum of 12") == 5
    out = lake("evolve-schema", dataset, str(stricter), dsn=db).stdout
    assert "schema version 2 in force (was 1)" in out
    refused = lake("drop-dataset", dataset, dsn=db, check=False)
    assert refused.returncode == 1
    assert "holds 18 rows" in refused.stderr and "force => true" in refused.stderr
    assert (
        "dropped location_history: 18 rows"
        in lake("drop-dataset", dataset, "--force", dsn=db).stdout
    )
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM lake.datasets").fetchone() == (0,)


def test_users_keys_and_audit_commands(db: str, dataset: str):
    assert "next: `lake keys create alice`" in lake("users", "add", "alice", dsn=db).stdout
    lake("users", "add", "gateway", "--service", "--name", "Web gateway", dsn=db)
    users = lake("users", "list", dsn=db).stdout
    assert "alice" in users and "service" in users

    out = lake("keys", "create", "alice", "--scope", "read", "--expires-in-days", "30", dsn=db)
    key = out.stdout.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    assert key.startswith("lake_") and "scopes:  read" in out.stdout
    listing = lake("keys", "list", "alice", dsn=db).stdout
    assert key_id in listing and "active" in listing and key not in listing

    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT lake.authenticate(%s)", [key]).fetchone() == ("alice",)
    new_key = lake("keys", "rotate", key_id, dsn=db).stdout.strip().splitlines()[-1]
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT lake.authenticate(%s)", [key]).fetchone() == (None,)
        assert conn.execute("SELECT lake.authenticate(%s)", [new_key]).fetchone() == ("alice",)
    lake("keys", "revoke", new_key.split("_")[1], dsn=db)
    assert "revoked" in lake("keys", "list", dsn=db).stdout

    verified = lake("audit", "verify", dsn=db)
    assert "audit chain intact" in verified.stdout
    assert "auth.failure" in lake("audit", "tail", "--action", "auth.failure", dsn=db).stdout
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT lake.seal()")
        conn.execute("ALTER TABLE lake.audit_log DISABLE TRIGGER USER")
        conn.execute("UPDATE lake.audit_log SET object = 'mallory' WHERE id = 2")
    broken = lake("audit", "verify", dsn=db, check=False)
    assert broken.returncode == 1 and "broken at entry 2" in broken.stderr


# -- input as people have it ----------------------------------------------------------------


def jsonl(recs: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in recs).encode()


def stored(db: str) -> list[tuple[object, ...]]:
    """(user, batch origin, rows) of what the dataset holds."""
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT d.user_id, b.origin, count(*) FROM user_data.location_history d"
            " JOIN lake.batches b ON b.id = d.batch_id GROUP BY 1, 2 ORDER BY 2"
        ).fetchall()


def test_a_gzip_file_named_jsonl_is_read_as_what_it_holds(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "points.jsonl"  # gzip inside, whatever the name says
    path.write_bytes(gzip.compress(jsonl(records(40))))
    out = lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    assert "received 40, accepted 36, quarantined 4" in out.stdout
    assert stored(db) == [("alice", "points.jsonl", 36)]


def test_each_member_of_a_zip_archive_is_loaded(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "takeout.zip"
    recs = records(30)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/points.jsonl", jsonl(recs[:20]))
        zf.writestr("more.json.xz", lzma.compress(json.dumps(recs[20:]).encode()))
    out = lake("ingest", dataset, str(path), "--user", "alice", "--json", dsn=db)
    doc = json.loads(out.stdout)
    assert [(s["source"], s["received"], s["accepted"]) for s in doc["sources"]] == [
        ("takeout.zip:a/points.jsonl", 20, 18),
        ("takeout.zip:more.json.xz", 10, 9),
    ]
    assert (doc["received"], doc["accepted"], doc["quarantined"]) == (30, 27, 3)
    assert stored(db) == [
        ("alice", "takeout.zip:a/points.jsonl", 18),
        ("alice", "takeout.zip:more.json.xz", 9),
    ]


def test_a_bad_member_stores_nothing_of_the_archive(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "takeout.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("points.jsonl", jsonl(records(20)))
        zf.writestr("broken.json", b'[{"ts": 1}, ')  # a JSON array that is not closed
    out = lake("ingest", dataset, str(path), "--user", "alice", dsn=db, check=False)
    assert out.returncode == 1
    assert out.stderr.startswith("error: the JSON array is not closed")
    assert "Traceback" not in out.stderr
    assert stored(db) == []


def test_stdin_is_read_with_a_dash(db: str, dataset: str):
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "ingest", dataset, "-", "--user", "bob"],
        input=bz2.compress(jsonl(records(20))),
        env={**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"received 20, accepted 18, quarantined 2" in proc.stdout
    assert stored(db) == [("bob", "stdin", 18)]


def test_csv_strings_stay_strings_unless_the_schema_says_number(db: str, tmp_path: Path):
    schema = {
        "type": "object",
        "required": ["ts"],
        "properties": {
            "ts": {"type": "string"},
            "zip": {"type": "string"},
            "steps": {"type": "integer"},
            "km": {"type": "number"},
        },
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    lake("create-dataset", "walks", str(tmp_path / "schema.json"), dsn=db)
    ts = records(1)[0]["ts"]
    path = tmp_path / "walks.csv"
    path.write_text(f"ts,zip,steps,km,phone\n{ts},01234,0420,1.5,+4930123\n{ts},x,many,2,007\n")
    out = lake("ingest", "walks", str(path), "--user", "alice", dsn=db)
    assert "accepted 1, quarantined 1" in out.stdout
    with psycopg.connect(db) as conn:
        doc = conn.execute("SELECT doc FROM user_data.walks").fetchone()
        reasons = conn.execute("SELECT reasons FROM lake.quarantine").fetchone()
    assert doc is not None and reasons is not None
    assert {k: v for k, v in doc[0].items() if k != "ts"} == {
        "zip": "01234",
        "steps": 420,
        "km": 1.5,
        "phone": "+4930123",
    }
    assert [r["path"] for r in reasons[0]] == ["$.steps"]


def test_an_end_user_ingests_with_their_own_key(db: str, dataset: str, tmp_path: Path):
    lake("users", "add", "carol", dsn=db)
    key = json.loads(lake("keys", "create", "carol", "--json", dsn=db).stdout)["api_key"]
    path = tmp_path / "points.jsonl"
    path.write_bytes(jsonl(records(10)))
    lake("ingest", dataset, str(path), "--api-key", key, dsn=db)
    other = tmp_path / "other.jsonl"
    other.write_bytes(jsonl(records(20)[10:]))
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "ingest", dataset, str(other)],
        env={**os.environ, "LAKE_DSN": db, "LAKE_API_KEY": key, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert stored(db) == [("carol", "other.jsonl", 9), ("carol", "points.jsonl", 9)]
    bad = lake("ingest", dataset, str(path), "--api-key", "lake_0_nope", dsn=db, check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: authentication failed")


def test_strict_exits_3_when_records_were_quarantined(db: str, dataset: str, tmp_path: Path):
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(jsonl(records(10, bad_every=1000)[1:]))
    assert lake("ingest", dataset, str(clean), "-u", "alice", "--strict", dsn=db).returncode == 0
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(jsonl(records(10)))
    out = lake("ingest", dataset, str(mixed), "-u", "alice", "--strict", dsn=db, check=False)
    assert out.returncode == 3
    assert "1 record(s) were quarantined (--strict)" in out.stderr
    assert "accepted 9, quarantined 1" in out.stdout  # the load itself went through


def test_a_path_that_is_not_utf8_loads_and_is_named_escaped(db: str, dataset: str, tmp_path: Path):
    path = os.fsdecode(bytes(tmp_path) + b"/\xff.jsonl")
    Path(path).write_bytes(jsonl(records(10)))
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "ingest", dataset, os.fsencode(path), "-u", "a"],
        env={**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert stored(db) == [("a", "\\xff.jsonl", 9)]


# -- scripts: --json and plain output ---------------------------------------------------------


def test_json_documents_for_scripts(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(records(20)))
    lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    lake("users", "add", "alice", dsn=db)
    lake("keys", "create", "alice", dsn=db)
    items = json.loads(lake("quarantine", "list", "--json", dsn=db).stdout)
    assert len(items) == 2 and {i["user_id"] for i in items} == {"alice"}
    assert [r["rule"] for r in items[0]["reasons"]] == ["maximum"]
    datasets = json.loads(lake("datasets", "--json", dsn=db).stdout)
    assert [d["name"] for d in datasets] == [dataset]
    users = json.loads(lake("users", "list", "--json", dsn=db).stdout)
    assert [(u["id"], u["active_keys"]) for u in users] == [("alice", 1)]
    keys = json.loads(lake("keys", "list", "--json", dsn=db).stdout)
    assert [k["principal"] for k in keys] == ["alice"] and "api_key" not in keys[0]
    tail = json.loads(lake("audit", "tail", "--json", dsn=db).stdout)
    assert "key.create" in {e["action"] for e in tail}
    verify = json.loads(lake("audit", "verify", "--json", dsn=db).stdout)
    assert verify["ok"] is True
    jobs = json.loads(lake("jobs", "list", "--json", dsn=db).stdout)
    assert "retention" in {j["job"] for j in jobs}
    parts = json.loads(lake("partitions", dataset, "--json", dsn=db).stdout)
    assert parts and {p["dataset"] for p in parts} == {dataset}


def test_output_to_a_pipe_is_tab_separated_and_whole(db: str, dataset: str, tmp_path: Path):
    long_device = "d" * 300
    recs = [{**r, "device": long_device} for r in records(10)]
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(recs))
    lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    lines = lake("quarantine", "list", dsn=db).stdout.splitlines()
    assert lines[0].split("\t") == ["id", "dataset", "ref", "user", "status", "reasons", "record"]
    row = lines[1].split("\t")
    assert row[1:5] == [dataset, "line 1", "alice", "pending"]
    assert json.loads(row[6])["device"] == long_device  # not cut at 80 characters


# -- interrupted and repeated loads -----------------------------------------------------------


def interrupt_held_ingest(
    db: str, conn: psycopg.Connection[tuple[object, ...]], argv: list[str]
) -> tuple[int, bytes]:
    """Run the `lake ingest` command line `argv` and press Ctrl-C in the middle of a batch:
    once some batches are stored, `conn` (autocommit) holds lake.batches so that the next
    ones wait on the lock, whatever the machine's speed, and the interrupt comes when a
    session of the load waits on it (every batch before has been acknowledged to the client).
    Returns the exit code and stderr."""
    env = {**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not conn.execute("SELECT count(*) FROM lake.batches").fetchone()[0]:
            assert proc.poll() is None, proc.communicate()
            conn.execute("SELECT pg_sleep(0.05)")
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE lake.batches IN SHARE MODE")
        # Asked on a connection of its own: pg_stat_activity holds still in a transaction.
        with psycopg.connect(db, autocommit=True) as watch:
            while not watch.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'lake-cli' AND wait_event_type = 'Lock'"
            ).fetchone()[0]:
                assert proc.poll() is None, proc.communicate()
                watch.execute("SELECT pg_sleep(0.05)")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        conn.execute("ROLLBACK")
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def test_ctrl_c_says_what_was_stored_and_a_rerun_resumes(db: str, dataset: str, tmp_path: Path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(records(10_000, bad_every=10_000)))  # the first one is bad
    argv = [sys.executable, "-m", "lake_client.cli", "ingest", dataset, str(path)]
    # One session: the stored records are then the first N (tests/test_ingest_jobs.py
    # interrupts several).
    argv += ["--user", "alice", "--batch-size", "50", "--jobs", "1"]
    with psycopg.connect(db, autocommit=True) as conn:
        returncode, stderr = interrupt_held_ingest(db, conn, argv)
        stored_batches = conn.execute(
            "SELECT count(*), coalesce(sum(received), 0) FROM lake.batches"
        ).fetchone()
    assert returncode == 130, stderr
    text = stderr.decode()
    n_batches, n_records = stored_batches
    assert "interrupted; stored so far:" in text
    assert f"big.jsonl: {n_batches} batch(es), records 1 to {n_records:,}" in text
    assert "run the same command again" in text
    assert "Traceback" not in text
    again = lake(*argv[3:], dsn=db)
    assert f"{n_batches} batch(es) had been ingested before and were skipped" in again.stdout
    assert stored(db) == [("alice", "big.jsonl", 9_999)]


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("directory", 1, "error: {dir} is a directory, not a file"),
        ("format", 2, "'xml' is not one of"),
        ("batch-size", 2, "Invalid value for '--batch-size'"),
        ("port", 1, "error: LAKE_PG_PORT='abc' is not a port number"),
        ("truncated gzip", 1, "error: cannot read points.jsonl: Compressed file ended"),
        ("not closed", 1, "error: the JSON array is not closed"),
    ],
)
def test_bad_input_is_a_message_an_exit_code_and_nothing_stored(
    db: str, dataset: str, tmp_path: Path, case: str, code: int, message: str
):
    # Big enough for several batches: a failure half-way would have stored some.
    good = jsonl(records(300, bad_every=1000))
    path = tmp_path / "points.jsonl"
    path.write_bytes(good)
    args = ["ingest", dataset, str(path), "--user", "alice", "--batch-size", "100"]
    env = {**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"}
    if case == "directory":
        path.unlink()
        path.mkdir()
    elif case == "format":
        args += ["--format", "xml"]
    elif case == "batch-size":
        args[-1] = "0"
    elif case == "port":
        env["LAKE_PG_PORT"] = "abc"
    elif case == "truncated gzip":
        path.write_bytes(gzip.compress(good)[:-100])
    else:
        path = path.with_suffix(".json")
        path.write_bytes(json.dumps(records(300)).encode()[:-1])
        args[2] = str(path)
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code, proc.stderr
    assert message.format(dir=tmp_path / "points.jsonl") in proc.stderr
    assert "Traceback" not in proc.stderr
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM lake.batches").fetchone() == (0,)


def test_history_older_than_the_lake_is_counted_as_archived(db: str, dataset: str, tmp_path: Path):
    """Records older than the lake's first month are not refused: the summary and --json count
    them as archived, and received = accepted + archived + quarantined."""
    now = datetime.now(UTC)
    recs = records(20)
    for i in range(5):
        recs[i]["ts"] = (now - timedelta(days=420 + i)).isoformat().replace("+00:00", "Z")
    path = tmp_path / "history.jsonl"
    path.write_bytes(jsonl(recs))
    out = lake("ingest", dataset, str(path), "--user", "alice", dsn=db)
    assert "received 20, accepted 14, archived 4, quarantined 2" in out.stdout
    path.write_bytes(jsonl(recs[:10]))
    doc = json.loads(lake("ingest", dataset, str(path), "--user", "alice", "--json", dsn=db).stdout)
    assert (doc["received"], doc["accepted"], doc["archived"], doc["quarantined"]) == (
        10,
        5,
        4,
        1,
    )
    assert doc["sources"][0]["archived"] == 4
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT sum(rows) FROM lake.archives WHERE status = 'dropped'"
        ).fetchone() == (8,)
