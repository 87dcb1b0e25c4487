"""The gRPC service (`lake grpc`) through real channels against a real PostgreSQL: identity per
call from the API key (a service acting for users), ingest counted as the SQL path counts,
queries that see only the caller's rows, deadlines that cancel the statement, the change log
resumed after a restart, the administrator methods, health and reflection."""

from __future__ import annotations

import contextlib
import filecmp
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lake_client import errors, grpc_server
from lake_client.copy_ingest import store_batches
from lake_client.grpc_client import MAX_BATCH, DeadlineExceeded, GrpcLake, channel
from lake_client.grpc_server import APPLICATION_NAME, make_server
from lake_client.lakepb import lake_pb2
from lake_client.local.tls import door_files
from lake_client.records import Record
from lake_client.transport import ServerFiles
from tests.conftest import ADMIN_ROLE, CHECKOUT, SERVICE_ROLE, Settings, point, seal
from tests.redis_cluster import free_ports

Conn = psycopg.Connection[tuple[object, ...]]


def records(n: int, bad_every: int = 7) -> list[dict[str, object]]:
    """n location records; every `bad_every`-th is out of range (quarantined); 0: none."""
    return [
        point(i % 600, lat=999.0 if bad_every and i % bad_every == 0 else 1.0 + i % 50 / 100)
        for i in range(n)
    ]


def orjson_point() -> bytes:
    import orjson

    return orjson.dumps(point(1))


def new_key(conn: Conn, principal: str) -> tuple[str, str]:
    row = conn.execute(
        "SELECT key_id, api_key FROM lake.create_api_key(%s, ARRAY['read', 'write'])", [principal]
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


@pytest.fixture
def keys(conn: Conn, location_dataset: str) -> dict[str, tuple[str, str]]:
    """alice and bob (users), gw (a service), ops (the service's administrator): a key each."""
    conn.execute("SELECT lake.create_user('alice')")
    conn.execute("SELECT lake.create_user('bob')")
    conn.execute("SELECT lake.create_user('gw', 'Gateway', 'service')")
    conn.execute("SELECT lake.create_user('ops', 'Operations', 'service')")
    return {who: new_key(conn, who) for who in ("alice", "bob", "gw", "ops")}


Serve = Callable[..., str]


@pytest.fixture
def serve(db: str, settings: Settings) -> Iterator[Serve]:
    """Start `lake grpc`'s server on a free port (TLS, the lake's grpc certificate, loopback) as
    the service login, with the administrator login for `ops`; returns its target. Stopped after
    the test."""
    running: list[Any] = []
    tls = door_files(settings.home, "grpc", print)

    def start(**options: Any) -> str:
        server, port, service = make_server(
            make_conninfo(db, user=SERVICE_ROLE),
            tls=tls,
            admin_dsn=make_conninfo(db, user=ADMIN_ROLE),
            admins=frozenset({"ops"}),
            redis_url=settings.redis_url(),
            **options,
        )
        running.append((server, service))
        return f"127.0.0.1:{port}"

    yield start
    for server, service in running:
        server.stop(None).wait()
        service.close()


def client(target: str, key: tuple[str, str], act_for: str | None = None) -> GrpcLake:
    return GrpcLake(target, key[1], act_for=act_for)


def test_ingest_counts_equal_the_sql_paths(conn: Conn, keys: dict, serve: Serve) -> None:
    target = serve()
    data = records(2500)
    namespace = uuid.uuid4()
    with client(target, keys["alice"]) as alice:
        summary = alice.ingest("location_history", iter(data), batch_namespace=namespace)
        # The same stream again: every batch is recognised by its id and stored once.
        again = alice.ingest("location_history", iter(data), batch_namespace=namespace)
        # Three calls side by side: the same batches (by id), nothing stored twice either.
        side = alice.ingest("location_history", data, batch_namespace=namespace, streams=3)
    conn.execute("SELECT lake.act_as('bob', 'session')")
    sql_path = [0, 0, 0, 0]
    for start in range(0, len(data), 1000):
        row = conn.execute(
            "SELECT received, accepted, quarantined, archived FROM lake.ingest("
            "'location_history', %s)",
            [Jsonb(data[start : start + 1000])],
        ).fetchone()
        assert row is not None
        sql_path = [a + int(b) for a, b in zip(sql_path, row, strict=True)]
    conn.execute("SELECT lake.reset_identity()")
    assert [summary.received, summary.accepted, summary.quarantined, summary.archived] == sql_path
    assert summary.received == 2500 and summary.quarantined == len(range(0, 2500, 7))
    assert [r.rule for r in summary.reasons] and sum(r.records for r in summary.reasons) >= (
        summary.quarantined
    )
    assert again.received == 0 and side.received == 0  # only duplicates
    fresh = uuid.uuid4()
    with client(target, keys["bob"]) as bob:
        parallel = bob.ingest("location_history", data, batch_namespace=fresh, streams=3)
    assert (parallel.received, parallel.accepted, parallel.quarantined) == (
        summary.received,
        summary.accepted,
        summary.quarantined,
    )
    assert [(r.rule, r.records) for r in parallel.reasons] == [
        (r.rule, r.records) for r in summary.reasons
    ]
    sql_path[1] += parallel.accepted  # bob's rows: the SQL path's and the parallel streams'
    stored = conn.execute(
        "SELECT user_id, count(*) FROM user_data.location_history GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert stored == [("alice", summary.accepted), ("bob", sql_path[1])]


def test_what_is_not_json_is_quarantined_with_its_bytes(
    conn: Conn, keys: dict, serve: Serve
) -> None:
    target = serve()
    hostile = [b"not json", b'{"ts": "\xff\xfe"}', b'{"a": "\\u0000"}', orjson_point()]
    with client(target, keys["alice"]) as alice:
        summary = alice.ingest("location_history", hostile)
    assert (summary.received, summary.accepted, summary.quarantined) == (4, 1, 3)
    raws = conn.execute("SELECT raw FROM lake.quarantine ORDER BY id").fetchall()
    assert sorted(r[0] for r in raws) == sorted(hostile[:3])


def test_a_query_sees_only_the_callers_rows(conn: Conn, keys: dict, serve: Serve) -> None:
    target = serve()
    for user, n in (("alice", 30), ("bob", 20)):
        with client(target, keys["gw"], act_for=user) as gw:
            assert gw.ingest("location_history", records(n, bad_every=0)).accepted == n
    seen = {}
    for name, lake in (
        ("alice", client(target, keys["alice"])),
        ("bob", client(target, keys["bob"])),
        ("gw-alice", client(target, keys["gw"], act_for="alice")),
        ("gw-bob", client(target, keys["gw"], act_for="bob")),
    ):
        with lake:
            rows = list(lake.query("location_history"))
        seen[name] = {r["user_id"] for r in rows}, len(rows)
    assert seen == {
        "alice": ({"alice"}, 30),
        "bob": ({"bob"}, 20),
        "gw-alice": ({"alice"}, 30),
        "gw-bob": ({"bob"}, 20),
    }
    # Pages: a page token resumes after its record, in (ts, id) order, without overlap.
    with client(target, keys["alice"]) as alice:
        first = list(alice.query("location_history", limit=12))
        rest = list(alice.query("location_history", page_token=first[-1]["page_token"]))
        whole = list(alice.query("location_history"))
    assert [r["id"] for r in first + rest] == [r["id"] for r in whole]
    assert len(first) == 12 and len(rest) == 18
    # A service alone is nobody: no rows, an error that says why.
    with client(target, keys["gw"]) as gw, pytest.raises(errors.LakeError):
        list(gw.changes())


def test_query_sends_pages_cut_by_rows_and_by_bytes(
    keys: dict, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Query's records come in RecordPage messages: at most PAGE_ROWS each (a fetch), and a page
    is closed once it holds PAGE_BYTES of documents; the records are those of one message each,
    in order."""
    target = serve()
    with client(target, keys["alice"]) as alice:
        assert alice.ingest("location_history", records(30, bad_every=0)).accepted == 30
        whole = [r["id"] for r in alice.query("location_history")]
        request = lake_pb2.QueryRequest(dataset="location_history")
        monkeypatch.setattr(grpc_server, "PAGE_ROWS", 7)
        pages = list(alice.stub.Query(request, metadata=alice.metadata, timeout=30))
        assert [len(p.records) for p in pages] == [7, 7, 7, 7, 2]
        assert [r.id for p in pages for r in p.records] == whole
        monkeypatch.setattr(grpc_server, "PAGE_BYTES", 1)  # every record closes its page
        pages = list(alice.stub.Query(request, metadata=alice.metadata, timeout=30))
        assert [len(p.records) for p in pages] == [1] * 30
        assert [r.id for p in pages for r in p.records] == whole


def test_batches_stored_together_keep_their_ids_and_counts(db: str, conn: Conn, keys: dict) -> None:
    """What Ingest does with the batches that have arrived (copy_ingest.store_batches): one
    transaction and one COPY, each batch with its own id and counts; a batch stored before and
    one sent twice are duplicates, stored once; a record that COPY refuses sends its own batch
    alone through lake.ingest_raw."""

    def chunk(docs: list[Any]) -> list[Record]:
        return [
            Record(f"[{i}]", d if isinstance(d, bytes) else orjson.dumps(d))
            for i, d in enumerate(docs)
        ]

    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # Routable by the client, refused by PostgreSQL's jsonb: an exponent beyond numeric's range.
    tiny = f'{{"ts": "{point(2)["ts"]}", "lat": 1, "lon": 2, "n": 1.0e-999999}}'.encode()
    with psycopg.connect(make_conninfo(db, user=SERVICE_ROLE), row_factory=dict_row) as svc:
        svc.execute("SELECT lake.authenticate(%s, 'transaction')", [keys["alice"][1]])
        before = store_batches(svc, "location_history", [(b, chunk(records(5, 0)))], None)
        svc.commit()
        svc.execute("SELECT lake.authenticate(%s, 'transaction')", [keys["alice"][1]])
        batches = [
            (a, chunk(records(7))),
            (b, chunk(records(5, 0))),
            (a, chunk(records(7))),
            (c, chunk([point(1), tiny])),
        ]
        results = store_batches(svc, "location_history", batches, "together")
        svc.commit()
    assert [(r.batch_id, r.received, r.accepted, r.duplicate) for r in before] == [(b, 5, 5, False)]
    # A duplicate's counts are not the stream's (Ingest counts a batch when it is stored).
    assert [(r.batch_id, r.duplicate, r.fallback) for r in results] == [
        (a, False, False),
        (b, True, False),
        (a, True, False),  # sent twice in one group: stored once
        (c, False, True),
    ]
    assert [(r.received, r.accepted, r.quarantined) for r in results if not r.duplicate] == [
        (7, 6, 1),
        (2, 1, 1),
    ]
    stored = conn.execute(
        "SELECT batch_id, count(*) FROM user_data.location_history GROUP BY 1"
    ).fetchall()
    assert dict(stored) == {a: 6, b: 5, c: 1}
    origins = conn.execute(
        "SELECT id, origin, received FROM lake.batches WHERE id = ANY(%s)", [[a, b, c]]
    ).fetchall()
    assert sorted(origins, key=str) == sorted(
        [(a, "together", 7), (b, None, 5), (c, "together", 2)], key=str
    )
    # History in two batches stored together: one archive file for its month, not one a batch.
    old = {**point(1), "ts": (datetime.now(UTC) - timedelta(days=800)).isoformat()}
    d, e = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(make_conninfo(db, user=SERVICE_ROLE), row_factory=dict_row) as svc:
        svc.execute("SELECT lake.authenticate(%s, 'transaction')", [keys["alice"][1]])
        both = [(d, chunk([old, point(1)])), (e, chunk([old]))]
        results = store_batches(svc, "location_history", both, None)
        svc.commit()
    assert [(r.batch_id, r.accepted, r.archived) for r in results] == [(d, 1, 1), (e, 0, 1)]
    archives = conn.execute(
        "SELECT status, rows, path FROM lake.archives WHERE dataset = 'location_history'"
    ).fetchall()
    assert [(status, rows) for status, rows, _ in archives] == [("dropped", 2)]
    with gzip.open(str(archives[0][2]), "rt", encoding="utf-8") as f:  # each line's own batch
        assert sorted(json.loads(line)["batch_id"] for line in f) == sorted([str(d), str(e)])


@pytest.mark.fast
def test_ingest_groups_what_has_arrived_in_order_and_reads_little_ahead() -> None:
    """The batches of an Ingest call come out in groups of one dataset and origin, in the order
    sent, of at most GROUP_RECORDS records (plus the last batch taken); the reading thread is
    never more than a short queue ahead of the groups stored, however long the stream."""
    produced = 0

    def stream() -> Iterator[Any]:
        nonlocal produced
        for i in range(80):
            produced += 1
            yield lake_pb2.IngestBatch(
                dataset="d", batch_id=str(i), records=[b"{}"] * 400, origin="o" if i < 50 else "p"
            )

    incoming = grpc_server._Incoming(stream())
    seen: list[str] = []
    for group in incoming.groups():
        time.sleep(0.01)  # the group's store: the reader goes on meanwhile
        assert produced - len(seen) - len(group) <= grpc_server.GROUP_BATCHES + 2
        assert len({(b.dataset, b.origin) for b in group}) == 1
        assert sum(len(b.records) for b in group) < grpc_server.GROUP_RECORDS + MAX_BATCH
        seen += [b.batch_id for b in group]
    incoming.close()
    assert seen == [str(i) for i in range(80)]

    def broken() -> Iterator[Any]:
        yield lake_pb2.IngestBatch(dataset="d", batch_id="0", records=[b"{}"])
        raise RuntimeError("the call ended")

    incoming = grpc_server._Incoming(broken())
    with pytest.raises(RuntimeError, match="the call ended"):
        for _ in incoming.groups():
            pass
    incoming.close()


def test_refused_identities(conn: Conn, keys: dict, serve: Serve) -> None:
    target = serve()
    with client(target, keys["alice"]) as alice:
        assert list(alice.query("location_history")) == []
    conn.execute("SELECT lake.revoke_api_key(%s)", [keys["alice"][0]])
    with client(target, keys["alice"]) as alice, pytest.raises(errors.AuthenticationFailed):
        list(alice.query("location_history"))
    with (
        client(target, ("", "lake_0000000000000000_" + "x" * 43)) as nobody,
        pytest.raises(errors.AuthenticationFailed),
    ):
        nobody.ingest("location_history", records(3))
    # A user's key may not name another user; a service only enabled users of kind user.
    with client(target, keys["bob"], act_for="alice") as bob, pytest.raises(errors.IdentityError):
        list(bob.query("location_history"))
    with client(target, keys["gw"], act_for="ops") as gw, pytest.raises(errors.IdentityError):
        list(gw.query("location_history"))
    # Nothing stored by the refused calls.
    assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (0,)


def test_identity_is_per_call_on_pooled_connections_under_concurrency(
    conn: Conn, keys: dict, serve: Serve
) -> None:
    target = serve(workers=2)  # two pooled connections for every call of the threads
    for user, n in (("alice", 5), ("bob", 3)):
        with client(target, keys[user]) as lake:
            lake.ingest("location_history", records(n, bad_every=0))
    wrong: list[object] = []
    calls: list[str] = []

    def work(name: str, key: tuple[str, str], act_for: str | None, expect: set[str]) -> None:
        with client(target, key, act_for=act_for) as lake:
            for _ in range(15):
                try:
                    got = {r["user_id"] for r in lake.query("location_history")}
                except errors.LakeError as exc:
                    got = {type(exc).__name__}
                calls.append(name)
                if got != expect:
                    wrong.append((name, got))

    threads = [
        threading.Thread(target=work, args=args)
        for args in (
            ("alice", keys["alice"], None, {"alice"}),
            ("bob", keys["bob"], None, {"bob"}),
            ("gw-alice", keys["gw"], "alice", {"alice"}),
            ("gw-bob", keys["gw"], "bob", {"bob"}),
            ("gw-alone", keys["gw"], None, set()),
            ("bad key", ("", "lake_0000000000000000_" + "y" * 43), None, {"AuthenticationFailed"}),
        )
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [] and len(calls) == 90
    # The server's connections hold no identity between calls.
    rows = conn.execute(
        "SELECT count(*) FROM lake_internal.session_identity s JOIN pg_stat_activity a "
        "ON a.pid = s.backend_pid WHERE a.application_name = %s AND s.act_scope = 'session'",
        [APPLICATION_NAME],
    ).fetchone()
    assert rows == (0,)


def test_a_deadline_cancels_the_statement(db: str, conn: Conn, keys: dict, serve: Serve) -> None:
    target = serve()
    with psycopg.connect(db) as locker:  # the query waits for this lock until cancelled
        locker.execute("LOCK TABLE user_data.location_history IN ACCESS EXCLUSIVE MODE")
        with client(target, keys["alice"]) as alice, pytest.raises(DeadlineExceeded):
            list(alice.query("location_history", timeout=0.1))
        # While the lock is still held, no statement of the service runs or waits.
        for _ in range(200):
            active = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'active'",
                [APPLICATION_NAME],
            ).fetchone()
            if active == (0,):
                break
            time.sleep(0.05)
        assert active == (0,)
        locker.rollback()
    with client(target, keys["alice"]) as alice:  # the connection serves the next call
        assert list(alice.query("location_history")) == []


def test_the_server_caps_a_call_without_a_deadline(db: str, keys: dict, serve: Serve) -> None:
    target = serve(max_seconds=0.2)
    with psycopg.connect(db) as locker:
        locker.execute("LOCK TABLE user_data.location_history IN ACCESS EXCLUSIVE MODE")
        with (
            GrpcLake(target, keys["alice"][1], timeout=None) as alice,
            pytest.raises(DeadlineExceeded) as err,
        ):
            list(alice.query("location_history"))
        locker.rollback()
    assert err.value.sqlstate == "57014"  # statement_timeout, sent back as the lake's error


@contextlib.contextmanager
def lake_grpc(db: str) -> Iterator[str]:
    """`lake grpc` as a process of its own on a free port; its target. SIGINT at the end, as
    Ctrl-C."""
    argv = [str(Path(sys.executable).parent / "lake"), "grpc", "--port", "0"]
    argv += ["--dsn", make_conninfo(db, user=SERVICE_ROLE)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"on (127\.0\.0\.1:\d+)", line)
        assert found is not None, line + proc.stdout.read()
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_changes_resume_from_a_cursor_after_a_restart(
    db: str, conn: Conn, keys: dict, serve: Serve
) -> None:
    with lake_grpc(db) as first:
        for user in ("alice", "bob", "alice"):
            with client(first, keys[user]) as lake:
                lake.ingest("location_history", records(4, bad_every=0), batch_size=1)
        seal(conn)
        with client(first, keys["alice"]) as alice:
            everything = list(alice.changes())
            cursor = next(iter(alice.changes(everything[2]["id"] - 1)))["id"]
    # A batch is one event (the COPY path): alice's 8 batches, none of bob's, in commit order.
    assert len(everything) == 8 and {c["user_id"] for c in everything} == {"alice"}
    assert [c["id"] for c in everything] == sorted(c["id"] for c in everything)
    assert cursor == everything[2]["id"]
    with lake_grpc(db) as second, client(second, keys["alice"]) as alice:
        assert list(alice.changes(cursor)) == everything[3:]
        # Followed: a change committed while the stream is open arrives.
        got: list[dict] = []

        def follow() -> None:
            for change in alice.changes(everything[-1]["id"], follow=True, timeout=30):
                got.append(change)
                break  # the client cancels the call

        t = threading.Thread(target=follow)
        t.start()
        alice.ingest("location_history", records(2, bad_every=0))
        seal(conn)
        t.join()
    assert len(got) == 1 and got[0]["id"] > everything[-1]["id"] and got[0]["user_id"] == "alice"


def test_administrator_methods(conn: Conn, keys: dict, serve: Serve) -> None:
    target = serve()
    schema = {"type": "object", "required": ["ts", "v"], "properties": {"v": {"type": "number"}}}
    with client(target, keys["alice"]) as alice, pytest.raises(errors.IdentityError):
        alice.create_dataset("steps", schema)
    with client(target, keys["ops"]) as ops:
        assert ops.create_dataset("steps", schema)["name"] == "steps"
        with pytest.raises(errors.DatasetExists):
            ops.create_dataset("steps", schema)
    with client(target, keys["alice"]) as alice:
        bad = [{"ts": "2026-11-26T08:00:00Z", "v": "x"}, {"ts": "2026-11-26T09:00:00Z", "v": "y"}]
        assert alice.ingest("steps", bad).quarantined == 2
    with client(target, keys["ops"]) as ops:
        items = ops.quarantine("steps")
        assert [i["user_id"] for i in items] == ["alice", "alice"]
        released = ops.quarantine_release(items[0]["id"], {"ts": "2026-11-26T08:00:00Z", "v": 1})
        assert released["status"] in ("released", "corrected")
        assert ops.quarantine_discard(items[1]["id"], "junk")["status"] == "discarded"
        assert ops.quarantine("steps") == []
    assert conn.execute("SELECT user_id, doc->>'v' FROM user_data.steps").fetchall() == [
        ("alice", "1")
    ]


def test_health_the_standard_health_service_and_reflection(keys: dict, serve: Serve) -> None:
    target = serve()
    with client(target, keys["alice"]) as alice:
        assert alice.health()["postgres"] == "ok"
    with channel(target) as ch:
        check = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="datapunk.lake.v1.Lake"), timeout=5
        )
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"datapunk.lake.v1.Lake", "grpc.health.v1.Health"} <= names


def test_an_unreachable_service_is_a_connection_failure() -> None:
    # The service config's retries (UNAVAILABLE, 3 attempts) end in the lake's own error.
    (port,) = free_ports(1)
    with (
        GrpcLake(f"127.0.0.1:{port}", "lake_x") as lake,
        pytest.raises(errors.ConnectionFailed),
    ):
        lake.health()


@pytest.mark.fast
def test_plaintext_needs_to_be_asked_for(tmp_path: Path) -> None:
    # No certificate and no insecure=True; or both: neither says what to serve.
    with pytest.raises(errors.ConfigurationError):
        make_server("dbname=none")
    with pytest.raises(errors.ConfigurationError):
        make_server("dbname=none", tls=ServerFiles(tmp_path / "a", tmp_path / "b"), insecure=True)
    # A TLS channel needs a CA it can read.
    with pytest.raises(errors.ConfigurationError, match="TLS files"):
        channel("127.0.0.1:1", ca_file=tmp_path / "missing.crt")


@pytest.mark.fast
def test_the_generated_code_is_the_protos(tmp_path: Path) -> None:
    # Built from proto/ at install time (setup.py); after an edit of the .proto, `make proto`.
    import runpy

    shutil.copytree(CHECKOUT / "proto", tmp_path / "proto")
    runpy.run_path(str(CHECKOUT / "proto" / "generate.py"))["generate"](tmp_path)
    ours, fresh = CHECKOUT / "lake_client" / "lakepb", tmp_path / "lake_client" / "lakepb"
    names = ["__init__.py", "lake_pb2.py", "lake_pb2.pyi", "lake_pb2_grpc.py"]
    _same, mismatch, missing = filecmp.cmpfiles(ours, fresh, names, shallow=False)
    assert (mismatch, missing) == ([], []), "run `make proto`"
