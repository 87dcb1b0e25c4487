"""Living with datasets: lake.evolve_schema (a new JSON Schema version, with a dry run) and
lake.drop_dataset (refused while it holds rows; force; archive first, verified)."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import APP_ROLE, LOCATION_SCHEMA, seal

Conn = psycopg.Connection[tuple[object, ...]]


# The new version: an accuracy over 100 m is no longer accepted.
STRICTER = copy.deepcopy(LOCATION_SCHEMA)
STRICTER["properties"]["accuracy_m"]["maximum"] = 100  # type: ignore[index]


def scalar(conn: Conn, query: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def at(days_ago: int, accuracy: float, lat: float = 1.0) -> dict[str, object]:
    ts = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"ts": ts, "lat": lat, "lon": 2.0, "accuracy_m": accuracy}


def ingest_as(conn: Conn, user: str, records: list[dict[str, object]]) -> tuple[Any, ...]:
    conn.execute("SELECT lake.act_as(%s, 'session')", [user])
    row = conn.execute(
        "SELECT received, accepted, quarantined, id FROM lake.ingest('location_history', %s)",
        [Jsonb(records)],
    ).fetchone()
    conn.execute("SELECT lake.reset_identity()")
    assert row is not None
    return row


@pytest.fixture
def two_users(conn: Conn, location_dataset: str) -> dict[str, list[int]]:
    """alice: 3 good records and 7 over 100 m; bob: 1 over 100 m. Returns the ids of the records
    the stricter schema rejects, per user, in id order."""
    for user in ("alice", "bob"):
        conn.execute("SELECT lake.create_user(%s)", [user])
    alice = [at(1, 5.0), at(2, 50.0), at(3, 99.0)] + [at(4 + i, 500.0 + i) for i in range(7)]
    assert ingest_as(conn, "alice", alice)[:3] == (10, 10, 0)
    assert ingest_as(conn, "bob", [at(1, 1000.0, lat=3.0)])[:3] == (1, 1, 0)
    rows = conn.execute(
        "SELECT user_id, id FROM user_data.location_history"
        " WHERE (doc ->> 'accuracy_m')::numeric > 100 ORDER BY id"
    ).fetchall()
    out: dict[str, list[int]] = {"alice": [], "bob": []}
    for user, rid in rows:
        out[str(user)].append(int(str(rid)))
    return out


def state(conn: Conn) -> tuple[Any, ...]:
    return (
        scalar(conn, "SELECT schema_version FROM lake.datasets WHERE name = 'location_history'"),
        scalar(
            conn, "SELECT count(*) FROM lake.dataset_schemas WHERE dataset = 'location_history'"
        ),
        scalar(conn, "SELECT count(*) FROM user_data.location_history"),
        scalar(conn, "SELECT count(*) FROM lake.audit_log WHERE action = 'dataset.evolve'"),
    )


def test_dry_run_counts_every_users_rejected_rows_and_changes_nothing(
    conn: Conn, two_users: dict[str, list[int]]
):
    seal(conn)
    before = state(conn)
    report = scalar(
        conn,
        "SELECT lake.evolve_schema(dataset => 'location_history', json_schema => %s,"
        " dry_run => true)",
        [Jsonb(STRICTER)],
    )
    seal(conn)
    assert state(conn) == before == (1, 1, 11, 0)
    assert report["dry_run"] is True
    assert (report["current_version"], report["version"]) == (1, 2)
    assert (report["rows"], report["rejected"]) == (11, 8)
    rejected = sorted(two_users["alice"] + two_users["bob"])
    examples = report["examples"]
    assert [e["id"] for e in examples] == rejected[:5], "the first 5 in id order"
    for e in examples:
        assert [(r["path"], r["rule"]) for r in e["reasons"]] == [("$.accuracy_m", "maximum")]


def test_dry_run_of_a_schema_every_row_meets_reports_none(
    conn: Conn, two_users: dict[str, list[int]]
):
    report = scalar(
        conn, "SELECT lake.evolve_schema('location_history', %s, true)", [Jsonb(LOCATION_SCHEMA)]
    )
    assert (report["rows"], report["rejected"], report["examples"]) == (11, 0, [])


def test_evolve_puts_the_new_version_in_force_and_stored_rows_stay(
    conn: Conn, two_users: dict[str, list[int]]
):
    old_batches = scalar(
        conn,
        "SELECT array_agg(DISTINCT schema_version) FROM lake.batches"
        " WHERE dataset = 'location_history'",
    )
    assert old_batches == [1]
    report = scalar(
        conn,
        "SELECT lake.evolve_schema(dataset => 'location_history', json_schema => %s)",
        [Jsonb(STRICTER)],
    )
    assert report == {
        "dataset": "location_history",
        "dry_run": False,
        "previous_version": 1,
        "version": 2,
    }
    seal(conn)
    assert state(conn) == (2, 2, 11, 1)
    assert scalar(
        conn,
        "SELECT json_schema = %s FROM lake.dataset_schemas"
        " WHERE dataset = 'location_history' AND version = 2",
        [Jsonb(STRICTER)],
    )
    # New records are judged by version 2; the batch and the quarantine entry say so.
    received, accepted, quarantined, batch = ingest_as(conn, "alice", [at(1, 20.0), at(1, 500.0)])
    assert (received, accepted, quarantined) == (2, 1, 1)
    assert scalar(conn, "SELECT schema_version FROM lake.batches WHERE id = %s", [batch]) == 2
    assert conn.execute(
        "SELECT schema_version, reasons -> 0 ->> 'rule' FROM lake.quarantine WHERE batch_id = %s",
        [batch],
    ).fetchall() == [(2, "maximum")]
    # The rows stored under version 1 are all still there, in their batches of version 1.
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM user_data.location_history AS r JOIN lake.batches AS b"
            " ON b.id = r.batch_id WHERE b.schema_version = 1",
        )
        == 11
    )
    detail = scalar(conn, "SELECT detail FROM lake.audit_log WHERE action = 'dataset.evolve'")
    assert (detail["from_version"], detail["version"]) == (1, 2)


def test_evolve_refuses_a_bad_schema_an_unknown_dataset_and_applications(
    conn: Conn, location_dataset: str, as_role
):
    with pytest.raises(psycopg.Error) as bad:
        conn.execute(
            "SELECT lake.evolve_schema('location_history', %s)", [Jsonb({"type": "nonsense"})]
        )
    assert bad.value.sqlstate == "LK004"
    with pytest.raises(psycopg.Error) as missing:
        conn.execute("SELECT lake.evolve_schema('nope', %s)", [Jsonb(STRICTER)])
    assert missing.value.sqlstate == "LK003"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(APP_ROLE).execute(
            "SELECT lake.evolve_schema('location_history', %s)", [Jsonb(STRICTER)]
        )
    assert scalar(conn, "SELECT count(*) FROM lake.dataset_schemas") == 1


def gone(conn: Conn) -> tuple[Any, ...]:
    """What is left of location_history: tables and registry rows."""
    return (
        scalar(conn, "SELECT to_regclass('user_data.location_history') IS NULL"),
        scalar(conn, "SELECT to_regclass('inbox.location_history') IS NULL"),
        scalar(
            conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'user_data_partitions' AND c.relname LIKE 'location_history%%'",
        ),
        scalar(
            conn,
            "SELECT (SELECT count(*) FROM lake.datasets WHERE name = 'location_history')"
            " + (SELECT count(*) FROM lake.dataset_schemas WHERE dataset = 'location_history')"
            " + (SELECT count(*) FROM lake.batches WHERE dataset = 'location_history')"
            " + (SELECT count(*) FROM lake.quarantine WHERE dataset = 'location_history')"
            " + (SELECT count(*) FROM lake.partition_tiers WHERE dataset = 'location_history')",
        ),
    )


def test_drop_is_refused_while_the_dataset_holds_rows(conn: Conn, two_users: dict[str, list[int]]):
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("SELECT lake.drop_dataset('location_history')")
    assert refused.value.sqlstate == "LK090"
    assert "11 rows" in str(refused.value)
    assert "archive => true" in (refused.value.diag.message_hint or "")
    assert gone(conn)[:2] == (False, False)
    assert scalar(conn, "SELECT count(*) FROM user_data.location_history") == 11


def test_drop_with_force_removes_the_dataset_and_audits_it(
    conn: Conn, two_users: dict[str, list[int]]
):
    ingest_as(conn, "alice", [{"ts": "not a time", "lat": 1.0, "lon": 2.0}])  # one quarantined
    report = scalar(conn, "SELECT lake.drop_dataset(dataset => 'location_history', force => true)")
    assert (report["rows"], report["archived"], report["archive_ids"]) == (11, False, [])
    assert (report["quarantine_deleted"], report["batches_deleted"]) == (1, 3)
    assert gone(conn) == (True, True, 0, 0)
    seal(conn)
    detail = scalar(
        conn,
        "SELECT detail FROM lake.audit_log WHERE action = 'dataset.drop'"
        " AND object = 'location_history'",
    )
    assert (detail["rows"], detail["force"], detail["archive"]) == (11, True, False)
    # The name is free again.
    conn.execute("SELECT lake.create_dataset('location_history', %s)", [Jsonb(LOCATION_SCHEMA)])


def test_an_empty_dataset_drops_without_being_told(conn: Conn, location_dataset: str):
    report = scalar(conn, "SELECT lake.drop_dataset('location_history')")
    assert (report["rows"], report["archived"]) == (0, False)
    assert gone(conn) == (True, True, 0, 0)


def test_drop_with_archive_archives_every_month_verified_then_drops(
    conn: Conn, location_dataset: str, archive_dir: Path
):
    conn.execute("SELECT lake.create_user('alice')")
    records = [at(0, 1.0), at(1, 2.0), at(62, 3.0), at(150, 4.0), at(151, 5.0)]
    assert ingest_as(conn, "alice", records)[:3] == (5, 5, 0)
    stored = conn.execute(
        "SELECT lake.month_start(ts), count(*), array_agg(id ORDER BY id)"
        " FROM user_data.location_history GROUP BY 1 ORDER BY 1"
    ).fetchall()
    report = scalar(conn, "SELECT lake.drop_dataset('location_history', archive => true)")
    assert (report["rows"], report["archived"]) == (5, True)
    assert gone(conn) == (True, True, 0, 0)

    archives = conn.execute(
        "SELECT month, rows, sha256, path, status FROM lake.archives"
        " WHERE dataset = 'location_history' ORDER BY month"
    ).fetchall()
    assert [a[0] for a in archives] == [s[0] for s in stored], "one archive per month with rows"
    assert [a[1] for a in archives] == [s[1] for s in stored]
    assert {a[4] for a in archives} == {"dropped"}, "the files are now the only copy"
    assert sorted(report["archive_ids"]) == sorted(
        int(str(r[0]))
        for r in conn.execute(
            "SELECT id FROM lake.archives WHERE dataset = 'location_history'"
        ).fetchall()
    )
    archived_ids: list[int] = []
    for (_, rows, sha256, path, _), (_, _, ids) in zip(archives, stored, strict=True):
        content = gzip.decompress(Path(str(path)).read_bytes())
        assert hashlib.sha256(content).hexdigest() == sha256, "the file is what was recorded"
        assert content.count(b"\n") == rows
        archived_ids.extend(ids)  # type: ignore[arg-type]
        for rid in ids:  # type: ignore[union-attr]
            assert f'"id": {rid},'.encode() in content or f'"id":{rid},'.encode() in content
    assert len(archived_ids) == 5
    seal(conn)
    assert scalar(
        conn,
        "SELECT count(*) FROM lake.audit_log WHERE action = 'retention.archive'"
        " AND object LIKE 'location_history %%'",
    ) == len(stored)
    detail = scalar(conn, "SELECT detail FROM lake.audit_log WHERE action = 'dataset.drop'")
    assert (detail["rows"], detail["archive"]) == (5, True)


def test_dry_run_judges_pii_fields_as_sent_and_withholds_them(conn: Conn):
    conn.execute(
        "SELECT lake.create_dataset('location_history', %s, %s)",
        [Jsonb(LOCATION_SCHEMA), Jsonb({"pii_fields": ["device"]})],
    )
    conn.execute("SELECT lake.create_user('alice')")
    ingest_as(conn, "alice", [{**at(1, 5.0), "device": "phone-1234"}])
    masked = scalar(conn, "SELECT doc ->> 'device' FROM user_data.location_history")
    assert masked != "phone-1234", "stored masked"
    props = {**LOCATION_SCHEMA["properties"], "device": {"type": "string", "pattern": "^phone-"}}
    report = scalar(
        conn,
        "SELECT lake.evolve_schema('location_history', %s, dry_run => true)",
        [Jsonb({**LOCATION_SCHEMA, "properties": props})],
    )
    assert (report["rows"], report["rejected"]) == (1, 0)
    props["device"] = {"type": "string", "maxLength": 5}
    report = scalar(
        conn,
        "SELECT lake.evolve_schema('location_history', %s, dry_run => true)",
        [Jsonb({**LOCATION_SCHEMA, "properties": props})],
    )
    assert report["rejected"] == 1
    reasons = report["examples"][0]["reasons"]
    assert [(r["rule"], r["message"]) for r in reasons] == [
        ("maxLength", "withheld: the field holds personal data")
    ], "the clear value is not shown"
    assert "phone-1234" not in json.dumps(report)
