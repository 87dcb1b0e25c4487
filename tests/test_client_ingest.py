"""Lake.ingest: COPY in batches, validated in the database, nothing lost, bad input handled."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from lake_client.client import BatchResult, Lake, RetryPolicy
from lake_client.errors import ConnectionFailed, DatabaseError, IdentityError, UnknownDataset
from lake_client.records import Record

NOW = datetime.now(UTC)


def rec(i: int, **extra: object) -> dict[str, object]:
    ts = (NOW - timedelta(minutes=i + 1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"ts": ts, "lat": 10.0 + i % 50, "lon": 20.0, "source": "gps", **extra}


@pytest.fixture
def alice(lake: Lake, location_dataset: str) -> Lake:
    lake.act_as("alice")
    return lake


def counts(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM user_data.location_history),"
        " (SELECT count(*) FROM lake.quarantine),"
        " (SELECT sum(received) FROM lake.batches), (SELECT sum(accepted) FROM lake.batches),"
        " (SELECT sum(quarantined) FROM lake.batches)"
    ).fetchone()
    assert row is not None
    return row


def test_batches_counts_and_reasons(alice: Lake, conn: psycopg.Connection[tuple[object, ...]]):
    records = [rec(i) for i in range(2500)]
    for i in range(0, 2500, 100):
        records[i] = rec(i, lat=-91.5)
    summary = alice.ingest("location_history", records, batch_size=1000)
    assert [b.received for b in summary.batches] == [1000, 1000, 500]
    assert (summary.received, summary.accepted, summary.quarantined) == (2500, 2475, 25)
    assert counts(conn) == (2475, 25, 2500, 2475, 25)
    assert [(r.rule, r.records) for r in summary.reasons] == [("minimum", 25)]
    assert all(not b.fallback for b in summary.batches)
    owners = conn.execute("SELECT DISTINCT user_id FROM user_data.location_history").fetchall()
    assert owners == [("alice",)]


BAD_INPUTS = {
    "nul escape": b'{"ts": "%s", "lat": 1, "lon": 2, "note": "a\\u0000b"}',
    "nul byte": b'{"ts": "%s", "lat": 1, "lon": 2, "note": "a\x00b"}',
    "invalid utf-8": b'{"ts": "%s", "lat": 1, "lon": 2, "note": "caf\xe9"}',
    "number beyond numeric": b'{"ts": "%s", "lat": 1, "lon": 2, "n": 1e999999}',
    "not json": b"this is not json (%s)",
    "truncated": b'{"ts": "%s", "lat": 1, "lo',
    "array": b'[{"ts": "%s", "lat": 1, "lon": 2}]',
    "string": b'"%s"',
    "null": b"null",
    "bad time": b'{"ts": "%s but later", "lat": 1, "lon": 2}',
}


def test_bad_input_is_quarantined_with_reasons(
    alice: Lake, conn: psycopg.Connection[tuple[object, ...]]
):
    ts = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    records = [Record(name, raw.replace(b"%s", ts)) for name, raw in BAD_INPUTS.items()]
    records += [Record("good", json.dumps(rec(1)).encode())]
    summary = alice.ingest("location_history", records)
    assert (summary.received, summary.accepted, summary.quarantined) == (11, 1, 10)
    rows = dict(
        conn.execute("SELECT record_ref, reasons->0->>'rule' FROM lake.quarantine").fetchall()
    )
    assert rows == {
        "nul escape": "json_invalid",
        "nul byte": "encoding_invalid",
        "invalid utf-8": "encoding_invalid",
        "number beyond numeric": "number_out_of_range",
        "not json": "json_invalid",
        "truncated": "json_invalid",
        "array": "time_missing",
        "string": "time_missing",
        "null": "time_missing",
        "bad time": "time_unparseable",
    }
    raw = conn.execute(
        "SELECT raw FROM lake.quarantine WHERE record_ref = 'invalid utf-8'"
    ).fetchone()
    assert raw is not None and bytes(raw[0]) == records[2].raw, "the exact bytes are kept"


def test_deep_nesting_and_huge_documents(alice: Lake, conn: psycopg.Connection[tuple[object, ...]]):
    ts = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    nest = 10_000
    deep = f'{{"ts": "{ts}", "lat": 1, "lon": 2, "x": {"[" * nest}1{"]" * nest}}}'
    huge = json.dumps({"ts": ts, "lat": 1, "lon": 2, "blob": "y" * (100 * 1024 * 1024)})
    summary = alice.ingest(
        "location_history", [Record("deep", deep.encode()), Record("huge", huge.encode())]
    )
    assert (summary.accepted, summary.quarantined) == (0, 2)
    rows = dict(
        conn.execute("SELECT record_ref, reasons->0->>'rule' FROM lake.quarantine").fetchall()
    )
    assert rows == {"deep": "too_deep", "huge": "too_large"}
    size = conn.execute(
        "SELECT octet_length(raw) FROM lake.quarantine WHERE record_ref = 'huge'"
    ).fetchone()
    assert size == (len(huge),), "nothing lost: the whole document is kept"


def test_retry_of_a_committed_batch_is_recognised(
    alice: Lake, conn: psycopg.Connection[tuple[object, ...]]
):
    ns = uuid.uuid4()
    records = [rec(i) for i in range(300)]
    first = alice.ingest("location_history", records, batch_size=100, batch_namespace=ns)
    again = alice.ingest("location_history", records, batch_size=100, batch_namespace=ns)
    assert [b.duplicate for b in again.batches] == [True, True, True]
    assert [(b.received, b.accepted) for b in again.batches] == [
        (b.received, b.accepted) for b in first.batches
    ]
    assert counts(conn)[:3] == (300, 0, 300)


def test_errors_are_lake_errors(lake: Lake, location_dataset: str):
    with pytest.raises(IdentityError) as err:
        lake.ingest("location_history", [rec(1)])
    assert err.value.hint and "act_as" in err.value.hint
    lake.act_as("alice")
    with pytest.raises(UnknownDataset):
        lake.ingest("no_such_dataset", [rec(1)], retry=RetryPolicy(attempts=1))


def test_copy_failure_falls_back_to_per_record_ingest(
    alice: Lake, conn: psycopg.Connection[tuple[object, ...]]
):
    # Routable by the client (Python reads it as 0.0) but refused by PostgreSQL's jsonb parser:
    # an exponent beyond numeric's range.
    records = [
        rec(1),
        Record(
            "tiny",
            f'{{"ts": "{rec(2)["ts"]}", "lat": 1, "lon": 2, "n": 1.0e-999999}}'.encode(),
        ),
        rec(3),
    ]
    summary = alice.ingest("location_history", records)
    assert summary.batches[0].fallback
    assert (summary.accepted, summary.quarantined) == (2, 1)
    assert conn.execute("SELECT reasons->0->>'rule' FROM lake.quarantine").fetchone() == (
        "number_out_of_range",
    )


def test_lost_acknowledgement_is_retried_without_duplicates(
    db: str, location_dataset: str, conn: psycopg.Connection[tuple[object, ...]]
):
    from tests.pgproxy import AckLosingProxy

    proxy = AckLosingProxy(db)
    try:
        with Lake(proxy.dsn) as lake:
            lake.act_as("alice")
            records = [rec(i) for i in range(250)]
            proxy.drop_next_commit_ack = True
            summary = lake.ingest(
                "location_history",
                records,
                batch_size=100,
                retry=RetryPolicy(attempts=3, first_delay=0.05),
                jobs=1,  # the first COMMIT is then the first batch's (not lake.server_cores')
            )
    finally:
        proxy.close()
    assert proxy.dropped == 1
    first = summary.batches[0]
    assert first.duplicate and first.attempts == 2, "the retry found the committed batch"
    assert (summary.received, summary.accepted) == (250, 250)
    assert counts(conn)[:3] == (250, 0, 250), "stored once"


def test_parallel_sessions_store_everything_once(
    alice: Lake, conn: psycopg.Connection[tuple[object, ...]]
):
    records = [rec(i) for i in range(3000)]
    for i in range(0, 3000, 150):
        records[i] = rec(i, lat=-95.0)
    ns = uuid.uuid4()
    summary = alice.ingest("location_history", records, batch_size=250, jobs=2, batch_namespace=ns)
    assert len(summary.batches) == 12
    assert (summary.received, summary.accepted, summary.quarantined) == (3000, 2980, 20)
    assert counts(conn) == (2980, 20, 3000, 2980, 20)
    owners = conn.execute("SELECT DISTINCT user_id FROM user_data.location_history").fetchall()
    assert owners == [("alice",)], "the second session acted for the same user"
    again = alice.ingest("location_history", records, batch_size=250, jobs=2, batch_namespace=ns)
    assert all(b.duplicate for b in again.batches) and counts(conn)[0] == 2980


def test_a_failing_batch_stops_every_session_and_on_batch_saw_exactly_what_committed(
    alice: Lake, conn: psycopg.Connection[tuple[object, ...]]
):
    """A fault of the database for one record (a test trigger on the inbox) fails its batch:
    the load stops on every session and raises the error; the batches on_batch was told of are
    exactly those stored, each whole, and they arrive in order of their first record."""
    conn.execute(
        "CREATE FUNCTION public.fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.doc ? 'boom' THEN RAISE EXCEPTION 'a test fault: boom'; END IF;"
        " RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER fail_on_boom BEFORE INSERT ON inbox.location_history"
        " FOR EACH ROW EXECUTE FUNCTION public.fail_on_boom()"
    )
    records = [rec(i) for i in range(3000)]
    records[1234]["boom"] = True  # in the 13th batch of 30
    told: list[BatchResult] = []
    with pytest.raises(DatabaseError, match="a test fault: boom"):
        alice.ingest(
            "location_history",
            records,
            batch_size=100,
            jobs=3,
            on_batch=lambda result, _nbytes: told.append(result),
        )
    stored = conn.execute(
        "SELECT b.id, b.received, (SELECT count(*) FROM user_data.location_history d"
        " WHERE d.batch_id = b.id) FROM lake.batches b"
    ).fetchall()
    assert {b.batch_id for b in told} == {row[0] for row in stored}
    assert all(received == rows == 100 for _, received, rows in stored)
    assert 1201 not in {b.first for b in told}
    assert {b.first for b in told} <= set(range(1, 3000, 100))
    # The session that loaded (the first of the three) is usable again.
    assert alice.current_user_id() == "alice"


def test_a_lost_reply_to_the_set_up_is_retried(db: str, location_dataset: str):
    """The connection set-up (settings, then the session's identity, then COMMIT) is retried like
    a batch when the reply to its COMMIT is lost; without attempts left, a LakeError arrives."""
    from tests.pgproxy import AckLosingProxy

    proxy = AckLosingProxy(db)
    try:
        with Lake(proxy.dsn, retry=RetryPolicy(attempts=3, first_delay=0.05)) as lake:
            proxy.drop_next_commit_ack = True
            lake.act_as("alice")
            assert proxy.dropped == 1, "the first set-up's COMMIT reply was lost"
            assert lake.current_user_id() == "alice"
            # A new connection establishes the identity again, in a set-up that is retried too.
            lake.conn.close()
            proxy.drop_next_commit_ack = True
            summary = lake.ingest("location_history", [rec(1)])
            assert proxy.dropped == 2
            assert (summary.accepted, summary.batches[0].attempts) == (1, 1)
        with Lake(proxy.dsn, retry=RetryPolicy(attempts=1)) as lake:
            proxy.drop_next_commit_ack = True
            with pytest.raises(ConnectionFailed):
                lake.act_as("alice")
            assert proxy.dropped == 3
    finally:
        proxy.close()
