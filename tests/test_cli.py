"""The `lake` command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert "ingested before" in again.stdout
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
        ).fetchall() == [("discarded", 1), ("released", 1)]


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
