"""Witnesses of the audit chain: a database superuser can rewrite the chain so that
lake.verify_audit_chain() still passes, but not the signed heads kept outside the database, which
then no longer match. Against the real PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
import redis

from lake_client import witness
from lake_client.bridge import Bridge
from lake_client.config import Settings
from tests.conftest import seal
from tests.test_bridge import Running, wait_for

Conn = psycopg.Connection[tuple[object, ...]]

# What a superuser can do: switch the append-only guard off, change an entry, and recompute the
# hashes of it and every entry after it, and the head, with the lake's own hash function.
REWRITE_SQL = """
DO $$
DECLARE
    e lake.audit_log;
    prev bytea;
BEGIN
    ALTER TABLE lake.audit_log DISABLE TRIGGER USER;
    UPDATE lake.audit_log SET object = 'mallory' WHERE id = {id};
    SELECT hash INTO prev FROM lake.audit_log WHERE id = {id} - 1;
    FOR e IN SELECT * FROM lake.audit_log WHERE id >= {id} ORDER BY id LOOP
        e.prev_hash := coalesce(prev, '\\x'::bytea);
        prev := lake_internal._audit_hash(e);
        UPDATE lake.audit_log SET prev_hash = e.prev_hash, hash = prev WHERE id = e.id;
    END LOOP;
    UPDATE lake_internal.audit_head SET last_hash = prev;
    ALTER TABLE lake.audit_log ENABLE TRIGGER USER;
END
$$
"""


def rewrite(conn: Conn, entry: int) -> None:
    conn.execute(REWRITE_SQL.replace("{id}", str(int(entry))))  # type: ignore[arg-type]


@pytest.fixture
def stream(settings: Settings) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(settings.redis_url())
    name = f"test-witness-{uuid.uuid4().hex[:8]}"
    yield client, name
    client.delete(name)
    client.close()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    # The folder is open to everyone: only the file's own mode keeps the key from others.
    folder = tmp_path / "secrets"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o755)
    return folder / "witness.key"


def make_witness(
    key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> witness.Witness:
    key = witness.load_key(key_file, create=True)
    assert key is not None
    return witness.Witness(key, tmp_path / "witness", stream[0], stream=stream[1])


def check(conn: Conn, w: witness.Witness, stream: tuple[redis.Redis, str] | None) -> witness.Check:
    return witness.check(
        conn,
        w.key.public_key(),
        w.folder,
        None if stream is None else stream[0],
        stream="" if stream is None else stream[1],
    )


def users(conn: Conn, *names: str) -> None:
    for name in names:
        conn.execute("SELECT lake.create_user(%s)", [name])
    seal(conn)


def head(conn: Conn) -> int:
    """The chain's newest entry (a fresh test database has one already: its archive folder)."""
    seal(conn)
    row = conn.execute("SELECT coalesce(max(id), 0) FROM lake.audit_log").fetchone()
    assert row is not None
    return int(str(row[0]))


def verify_chain(conn: Conn) -> bool:
    row = conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone()
    assert row is not None
    return bool(row[0])


def test_a_rewritten_chain_passes_its_own_check_but_not_its_witnesses(
    conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    w = make_witness(key_file, tmp_path, stream)
    base = head(conn)
    users(conn, "u1", "u2", "u3", "u4")
    first = w.witness_head(conn)
    assert first is not None and first["id"] == base + 4
    assert w.witness_head(conn) is None  # the head has not moved: nothing new
    users(conn, "u5", "u6")
    second = w.witness_head(conn)
    assert second is not None and second["id"] == base + 6
    users(conn, "u7")  # not witnessed yet
    before = check(conn, w, stream)
    assert (before.ok, before.checked, before.purged) == (True, 2, 0)
    assert before.sources == [str(w.folder / "audit-heads.jsonl"), f"redis {stream[1]}"]

    rewrite(conn, base + 2)
    # The hole: the chain's own check cannot tell.
    assert verify_chain(conn) is True
    edited = conn.execute("SELECT object FROM lake.audit_log WHERE id = %s", [base + 2])
    assert edited.fetchone() == ("mallory",)
    # Its witnesses can: both heads witnessed after the edited entry no longer match.
    after = check(conn, w, stream)
    assert after.ok is False and after.checked == 2
    assert [p.split(" differs")[0] for p in after.problems] == [
        f"entry {base + 4}",
        f"entry {base + 6}",
    ]
    assert "the chain up to it was rewritten" in after.problems[0]

    # The file gone (or rewritten: the keeper of the database cannot sign), Redis still has them.
    (w.folder / "audit-heads.jsonl").unlink()
    from_redis = check(conn, w, stream)
    assert from_redis.checked == 2 and len(from_redis.problems) == 2


def test_a_rewrite_after_the_last_witness_is_found_by_the_next(
    conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    """The boundary: entries sealed after the last witness are vouched for by none yet (the
    bridge witnesses every minute while the head moves); once a later head is witnessed, an edit
    of any entry up to it is found."""
    w = make_witness(key_file, tmp_path, stream)
    base = head(conn)
    users(conn, "u1", "u2")
    w.witness_head(conn)
    users(conn, "u3")
    rewrite(conn, base + 3)
    assert check(conn, w, stream).ok is True  # no witness vouches for that entry yet
    rewrite(conn, base + 2)
    assert check(conn, w, stream).ok is False  # the witnessed head differs


def test_a_forged_witness_is_refused(
    conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    w = make_witness(key_file, tmp_path, stream)
    users(conn, "u1", "u2")
    w.witness_head(conn)
    rewrite(conn, head(conn) - 1)
    # Whoever rewrites the chain would have to rewrite its witnesses too: without the key, the
    # new hash in an old witness breaks its signature.
    path = w.folder / "audit-heads.jsonl"
    entry = orjson.loads(path.read_bytes())
    row = conn.execute("SELECT hash FROM lake.audit_log WHERE id = %s", [entry["id"]]).fetchone()
    assert row is not None
    entry["hash"] = bytes(row[0]).hex()  # type: ignore[arg-type]
    path.write_bytes(orjson.dumps(entry) + b"\n")
    found = check(conn, w, None)
    assert found.checked == 0
    assert found.problems == [f"witness {path}:1 is not signed by the witness key"]


def test_witnesses_of_entries_dropped_by_retention_are_skipped(
    conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    w = make_witness(key_file, tmp_path, stream)
    users(conn, "u1", "u2")
    w.witness_head(conn)
    # Retention as if a year and more had passed: every month so far is dropped; the purge's own
    # entry starts what is kept.
    conn.execute("SELECT lake.purge_audit_log(now() + interval '800 days')")
    seal(conn)
    assert verify_chain(conn) is True
    found = check(conn, w, stream)
    assert (found.ok, found.checked, found.purged) == (True, 0, 1)
    w.witness_head(conn)
    found = check(conn, w, stream)
    assert (found.ok, found.checked, found.purged) == (True, 1, 1)


def test_the_database_cannot_read_the_key(
    conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    """The key is the OS user's who runs `lake`, mode 0600: a database superuser reads files as
    the server's OS user, who cannot read it."""
    make_witness(key_file, tmp_path, stream)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.stat().st_uid == os.geteuid()
    if os.geteuid() != 0:
        pytest.skip("the servers run as this OS user: only root runs them as another")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT pg_read_file(%s)", [str(key_file)])


def test_the_bridge_witnesses_the_head_as_it_moves(
    db: str, conn: Conn, key_file: Path, tmp_path: Path, stream: tuple[redis.Redis, str]
) -> None:
    w = make_witness(key_file, tmp_path, stream)
    base = head(conn)
    bridge = Bridge(
        db,
        stream[0],
        name="witness",
        stream=f"{stream[1]}-changes",
        poll_s=0.2,
        witness=w,
        witness_every_s=0,
    )
    running = Running(bridge)
    try:
        if base:  # the head as the bridge found it
            wait_for(lambda: w.last is not None and w.last[1] == base)
        conn.execute("SELECT lake.create_user('u1')")  # the bridge seals it, then witnesses it
        wait_for(lambda: w.last is not None and w.last[1] == base + 1)
        conn.execute("SELECT lake.create_user('u2')")
        wait_for(lambda: w.last is not None and w.last[1] == base + 2)
    finally:
        running.halt()
        stream[0].delete(f"{stream[1]}-changes")
    found = check(conn, w, stream)
    # The head at start (unless the chain was empty), then the two new ones.
    assert found.ok and found.checked == (3 if base else 2)
    assert stream[0].xlen(stream[1]) == found.checked


def test_lake_audit_verify_fails_on_a_rewritten_chain(
    db: str, conn: Conn, settings: Settings, key_file: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LAKE_DSN": db,
        "LAKE_REDIS_URL": settings.redis_url(),
        "LAKE_WITNESS_KEY": str(key_file),
        "LAKE_WITNESS_DIR": str(tmp_path / "witness"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }

    def lake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lake_client.cli", "audit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    client = redis.Redis.from_url(settings.redis_url())
    lake_id = witness._rows(conn, "lake_identity")[0][0]
    try:
        users(conn, "u1", "u2", "u3")
        top = head(conn)
        done = lake("witness", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["id"] == top
        ok = lake("verify")
        assert ok.returncode == 0 and "witnesses: 1 checked" in ok.stdout, ok.stdout
        rewrite(conn, top - 1)
        broken = lake("verify", "--json")
        doc = json.loads(broken.stdout)
        assert broken.returncode == 1
        assert doc["chain_ok"] is True and doc["ok"] is False
        assert doc["witnesses"]["problems"][0].startswith(f"entry {top} differs from its witness")
    finally:
        # The witness stream is the default one of this Redis: take this database's entries out.
        for entry_id, fields in client.xrange(witness.STREAM):
            if orjson.loads(fields[b"witness"])["lake"] == lake_id:
                client.xdel(witness.STREAM, entry_id)
        client.close()


def test_lake_bridge_witnesses_by_default(
    db: str, conn: Conn, settings: Settings, key_file: Path, tmp_path: Path
) -> None:
    """`lake bridge` as people run it signs the head into LAKE_WITNESS_DIR (and the default
    stream, from which this database's entries are taken out again)."""
    stream_name = f"test-witness-changes-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "witness"
    env = {
        **os.environ,
        "LAKE_DSN": db,
        "LAKE_REDIS_URL": settings.redis_url(),
        "LAKE_WITNESS_KEY": str(key_file),
        "LAKE_WITNESS_DIR": str(folder),
    }
    users(conn, "u1")
    top = head(conn)
    lake_id = witness._rows(conn, "lake_identity")[0][0]
    client = redis.Redis.from_url(settings.redis_url())
    bridge = subprocess.Popen(
        [
            *(sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5"),
            *("--name", "witness-cli", "--stream", stream_name),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        path = folder / "audit-heads.jsonl"

        def witnessed() -> list[int]:
            if not path.exists():
                return []
            return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]

        wait_for(lambda: top in witnessed())
    finally:
        bridge.terminate()
        bridge.wait(30)
        client.delete(stream_name)
        for entry_id, fields in client.xrange(witness.STREAM):
            if orjson.loads(fields[b"witness"])["lake"] == lake_id:
                client.xdel(witness.STREAM, entry_id)
        client.close()
    key = witness.load_key(key_file)
    assert key is not None
    found = witness.check(conn, key.public_key(), folder, None)
    assert found.ok and found.checked >= 1
