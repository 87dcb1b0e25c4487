"""lake.ingest(): the SQL ingest path, its batch summary and its quarantine."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[tuple[object, ...]]


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


NOW = datetime.now(UTC)


def good(i: int = 0, **extra: object) -> dict[str, object]:
    return {"ts": iso(NOW - timedelta(hours=i + 1)), "lat": 48.1, "lon": 11.5, **extra}


def ingest(conn: Conn, records: object, **kw: object) -> dict[str, object]:
    conn.execute("SELECT lake.act_as('alice')") if "for_user" not in kw else None
    cur = conn.execute(
        "SELECT * FROM lake.ingest('location_history', %s, %s, %s)",
        [Jsonb(records), kw.get("batch_id"), kw.get("for_user")],
    )
    assert cur.description is not None
    row = cur.fetchone()
    assert row is not None
    return dict(zip([c.name for c in cur.description], row, strict=True))


@pytest.fixture
def tx(conn: Conn, location_dataset: str) -> Conn:
    """Statements share a transaction so the transaction-scoped identity holds."""
    conn.autocommit = False
    return conn


def test_summary_and_quarantine_reasons(tx: Conn):
    records = [
        good(0),
        good(1, lat=123.0),  # schema: maximum
        {"ts": "yesterday", "lat": 1, "lon": 1},  # time unparseable
        {"lat": 1, "lon": 1},  # time missing (and required)
        good(2, source="carrier pigeon"),  # schema: enum
        {"ts": iso(NOW - timedelta(days=800)), "lat": 1, "lon": 1},  # history: archived
        {"ts": iso(NOW + timedelta(days=3)), "lat": 1, "lon": 1},  # in the future
        [1, 2, 3],  # not an object
        "just a string",
        {"ts": "2026-02-30T00:00:00Z", "lat": 1, "lon": 1},  # impossible date
        {"ts": "2026-11-26T08:00:00", "lat": 1, "lon": 1},  # no offset
        good(3),
    ]
    batch = ingest(tx, records)
    assert (batch["received"], batch["accepted"], batch["archived"], batch["quarantined"]) == (
        12,
        2,
        1,
        9,
    )
    assert batch["source"] == "sql"
    assert (
        batch["checksum"]
        == hashlib.sha256(
            tx.execute("SELECT %s::jsonb::text", [Jsonb(records)]).fetchone()[0].encode()  # type: ignore[index]
        ).hexdigest()
    )
    rows = tx.execute(
        "SELECT record_ref, reasons, status, review_by - received_at"
        " FROM lake.quarantine ORDER BY id"
    ).fetchall()
    rules = {ref: [r["rule"] for r in reasons] for ref, reasons, _, _ in rows}
    assert rules == {
        "records[1]": ["maximum"],
        "records[2]": ["time_unparseable", "format"],
        "records[3]": ["time_missing", "required"],
        "records[4]": ["enum"],
        "records[6]": ["time_in_future"],
        "records[7]": ["time_missing", "type"],
        "records[8]": ["time_missing", "type"],
        "records[9]": ["time_unparseable"],  # the shape of a date-time, but no such day
        "records[10]": ["time_unparseable", "format"],
    }
    for _, reasons, status, review in rows:
        assert status == "pending"
        assert review == timedelta(hours=24)
        for reason in reasons:
            assert set(reason) == {"path", "rule", "message"} and reason["message"]
    stored = tx.execute(
        "SELECT user_id, doc->>'ts' FROM user_data.location_history ORDER BY id"
    ).fetchall()
    assert stored == [("alice", records[0]["ts"]), ("alice", records[11]["ts"])]  # type: ignore[index]


def test_same_batch_id_is_not_ingested_twice(tx: Conn):
    bid = uuid.uuid4()
    first = ingest(tx, [good(0), good(1)], batch_id=bid)
    tx.commit()
    second = ingest(tx, [good(0), good(1)], batch_id=bid)
    assert second == first
    assert tx.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (2,)
    with pytest.raises(psycopg.Error) as err:
        ingest(tx, [good(5)], batch_id=bid)
    assert err.value.sqlstate == "LK030"


def test_records_must_be_an_array(tx: Conn):
    tx.execute("SELECT lake.act_as('alice')")
    with pytest.raises(psycopg.Error) as err:
        tx.execute("SELECT lake.ingest('location_history', '{\"ts\": 1}')")
    assert err.value.sqlstate == "LK006"


def test_no_identity_no_ingest(tx: Conn):
    with pytest.raises(psycopg.Error) as err:
        tx.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([good()])])
    assert err.value.sqlstate == "LK010"


def test_unknown_dataset(tx: Conn):
    tx.execute("SELECT lake.act_as('alice')")
    with pytest.raises(psycopg.Error) as err:
        tx.execute("SELECT lake.ingest('nope', %s)", [Jsonb([good()])])
    assert err.value.sqlstate == "LK003"


def test_admin_ingests_for_a_user(tx: Conn):
    batch = ingest(tx, [good()], for_user="bob")
    assert batch["user_id"] == "bob" and batch["accepted"] == 1
    assert tx.execute("SELECT user_id FROM user_data.location_history").fetchone() == ("bob",)


def test_partition_made_on_demand_inside_the_window(tx: Conn):
    tx.execute(
        "SELECT lake.create_dataset('soon', '{\"type\": \"object\"}',"
        ' \'{"premake": 1, "max_future": "90 days"}\')'
    )
    before = tx.execute("SELECT partitions_to FROM lake.datasets WHERE name = 'soon'").fetchone()
    tx.execute("SELECT lake.act_as('alice')")
    when = iso(NOW + timedelta(days=75))  # past the premade months, inside max_future
    batch = tx.execute(
        "SELECT accepted FROM lake.ingest('soon', %s)", [Jsonb([{"ts": when}])]
    ).fetchone()
    assert batch == (1,)
    after = tx.execute("SELECT partitions_to FROM lake.datasets WHERE name = 'soon'").fetchone()
    assert before is not None and after is not None and after[0] > before[0]
    assert tx.execute(
        "SELECT count(*) FROM lake.partitions WHERE dataset = 'soon'"
        " AND kind = 'month' AND %s::timestamptz >= range_from"
        " AND %s::timestamptz < range_to",
        [when, when],
    ).fetchone() == (1,)
    assert tx.execute("SELECT tableoid::regclass::text FROM user_data.soon").fetchone() == (
        "user_data_partitions.soon_p" + (NOW + timedelta(days=75)).strftime("%Y_%m"),
    )


def test_structured_reason_does_not_leak_whole_value(tx: Conn):
    secret = "x" * 10_000
    ingest(tx, [good(0, activity=secret)])
    (reasons,) = tx.execute("SELECT reasons FROM lake.quarantine").fetchone()  # type: ignore[misc]
    assert reasons[0]["rule"] == "maxLength"
    assert len(json.dumps(reasons)) < 1000


def test_offsets_beyond_postgresql_range_are_unparseable_not_fatal(tx: Conn):
    day = (NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    batch = ingest(
        tx,
        [
            {"ts": f"{day}T08:00:00+16:00", "lat": 1, "lon": 1},
            {"ts": f"{day}T08:00:00+15:59", "lat": 1, "lon": 1},
            {"ts": f"{day}T08:00:00-23:00", "lat": 1, "lon": 1},
        ],
    )
    assert (batch["accepted"], batch["quarantined"]) == (1, 2)
    rules = tx.execute("SELECT reasons->0->>'rule' FROM lake.quarantine").fetchall()
    assert rules == [("time_unparseable",), ("time_unparseable",)]


def test_pass_test_and_reasons_agree_at_every_bound(conn: Conn):
    """The pass test (lake_internal._passes_sql) and the lake's reasons (_lake_reasons) read the
    same limits (_limits): at each bound of the window, the retention and the partitions, a
    microsecond either side, and for documents around the size and depth limits, a record passes
    exactly when the lake finds no reason against it and it is not older than the first month in
    the lake (archive_before: such a record is valid history, for the month's archive)."""
    options = {"max_record_bytes": 2000, "max_depth": 3, "retention": "3 months"}
    # max_future beyond the premade months: the window reaches past the partitions.
    options["max_future"] = "1 year"
    conn.execute(
        "SELECT lake.create_dataset('bounds', %s, %s)", [Jsonb({"type": "object"}), Jsonb(options)]
    )
    conn.execute("CREATE TEMP TABLE verdicts (ts timestamptz, doc jsonb, ok boolean, why jsonb)")
    conn.execute(
        """
        DO $$
        DECLARE
            lim lake_internal.limits;
        BEGIN
            lim := (SELECT lake_internal._limits(d) FROM lake.datasets AS d);
            EXECUTE format($q$
                INSERT INTO verdicts
                SELECT x.ts, x.doc, %s, lake_internal._lake_reasons($1, 'alice', x.ts, x.doc)
                  FROM (SELECT b + s * interval '1 microsecond' AS ts, d AS doc
                          FROM unnest(ARRAY[($1).retention_from, ($1).archive_before,
                                            ($1).window_to, ($1).partitions_from,
                                            ($1).partitions_to]) AS b,
                               unnest(ARRAY[-1, 0, 1]) AS s,
                               unnest(ARRAY['{"a": 1}', '{"a": {"b": {"c": {"d": 1}}}}',
                                            '{"a": {"b": {"c": 1}}}',
                                            jsonb_build_object('a', repeat('x', 2500))]) AS d)
                       AS x$q$, lake_internal._passes_sql('true', 'x', 1))
            USING lim;
        END
        $$
        """
    )
    rows = conn.execute(
        "SELECT v.ok, v.why, v.ts < (lake_internal._limits(d)).archive_before"
        "  FROM verdicts AS v, lake.datasets AS d WHERE d.name = 'bounds'"
    ).fetchall()
    assert len(rows) == 5 * 3 * 4
    assert [r for r in rows if r[0] != (r[1] == [] and not r[2])] == []
    assert {r[2] for r in rows if r[1] == []} == {True, False}  # history passes the reasons
    assert {r[0] for r in rows} == {True, False}
    rules = conn.execute(
        "SELECT array_agg(DISTINCT r ->> 'rule' ORDER BY r ->> 'rule')"
        " FROM verdicts, jsonb_array_elements(why) AS r"
    ).fetchone()
    assert rules == (
        [
            "partition_missing",
            "time_in_future",
            "too_deep",
            "too_large",
        ],
    )
