"""A person erased (lake.erase_user, `lake erase`): afterwards no store holds their id or any of
their values (every table of the lake's schemas, archive files on disk, Redis keys and stream),
while another person's data is intact and the audit chain verifies and records the erasure;
their own key may ask but not erase; and their export ingests back as the same records."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo
from redis.cluster import RedisCluster

from lake_client.bridge import Bridge
from lake_client.cache import LakeCache
from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.erasure import erase_from_redis
from lake_client.errors import LakeError
from lake_client.export import records, reingest
from tests import test_bridge, test_retention
from tests.conftest import ADMIN_ROLE, APP_ROLE, seal
from tests.test_export import ingest, make_datasets, place, step
from tests.test_retention import AHEAD, OLDEST, scalar

Conn = psycopg.Connection[tuple[object, ...]]

# A Redis Cluster of the test's own (tests/redis_cluster.py), as the bridge's tests make it.
Running = test_bridge.Running  # a bridge in a thread
cluster = test_bridge.cluster
cluster_client = test_bridge.cluster_client

NOW = "to_char(now() - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
OLD = f'to_char({OLDEST}, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
# Values only alice's records hold (besides her id): none may survive her erasure.
ALICE_VALUES = ["alice", "Lindenstrasse 42", "7654321", "7349121", "7349123", "7349129"]


def fill(conn: Conn) -> None:
    """alice and bob: records in both datasets (one in the oldest month, which retention
    archives), a quarantined item, PII findings, an API key, an OAuth link."""
    for user, street, phone, n in (
        ("alice", "Lindenstrasse 42", "+49 30 7654321", 7349120),
        ("bob", "Hauptweg 7", "+49 40 1112223", 5168240),
    ):
        ingest(
            conn,
            "steps",
            user,
            [
                step(NOW, n + 1, f"{user}.one@example.com"),
                step(NOW, n + 2, f"{user}.two@example.com"),
                step(OLD, n + 3, f"{user}.old@example.com"),
                f"jsonb_build_object('ts', {NOW}, 'n', '{user} not a number')",  # quarantined
            ],
        )
        ingest(conn, "places", user, [place(NOW, f"{street}, call {phone}"), place(NOW, "gym")])
        conn.execute("SELECT lake.create_api_key(%s, ARRAY['read', 'write'])", [user])
        conn.execute("SELECT lake.link_oauth('github', %s, %s)", [f"gh-{user}", user])


def change_alice_under_a_checkpoint(conn: Conn) -> None:
    """A checkpoint, then an update of one of alice's records: a before-image (row_undo), an
    audit entry with the rows before and after, update events in the change log."""
    conn.execute("SELECT lake.checkpoint('steps')")
    conn.execute(
        "UPDATE user_data.steps SET doc = jsonb_set(doc, '{n}', '7349129')"
        " WHERE user_id = 'alice' AND (doc->>'n')::int = 7349121"
    )


def database_hits(conn: Conn, needle: str) -> list[str]:
    """Every table of the lake's schemas (partitions included) whose rows, as text, hold
    `needle`."""
    tables = conn.execute(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname IN"
        " ('lake', 'lake_internal', 'user_data', 'user_data_partitions', 'inbox')"
    ).fetchall()
    hits = []
    for (table,) in tables:
        n = scalar(
            conn, f"SELECT count(*) FROM {table} AS t WHERE t::text LIKE %s", [f"%{needle}%"]
        )
        if n:
            hits.append(f"{table}: {n}")
    return hits


def archive_text(folder: Path) -> dict[str, str]:
    """Every file under the archive folder, uncompressed."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out[str(path)] = (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
    return out


def redis_text(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Every key of the test's prefix (the cache and the stream), with its content."""
    out = {}
    for key in client.scan_iter(match=f"{prefix}*"):
        name = key.decode()
        kind = client.type(key).decode()
        if kind == "stream":
            out[name] = json.dumps(
                [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(key)]
            )
        elif kind == "string":
            out[name] = (client.get(key) or b"").decode()
        else:
            out[name] = kind
    return out


@pytest.fixture
def redis_prefix(settings: Settings) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(settings.redis_url())
    prefix = f"erase{uuid.uuid4().hex[:8]}"
    yield client, prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def admin_lake(db: str) -> Lake:
    return Lake(make_conninfo(db, user=ADMIN_ROLE))


def wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_erasure_leaves_nothing_of_the_person_in_any_store(
    conn: Conn, db: str, archive_dir: Path, redis_prefix: tuple[redis.Redis, str]
):
    client, prefix = redis_prefix
    make_datasets(conn)
    fill(conn)
    report = test_retention.retention(conn, AHEAD)
    assert report["errors"] == []
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'dropped'") >= 1
    change_alice_under_a_checkpoint(conn)
    assert scalar(conn, "SELECT count(*) FROM lake_internal.row_undo WHERE user_id = 'alice'") == 1

    # Redis: a bridge streams every change; both people have cached values.
    cache = LakeCache(client, prefix=prefix)
    cache.put("steps", "alice", "recent", ["alice.one@example.com", "Lindenstrasse 42"])
    cache.put("places", "alice", "home", "Lindenstrasse 42")
    running = Running(Bridge(db, client, name=prefix, stream=prefix, cache_prefix=prefix))
    try:
        seal(conn)
        last = scalar(conn, "SELECT max(id) FROM lake.data_changes")
        wait_until(lambda: running.bridge.cursor >= last)
        # Cached after the bridge invalidated their namespaces for those changes.
        cache.put("steps", "alice", "recent", ["alice.one@example.com"])
        cache.put("steps", "bob", "recent", ["bob.one@example.com", "Hauptweg 7"])
        # Every store holds alice before the erasure (the search below can find her).
        assert database_hits(conn, "alice")
        assert any("alice" in text for text in archive_text(archive_dir).values())
        assert any("alice" in text for text in redis_text(client, prefix).values())
        assert any(b'"alice"' in f[b"change"] for _, f in client.xrange(prefix))
        bob_before = {
            table: scalar(conn, f"SELECT count(*) FROM {table} WHERE user_id = 'bob'")
            for table in ("user_data.steps", "user_data.places", "lake.quarantine")
        }
        bob_stream = [
            i for i, f in client.xrange(prefix) if b'"bob"' in f[b"change"]
        ]  # his entries
        assert bob_stream

        with admin_lake(db) as lake:
            erased = lake.erase("alice", "the person's request, ticket 1", wait=30)
    finally:
        running.halt()

    assert erased["status"] == "done", erased
    assert erased["records"] == {"places": 2, "steps": 2}
    assert erased["archives"]["records"] == 1 and erased["archives"]["rewritten"] == 1
    assert erased["quarantine"] == 1 and erased["pii_findings"] >= 1
    assert erased["undo_images"] >= 1 and erased["api_keys"] == 1 and erased["profile"] == 1
    assert erased["oauth_identities"] == 1 and erased["audit_entries_redacted"] > 0
    assert erased["files_deleted"] == 2  # the old archive and its manifest

    # Nothing of alice anywhere.
    for needle in ALICE_VALUES:
        assert database_hits(conn, needle) == [], needle
        for path, text in archive_text(archive_dir).items():
            assert needle not in text, (needle, path)
        for key, text in redis_text(client, prefix).items():
            assert needle not in key and needle not in text, (needle, key)

    # bob is intact: his records, his archived record, his quarantine, cache and stream.
    for table, n in bob_before.items():
        assert scalar(conn, f"SELECT count(*) FROM {table} WHERE user_id = 'bob'") == n, table
    assert cache.get("steps", "bob", "recent") == ["bob.one@example.com", "Hauptweg 7"]
    assert [i for i, _ in client.xrange(prefix) if i in bob_stream] == bob_stream
    # The month's archive still verifies and restores bob's record alone.
    row = conn.execute(
        "SELECT month, rows FROM lake.archives"
        " WHERE status = 'dropped' AND dataset = 'steps' AND rows > 0"
    ).fetchone()
    assert row is not None and row[1] == 1
    conn.execute("SELECT lake.restore_partition('steps', %s)", [row[0]])
    assert conn.execute(
        "SELECT user_id, (doc->>'n')::int FROM user_data.steps"
        " WHERE ts < now() - interval '6 months'"
    ).fetchall() == [("bob", 5168243)]

    # The audit chain verifies and keeps that an erasure happened, not whom.
    seal(conn)
    assert conn.execute("SELECT ok, problem FROM lake.verify_audit_chain()").fetchone() == (
        True,
        None,
    )
    entry = conn.execute(
        "SELECT object, detail FROM lake.audit_log WHERE action = 'user.erase'"
    ).fetchone()
    assert entry is not None and entry[0] == f"erasure {erased['erasure_id']}"
    assert entry[1]["records"] == {"places": 2, "steps": 2}  # type: ignore[index]
    assert scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE erased IS NOT NULL") > 0
    # The request is closed, naming no one; its digest confirms whom, to whoever knows.
    assert conn.execute(
        "SELECT status, user_id, subject_sha256 = digest(salt || 'alice'::bytea, 'sha256')"
        " FROM lake.erasure_requests"
    ).fetchall() == [("done", None, True)]
    # The erasure recorded its duration (data_processing_duration_seconds).
    assert conn.execute(
        "SELECT status, count FROM lake.op_duration_histogram WHERE operation = 'erasure'"
    ).fetchall() == [("ok", 1)]


def test_a_redaction_keeps_the_chain_and_nothing_else_may_change(conn: Conn):
    """The audit log takes an erasure's redaction (payload changed, its digest kept), and still
    refuses any other change: a payload changed without the digest, or a frame field."""
    conn.execute("SELECT lake.create_user('carol')")
    seal(conn)
    row = conn.execute("SELECT id FROM lake.audit_log WHERE object = 'carol'").fetchone()
    assert row is not None
    for change in (
        "detail = '{}'",  # payload without the digest
        "erased = '\\x00', detail = '{}'",  # a digest that is not the payload's
        "action = 'x', erased = lake_internal._audit_payload(a)",  # the frame
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"UPDATE lake.audit_log AS a SET {change} WHERE id = %s", [row[0]])
        assert err.value.sqlstate == "LK050", change
    conn.execute(
        "UPDATE lake.audit_log AS a SET erased = lake_internal._audit_payload(a),"
        " object = NULL, after = NULL WHERE id = %s",
        [row[0]],
    )
    assert conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone() == (True,)
    # A payload altered behind a digest it does not match is caught by the chain... only
    # through the digest: the frame still links; altering the digest itself is refused above.
    with pytest.raises(psycopg.Error) as err:
        conn.execute("DELETE FROM lake.audit_log WHERE id = %s", [row[0]])
    assert err.value.sqlstate == "LK050"


def test_the_person_may_ask_but_only_an_administrator_erases(conn: Conn, db: str, as_role):
    make_datasets(conn)
    ingest(conn, "places", "alice", [place(NOW, "Lindenstrasse 42")])
    ingest(conn, "places", "bob", [place(NOW, "Hauptweg 7")])
    alice_key = scalar(conn, "SELECT api_key FROM lake.create_api_key('alice', ARRAY['read'])")
    bob_key = scalar(conn, "SELECT api_key FROM lake.create_api_key('bob', ARRAY['read'])")

    with Lake(make_conninfo(db, user=APP_ROLE)) as lake:
        lake.authenticate(bob_key)
        with pytest.raises(LakeError) as err:  # not for someone else
            lake.request_erasure("alice", "bob wants it")
        assert err.value.sqlstate == "LK012"
    with Lake(make_conninfo(db, user=APP_ROLE)) as lake:
        lake.authenticate(alice_key)
        first = lake.request_erasure(reason="please forget me")
        assert lake.request_erasure() == first  # one open request
        with pytest.raises(LakeError):  # asking is all she may do
            lake.erase_user("alice", "myself")
        with pytest.raises(LakeError):
            lake.finish_erasure(first)
    assert scalar(conn, "SELECT count(*) FROM user_data.places WHERE user_id = 'alice'") == 1
    assert conn.execute(
        "SELECT status, requested_by, reason FROM lake.erasure_requests"
    ).fetchall() == [("requested", "self", "please forget me")]

    admin = as_role(ADMIN_ROLE)
    with pytest.raises(psycopg.Error) as perr:  # a reason is required
        admin.execute("SELECT lake.erase_user('alice', '')")
    assert perr.value.sqlstate == "LK011"
    with admin_lake(db) as lake:
        report = lake.erase("alice", "her request", wait=5)
    assert report["erasure_id"] == first and report["status"] == "done"
    assert report["requested_by"] == "self"
    assert scalar(conn, "SELECT count(*) FROM user_data.places WHERE user_id = 'alice'") == 0
    assert scalar(conn, "SELECT count(*) FROM user_data.places WHERE user_id = 'bob'") == 1
    assert scalar(conn, "SELECT count(*) FROM lake.api_keys WHERE principal = 'alice'") == 0
    with Lake(make_conninfo(db, user=APP_ROLE)) as lake, pytest.raises(LakeError):
        lake.authenticate(alice_key)  # her key went with her


def test_export_round_trip_through_an_erasure(
    conn: Conn, db: str, archive_dir: Path, tmp_path: Path
):
    """Export alice, erase her, ingest her export back: the lake holds the same records (the
    archived one back in its month's archive)."""
    make_datasets(conn)
    fill(conn)
    assert test_retention.retention(conn, AHEAD)["errors"] == []
    first = tmp_path / "alice.zip"
    with admin_lake(db) as lake:
        lake.export_user(first, "alice")
        report = lake.erase("alice", "round trip", wait=5)
        assert report["status"] == "done"
        assert report["records"] == {"places": 2, "steps": 2}
        assert report["archives"]["records"] == 1
        assert scalar(conn, "SELECT count(*) FROM user_data.steps WHERE user_id = 'alice'") == 0

        conn.execute("SELECT lake.create_user('alice')")
        lake.act_as("alice")
        summaries = reingest(lake, first)
        assert {ds: (s.accepted, s.archived, s.quarantined) for ds, s in summaries.items()} == {
            "places": (2, 0, 0),
            "steps": (2, 1, 0),
        }
    again = tmp_path / "again.zip"
    with admin_lake(db) as lake:
        lake.export_user(again, "alice")

    def doc_and_ts(path: Path, dataset: str) -> list[tuple[str, str, bool]]:
        return sorted(
            (json.dumps(r["doc"], sort_keys=True), r["ts"], bool(r["archived"]))
            for r in records(path, dataset)
        )

    assert len(doc_and_ts(first, "steps")) == 3
    for dataset in ("steps", "places"):
        assert doc_and_ts(again, dataset) == doc_and_ts(first, dataset)


def test_cli_erase(conn: Conn, db: str):
    make_datasets(conn)
    ingest(conn, "places", "alice", [place(NOW, "Lindenstrasse 42")])
    ingest(conn, "places", "bob", [place(NOW, "Hauptweg 7")])
    key = scalar(conn, "SELECT api_key FROM lake.create_api_key('bob', ARRAY['read'])")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("LAKE_API_KEY", None)
    lake_cmd = [sys.executable, "-m", "lake_client.cli"]

    out = subprocess.run(
        [*lake_cmd, "erase", "--api-key", key, "--reason", "forget me", "--json"],
        env={**env, "LAKE_DSN": make_conninfo(db, user=APP_ROLE)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["status"] == "requested"

    admin_env = {**env, "LAKE_DSN": make_conninfo(db, user=ADMIN_ROLE)}
    out = subprocess.run(
        [*lake_cmd, "erase", "--user", "alice", "--reason", "ticket 2", "--json"],
        env=admin_env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["status"] == "done" and doc["records"] == {"places": 1, "steps": 0}
    out = subprocess.run(
        [*lake_cmd, "erase", "--user", "bob", "--reason", "his request"],
        env=admin_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "records/places" in out.stdout and "done" in out.stdout
    none = subprocess.run(
        [*lake_cmd, "erase", "--user", "carol"], env=admin_env, capture_output=True, text=True
    )
    assert none.returncode == 2 and "--reason" in none.stderr
    assert scalar(conn, "SELECT count(*) FROM user_data.places") == 0
    assert scalar(conn, "SELECT count(*) FROM lake.erasure_requests WHERE status = 'done'") == 2


def test_a_restored_month_and_its_archive_lose_the_person(conn: Conn, db: str, archive_dir: Path):
    """A month restored from its archive is in the lake and its file stays (status restored):
    the erasure deletes their rows from the partition and rewrites that file too."""
    make_datasets(conn)
    fill(conn)
    assert test_retention.retention(conn, AHEAD)["errors"] == []
    month = scalar(
        conn,
        "SELECT month FROM lake.archives"
        " WHERE status = 'dropped' AND dataset = 'steps' AND rows > 0",
    )
    conn.execute("SELECT lake.restore_partition('steps', %s)", [month])
    assert scalar(conn, "SELECT count(*) FROM lake.archives WHERE status = 'restored'") == 1
    with admin_lake(db) as lake:
        report = lake.erase("alice", "restored month", wait=5)
    assert report["status"] == "done"
    assert report["records"]["steps"] == 3  # the restored month's record among them
    assert report["archives"] == {"rewritten": 1, "records": 1, "files_to_delete": 2}
    row = conn.execute(
        "SELECT rows, path FROM lake.archives WHERE status = 'restored' AND dataset = 'steps'"
    ).fetchone()
    assert row is not None and row[0] == 1
    lines = gzip.decompress(Path(str(row[1])).read_bytes()).decode().splitlines()
    assert [json.loads(line)["user_id"] for line in lines] == ["bob"]
    for needle in ALICE_VALUES:
        assert database_hits(conn, needle) == [], needle
        assert all(needle not in t for t in archive_text(archive_dir).values()), needle


def test_erase_from_redis_on_a_cluster(cluster_client: RedisCluster):
    """On a Redis Cluster the person's keys live in many slots (one hash tag per dataset):
    every one goes, and their stream entries; the other person's stay."""
    prefix = f"erase{uuid.uuid4().hex[:8]}"
    stream = prefix + ":stream"
    cache = LakeCache(cluster_client, prefix=prefix)
    datasets = ["steps", "places", "sleep", "heart"]
    for dataset in datasets:
        for user in ("alice", "bob"):
            cache.put(dataset, user, "recent", [f"{user} in {dataset}"])
    for i, user in enumerate(["alice", "bob", "alice", "bob"], start=1):
        change = {"id": i, "user_id": None if i == 3 else user, "op": "c"}
        if i == 3:  # a batch event of many users: the row after is alice's
            change["after"] = {"user_id": "alice", "n": 1}
        cluster_client.xadd(stream, {"id": i, "change": json.dumps(change)}, id=f"{i}-0")
    gone = erase_from_redis(cluster_client, "alice", stream=stream, prefix=prefix)
    assert gone == {"cache_keys": 2 * len(datasets), "stream_entries": 2}
    assert [k for k in cluster_client.scan_iter(match=f"{prefix}*") if b"alice" in k] == []
    assert [int(f[b"id"]) for _, f in cluster_client.xrange(stream)] == [2, 4]
    assert erase_from_redis(cluster_client, "alice", stream=stream, prefix=prefix) == {
        "cache_keys": 0,
        "stream_entries": 0,
    }
    for dataset in datasets:  # (reading alice's namespace would create its version again)
        assert cache.get(dataset, "bob", "recent") == [f"bob in {dataset}"]
    for key in cluster_client.scan_iter(match=f"{prefix}*"):
        cluster_client.delete(key)
