"""A person's data, taken home (lake.export_user, lake_client.export, `lake export`): everything
the lake holds about them, archived months included, in a zip whose manifest matches its
members; nobody else's data; their own key exports only themselves; and the export's records
ingest back into an empty lake as the same records."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from lake_client.errors import InputError, LakeError
from lake_client.export import read_manifest, records, reingest
from tests.conftest import ADMIN_ROLE, APP_ROLE, drop_database, seal
from tests.test_retention import AHEAD, OLDEST, retention, scalar

Conn = psycopg.Connection[tuple[object, ...]]


STEPS = {
    "type": "object",
    "required": ["ts", "n"],
    "properties": {"ts": {"type": "string"}, "n": {"type": "integer"}},
}
PLACES = {
    "type": "object",
    "required": ["ts", "place"],
    "properties": {"ts": {"type": "string"}, "place": {"type": "string"}},
}
PARTS = [
    "profile.jsonl",
    "records/places.jsonl",
    "records/steps.jsonl",
    "quarantine.jsonl",
    "pii_findings.jsonl",
    "audit_log.jsonl",
]


def make_datasets(conn: Conn) -> None:
    conn.execute(
        "SELECT lake.create_dataset('steps', %s, %s)",
        [Jsonb(STEPS), Jsonb({"pii_fields": ["email"]})],
    )
    conn.execute("SELECT lake.create_dataset('places', %s)", [Jsonb(PLACES)])
    for user in ("alice", "bob"):
        conn.execute("SELECT lake.create_user(%s)", [user])


def ingest(conn: Conn, dataset: str, user: str, docs_sql: list[str]) -> None:
    """Ingest as the user (so the audit log's entries name them)."""
    conn.execute("SELECT lake.act_as(%s, 'session')", [user])
    conn.execute(
        f"SELECT FROM lake.ingest(%s, jsonb_build_array({', '.join(docs_sql)}))", [dataset]
    )
    conn.execute("SELECT lake.reset_identity()")


def step(ts: str, n: int, email: str) -> str:
    return f"jsonb_build_object('ts', {ts}, 'n', {n}, 'email', '{email}')"


def place(ts: str, text: str) -> str:
    return f"jsonb_build_object('ts', {ts}, 'place', '{text}')"


def fill(conn: Conn, *, archived: bool) -> None:
    """alice and bob, each with records in both datasets, a quarantined item and PII findings;
    with `archived`, each also has a record in the oldest month, which retention archives."""
    now = "to_char(now() - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    old = f'to_char({OLDEST}, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
    for user in ("alice", "bob"):
        docs = [step(now, 1, f"{user}.one@example.com"), step(now, 2, f"{user}.two@example.com")]
        if archived:
            docs.append(step(old, 3, f"{user}.old@example.com"))
        docs.append(f"jsonb_build_object('ts', {now}, 'n', 'not a number')")  # quarantined
        ingest(conn, "steps", user, docs)
        ingest(
            conn,
            "places",
            user,
            [place(now, f"{user} home, call +49 30 1234567"), place(now, f"{user} gym")],
        )


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def admin_lake(db: str) -> Lake:
    return Lake(make_conninfo(db, user=ADMIN_ROLE))


def test_export_holds_everything_about_the_person_and_nothing_else(
    conn: Conn, db: str, archive_dir: Path, tmp_path: Path
):
    make_datasets(conn)
    fill(conn, archived=True)
    report = retention(conn, AHEAD)
    assert report["errors"] == []
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'dropped'") >= 1
    # alice's old record lives only in the archive now.
    assert scalar(conn, "SELECT count(*) FROM user_data.steps WHERE user_id = 'alice'") == 2

    seal(conn)  # the audit entries so far join the chain; the export's own wait as pending
    expected = {
        "quarantine.jsonl": "SELECT count(*) FROM lake.quarantine WHERE user_id = 'alice'",
        "pii_findings.jsonl": "SELECT count(*) FROM lake.pii_findings WHERE user_id = 'alice'",
        "audit_log.jsonl": "SELECT count(*) FROM lake.audit_log WHERE lake_user = 'alice'",
    }
    counts = {part: scalar(conn, q) for part, q in expected.items()}
    assert counts["quarantine.jsonl"] == 1 and counts["pii_findings.jsonl"] >= 1
    assert counts["audit_log.jsonl"] >= 2

    target = tmp_path / "alice.zip"
    with admin_lake(db) as lake:
        manifest = lake.export_user(target, "alice", fetch=2)  # several fetches per part
    assert not (tmp_path / "alice.zip.part").exists()

    files = members(target)
    assert sorted(files) == sorted([*PARTS, "manifest.json"])
    assert json.loads(files["manifest.json"]) == manifest
    assert manifest["user"] == "alice"
    assert [f["name"] for f in manifest["files"]] == PARTS
    for entry in manifest["files"]:  # the manifest describes its members, recomputed here
        data = files[entry["name"]]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["lines"] == data.count(b"\n") == len(lines(data))
        assert entry["bytes"] == len(data)
    assert read_manifest(target) == manifest
    for part, n in counts.items():
        chained = [x for x in lines(files[part]) if not x.get("pending")]
        assert len(chained) == n, part
    # The export's own entries (acting for alice) are not chained yet: they come as pending.
    pending = [x for x in lines(files["audit_log.jsonl"]) if x.get("pending")]
    assert pending and all(x["lake_user"] == "alice" for x in pending)

    steps = lines(files["records/steps.jsonl"])
    assert len(steps) == 3
    archived = [r for r in steps if r["archived"]]
    assert len(archived) == 1 and archived[0]["doc"]["n"] == 3
    # pii_fields in clear, from the table and from the archive (the person's own data).
    assert sorted(r["doc"]["email"] for r in steps) == [
        "alice.old@example.com",
        "alice.one@example.com",
        "alice.two@example.com",
    ]
    live = conn.execute("SELECT id FROM user_data.steps WHERE user_id = 'alice'").fetchall()
    live_ids = {r[0] for r in live}
    assert {r["id"] for r in steps if not r["archived"]} == live_ids
    assert len(lines(files["records/places.jsonl"])) == 2
    assert lines(files["profile.jsonl"])[0]["id"] == "alice"
    assert lines(files["quarantine.jsonl"])[0]["doc"]["n"] == "not a number"
    assert {f["user_id"] for f in lines(files["pii_findings.jsonl"])} == {"alice"}
    assert {a["lake_user"] for a in lines(files["audit_log.jsonl"])} == {"alice"}
    # Nothing of bob's: not his values, not his name.
    for name, data in files.items():
        assert b"bob" not in data, name

    # The export is audited, as the administrator's act for alice.
    seal(conn)
    row = conn.execute(
        "SELECT object, detail FROM lake.audit_log WHERE action = 'user.export'"
    ).fetchall()
    assert row == [("alice", {"datasets": ["places", "steps"], "as_admin": True})]
    # The export recorded its duration, as did the retention run and its archives.
    durations = "SELECT status, count FROM lake.op_duration_histogram WHERE operation = %s"
    assert conn.execute(durations, ["export"]).fetchall() == [("ok", 1)]
    assert conn.execute(durations, ["retention"]).fetchall() == [("ok", 1)]
    written = scalar(conn, "SELECT count(*) FROM lake.archives")
    assert written >= 1
    assert conn.execute(durations, ["archive"]).fetchall() == [("ok", written)]


def test_a_person_exports_only_themselves_with_their_own_key(
    conn: Conn, db: str, as_role, tmp_path: Path
):
    make_datasets(conn)
    fill(conn, archived=False)
    key = scalar(conn, "SELECT api_key FROM lake.create_api_key('bob', ARRAY['read'])")
    with Lake(make_conninfo(db, user=APP_ROLE)) as lake:
        with pytest.raises(LakeError) as err:  # no identity yet: whose data?
            lake.export_user(tmp_path / "none.zip")
        assert err.value.sqlstate == "LK010"
        assert lake.authenticate(key) == "bob"
        with pytest.raises(LakeError) as err:
            lake.export_user(tmp_path / "alice.zip", "alice")
        assert err.value.sqlstate == "LK012"
        assert not (tmp_path / "alice.zip").exists()
        assert not (tmp_path / "alice.zip.part").exists()
        manifest = lake.export_user(tmp_path / "bob.zip")
    assert manifest["user"] == "bob"
    files = members(tmp_path / "bob.zip")
    counts = {f["name"]: f["lines"] for f in manifest["files"]}
    assert counts["records/steps.jsonl"] == 2 and counts["records/places.jsonl"] == 2
    assert counts["quarantine.jsonl"] == 1 and counts["pii_findings.jsonl"] >= 1
    for name, data in files.items():
        assert b"alice" not in data, name
    seal(conn)
    row = conn.execute("SELECT object, detail FROM lake.audit_log WHERE action = 'user.export'")
    assert row.fetchall() == [("bob", {"datasets": ["places", "steps"], "as_admin": False})]


def test_a_damaged_export_is_refused(conn: Conn, db: str, tmp_path: Path):
    make_datasets(conn)
    fill(conn, archived=False)
    target = tmp_path / "alice.zip"
    with admin_lake(db) as lake:
        lake.export_user(target, "alice")
    files = members(target)
    files["records/steps.jsonl"] = files["records/steps.jsonl"].replace(b'"n": 1', b'"n": 7')
    with zipfile.ZipFile(target, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    with pytest.raises(InputError, match=r"records/steps\.jsonl does not match the manifest"):
        read_manifest(target)


@pytest.fixture
def second_db(settings, admin_conn, database_pool) -> Iterator[str]:
    """Another fresh lake: the empty one the export goes back into."""
    name = database_pool.take()
    try:
        yield settings.dsn(name)
    finally:
        drop_database(admin_conn, name)


def test_export_round_trip(conn: Conn, db: str, second_db: str, tmp_path: Path):
    make_datasets(conn)
    fill(conn, archived=False)
    first = tmp_path / "alice.zip"
    with admin_lake(db) as lake:
        lake.export_user(first, "alice")

    with psycopg.connect(second_db, autocommit=True) as empty:
        make_datasets(empty)
    with admin_lake(second_db) as lake:
        lake.act_as("alice")
        summaries = reingest(lake, first)
        assert {ds: (s.accepted, s.quarantined) for ds, s in summaries.items()} == {
            "places": (2, 0),
            "steps": (2, 0),
        }
        again = tmp_path / "again.zip"
        lake.export_user(again, "alice")

    def doc_and_ts(path: Path, dataset: str) -> list[tuple[str, str]]:
        return sorted(
            (json.dumps(r["doc"], sort_keys=True), r["ts"]) for r in records(path, dataset)
        )

    for dataset in ("steps", "places"):
        before = doc_and_ts(first, dataset)
        assert len(before) == 2
        assert doc_and_ts(again, dataset) == before


def test_cli_export(conn: Conn, db: str, tmp_path: Path):
    make_datasets(conn)
    fill(conn, archived=False)
    key = scalar(conn, "SELECT api_key FROM lake.create_api_key('alice', ARRAY['read'])")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("LAKE_API_KEY", None)
    lake_cmd = [sys.executable, "-m", "lake_client.cli"]

    out = subprocess.run(
        [*lake_cmd, "export", "--user", "bob", "-o", str(tmp_path / "b.zip"), "--json"],
        env={**env, "LAKE_DSN": make_conninfo(db, user=ADMIN_ROLE)},
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["user"] == "bob" and doc["path"] == str(tmp_path / "b.zip")
    assert read_manifest(tmp_path / "b.zip")["files"] == doc["files"]

    out = subprocess.run(
        [*lake_cmd, "export"],
        env={**env, "LAKE_DSN": make_conninfo(db, user=APP_ROLE), "LAKE_API_KEY": key},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "records/steps.jsonl" in out.stdout and "alice-export.zip" in out.stdout
    assert read_manifest(tmp_path / "alice-export.zip")["user"] == "alice"

    both = subprocess.run(
        [*lake_cmd, "export", "--user", "bob", "--api-key", key],
        env={**env, "LAKE_DSN": db},
        capture_output=True,
        text=True,
        check=False,
    )
    assert both.returncode == 2 and "--user" in both.stderr


def test_the_client_streams_the_export(conn: Conn, db: str, tmp_path: Path):
    """Memory on the client does not grow with the data: exporting ~12 MB of records peaks at
    a fraction of that (a client that fetched everything first would hold all of it)."""
    make_datasets(conn)
    pad = "x" * 400
    conn.execute("SELECT lake.act_as('alice', 'session')")
    for _ in range(3):
        conn.execute(
            "SELECT FROM lake.ingest('places', (SELECT jsonb_agg(jsonb_build_object("
            " 'ts', to_char(now() - i * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " 'place', %s || i)) FROM generate_series(1, 10000) AS i))",
            [pad],
        )
    conn.execute("SELECT lake.reset_identity()")
    with admin_lake(db) as lake:
        assert lake.current_user_id() is None  # connected before measuring
        tracemalloc.start()
        try:
            manifest = lake.export_user(tmp_path / "alice.zip", "alice", fetch=500)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    places = next(f for f in manifest["files"] if f["name"] == "records/places.jsonl")
    assert places["lines"] == 30_000 and places["bytes"] > 12_000_000
    assert peak < places["bytes"] / 4, (peak, places["bytes"])
