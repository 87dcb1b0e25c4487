"""Quarantine in bulk (lake.quarantine_decide, lake.quarantine_pending) and corrections
(lake.quarantine_correct): dry runs, filters, permissions, and counts that still add up."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import ADMIN_ROLE, APP_ROLE, LOCATION_SCHEMA
from tests.test_cli import lake as cli

Conn = psycopg.Connection[Any]
NOW = datetime.now(UTC)
TS = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
LONG = "walking slowly along the river bank"  # 35 characters: maxLength 32 in version 1


def ingest(conn: Conn, user: str, records: list[dict[str, Any]]) -> str:
    (batch,) = conn.execute(
        "SELECT id FROM lake.ingest('location_history', %s, for_user => %s)",
        [Jsonb(records), user],
    ).fetchone()
    return str(batch)


@pytest.fixture
def batches(conn: Conn, location_dataset: str) -> dict[str, str]:
    """alice: 3 records with an activity too long for version 1 of the schema, 2 with a latitude
    beyond 90, 1 valid; bob: 2 with a long activity, 1 with an activity too long for any version;
    an unparseable line of alice's. Then version 2 of the schema allows activities of 40."""
    a = ingest(
        conn,
        "alice",
        [{"ts": TS, "lat": 1, "lon": 2, "activity": LONG}] * 3
        + [{"ts": TS, "lat": 95, "lon": 2}] * 2
        + [{"ts": TS, "lat": 1, "lon": 2}],
    )
    b = ingest(
        conn,
        "bob",
        [{"ts": TS, "lat": 3, "lon": 4, "activity": LONG}] * 2
        + [{"ts": TS, "lat": 3, "lon": 4, "activity": "x" * 50}],
    )
    conn.autocommit = False
    conn.execute("SELECT lake.act_as('alice')")
    raw = uuid.uuid4()
    conn.execute("SELECT lake.begin_batch('location_history', %s, NULL)", [raw])
    conn.execute(
        "SELECT lake.ingest_raw('location_history', %s, ARRAY['line 9'], ARRAY['{oops'::bytea])",
        [raw],
    )
    conn.commit()
    conn.autocommit = True
    props = {**LOCATION_SCHEMA["properties"], "activity": {"type": "string", "maxLength": 40}}
    conn.execute(
        "SELECT lake.evolve_schema('location_history', %s)",
        [Jsonb({**LOCATION_SCHEMA, "properties": props})],
    )
    return {"alice": a, "bob": b, "raw": str(raw)}


def decide(conn: Conn, action: str, **kw: Any) -> dict[str, Any]:
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    (report,) = conn.execute(
        f"SELECT lake.quarantine_decide(%(action)s{', ' if kw else ''}{args})",
        {"action": action, **kw},
    ).fetchone()
    return dict(report)


def state(conn: Conn) -> list[Any]:
    """Everything a decision may change."""
    return [
        conn.execute(
            "SELECT id, status, reasons, schema_version, decided_at, released_batch"
            " FROM lake.quarantine ORDER BY id"
        ).fetchall(),
        conn.execute("SELECT * FROM lake.batches ORDER BY id").fetchall(),
        conn.execute("SELECT id, doc FROM user_data.location_history ORDER BY id").fetchall(),
        conn.execute("SELECT count(*) FROM lake.audit_pending").fetchone(),
        conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.location_history'"
            "::regclass"
        ).fetchone(),
    ]


def counts_hold(conn: Conn) -> None:
    """Each batch adds up; the quarantine holds what the batches quarantined; the table holds
    what they accepted; every item is pending or decided once."""
    row = conn.execute(
        "SELECT bool_and(received = accepted + archived + quarantined), sum(quarantined),"
        " sum(accepted) FROM lake.batches"
    ).fetchone()
    assert row is not None and row[0] is True
    assert conn.execute("SELECT count(*) FROM lake.quarantine").fetchone() == (row[1],)
    assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (row[2],)


def test_a_dry_run_changes_nothing_and_reports_what_the_decision_does(
    conn: Conn, batches: dict[str, str]
):
    before = state(conn)
    dry = decide(conn, "release", dataset="location_history")
    assert state(conn) == before, "a dry run changes nothing"
    assert dry["dry_run"] is True and dry["items"] == 9
    assert dry["outcomes"] == {"stored": 5, "invalid": 3, "no_record": 1}
    assert {"rule": "maxLength", "outcome": "stored", "items": 5} in dry["by_rule"]
    assert {"rule": "maxLength", "outcome": "invalid", "items": 1} in dry["by_rule"]
    assert {"rule": "maximum", "outcome": "invalid", "items": 2} in dry["by_rule"]

    done = decide(conn, "release", dataset="location_history", dry_run=False, note="v2 schema")
    assert {k: v for k, v in done.items() if k not in ("dry_run", "batches")} == {
        k: v for k, v in dry.items() if k not in ("dry_run", "batches")
    }
    assert dry["batches"] == [] and len(done["batches"]) == 2  # one per owner
    assert conn.execute(
        "SELECT status, user_id, count(*) FROM lake.quarantine GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall() == [
        ("pending", "alice", 3),
        ("pending", "bob", 1),
        ("released", "alice", 3),
        ("released", "bob", 2),
    ]
    assert conn.execute(
        "SELECT source, user_id, received, accepted FROM lake.batches WHERE source = 'release'"
        " ORDER BY user_id"
    ).fetchall() == [("release", "alice", 3, 3), ("release", "bob", 2, 2)]
    # Still invalid: pending, judged again by today's schema.
    assert conn.execute(
        "SELECT DISTINCT schema_version FROM lake.quarantine"
        " WHERE status = 'pending' AND doc IS NOT NULL"
    ).fetchall() == [(2,)]
    audited = conn.execute(
        "SELECT action, count(*) FROM lake.audit_pending WHERE action LIKE 'quarantine.%'"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert audited == [("quarantine.decide", 1), ("quarantine.release", 5)]
    counts_hold(conn)
    # Nothing is decided twice: the same call again finds the 4 items that stayed.
    again = decide(conn, "release", dataset="location_history", dry_run=False)
    assert again["outcomes"] == {"invalid": 3, "no_record": 1}
    counts_hold(conn)


def test_each_filter(conn: Conn, batches: dict[str, str]):
    def items(**kw: Any) -> int:
        return int(decide(conn, "release", **kw)["items"])

    assert items(batch_id=batches["alice"]) == 5
    assert items(batch_id=batches["raw"]) == 1
    assert items(user_id="bob") == 3
    assert items(rule="maximum") == 2
    assert items(rule="maxLength", user_id="alice") == 3
    assert items(dataset="nope") == 0
    conn.execute(
        "UPDATE lake.quarantine SET received_at = received_at - interval '3 days'"
        " WHERE user_id = 'bob'"
    )
    assert items(received_before=NOW - timedelta(days=1)) == 3
    assert items(received_from=NOW - timedelta(days=1)) == 6
    assert items(all_items=True) == 9
    rows = conn.execute(
        "SELECT count(*) FROM lake.quarantine_pending(user_id => 'bob', rule => 'maxLength')"
    ).fetchone()
    assert rows == (3,)


def test_refusals_say_why(conn: Conn, batches: dict[str, str]):
    for call, state_ in (
        ("SELECT lake.quarantine_decide('release')", "LK023"),
        ("SELECT lake.quarantine_decide('discard', all_items => true, dry_run => false)", "LK022"),
        ("SELECT lake.quarantine_decide('delete', dataset => 'location_history')", "LK005"),
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(call)
        assert err.value.sqlstate == state_
    with pytest.raises(psycopg.Error, match="all_items => true"):
        conn.execute("SELECT lake.quarantine_decide('discard', note => 'x')")


def test_discard_in_bulk(conn: Conn, batches: dict[str, str]):
    before = state(conn)
    dry = decide(conn, "discard", user_id="bob", note="test device")
    assert dry["outcomes"] == {"discarded": 3} and state(conn) == before
    done = decide(conn, "discard", user_id="bob", note="test device", dry_run=False)
    assert done["outcomes"] == {"discarded": 3}
    assert conn.execute(
        "SELECT status, decision_note, count(*) FROM lake.quarantine WHERE user_id = 'bob'"
        " GROUP BY 1, 2"
    ).fetchall() == [("discarded", "test device", 3)]
    assert conn.execute(
        "SELECT count(*) FROM lake.audit_pending WHERE action = 'quarantine.discard'"
    ).fetchone() == (3,)
    counts_hold(conn)


def test_a_correction_is_stored_once_and_a_failed_one_changes_nothing(
    conn: Conn, batches: dict[str, str]
):
    item, doc = conn.execute(
        'SELECT id, doc FROM lake.quarantine WHERE reasons @> \'[{"rule": "maximum"}]\''
        " ORDER BY id LIMIT 1"
    ).fetchone()
    still_bad = {**doc, "lat": 91}
    (out,) = conn.execute(
        "SELECT lake.quarantine_correct(%s, %s)", [item, Jsonb(still_bad)]
    ).fetchone()
    assert out["outcome"] == "invalid" and out["reasons"][0]["rule"] == "maximum"
    assert conn.execute(
        "SELECT status, doc FROM lake.quarantine WHERE id = %s", [item]
    ).fetchone() == ("pending", doc), "the item keeps the record that was sent"
    fixed = {**doc, "lat": 9.5}
    (out,) = conn.execute("SELECT lake.quarantine_correct(%s, %s)", [item, Jsonb(fixed)]).fetchone()
    assert out["outcome"] == "stored"
    (again,) = conn.execute(
        "SELECT lake.quarantine_correct(%s, %s, 'again')", [item, Jsonb(fixed)]
    ).fetchone()
    assert again == {**out, "outcome": "already_corrected"}
    assert conn.execute(
        "SELECT status, released_batch::text FROM lake.quarantine WHERE id = %s", [item]
    ).fetchone() == ("corrected", out["batch_id"])
    assert conn.execute(
        "SELECT count(*) FROM user_data.location_history WHERE doc->>'lat' = '9.5'"
    ).fetchone() == (1,)
    with pytest.raises(psycopg.Error) as err:  # a different correction of a decided item
        conn.execute("SELECT lake.quarantine_correct(%s, %s)", [item, Jsonb({**fixed, "lat": 8})])
    assert err.value.sqlstate == "LK021"
    counts_hold(conn)


def test_only_administrators_decide_in_bulk(conn: Conn, batches: dict[str, str], as_role: Any):
    app = as_role(APP_ROLE)
    for call in (
        "SELECT lake.quarantine_decide('release', all_items => true)",
        "SELECT lake.quarantine_correct(1, '{}')",
        "SELECT * FROM lake.quarantine_pending()",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(call)
    admin = as_role(ADMIN_ROLE)
    report = admin.execute(
        "SELECT lake.quarantine_decide('release', rule => 'maxLength', dry_run => false)"
    ).fetchone()
    assert report is not None and report[0]["outcomes"]["stored"] == 5
    assert admin.execute(
        "SELECT DISTINCT decided_by FROM lake.quarantine WHERE status = 'released'"
    ).fetchall() == [(ADMIN_ROLE,)]


def test_export_fix_import_round_trip(db: str, conn: Conn, batches: dict[str, str], tmp_path: Path):
    """A batch's pending items as a file; the person fixes one, fixes another badly and leaves
    the rest (valid under version 2 of the schema); the import stores four and says why the
    fifth is still invalid; importing the file again changes nothing."""
    path = tmp_path / "pending.jsonl"
    out = cli("quarantine", "export", "--batch", batches["alice"], "-o", str(path), dsn=db)
    assert "wrote 5 pending item(s)" in out.stdout
    items = [json.loads(line) for line in path.read_text().splitlines()]
    assert [i["record_ref"] for i in items] == [f"records[{n}]" for n in range(5)]
    assert items[3]["doc"]["lat"] == 95 and items[3]["reasons"][0]["rule"] == "maximum"
    items[3]["doc"]["lat"] = 45.5
    items[4]["doc"]["lat"] = 91
    path.write_text("".join(json.dumps(i) + "\n" for i in items))

    out = cli("quarantine", "import", str(path), dsn=db)
    assert "5 line(s): invalid 1, stored 4" in out.stdout
    assert f"line 5 (item {items[4]['id']}) still invalid: maximum at $.lat" in out.stdout
    assert conn.execute(
        "SELECT status, count(*) FROM lake.quarantine WHERE batch_id = %s GROUP BY 1 ORDER BY 1",
        [batches["alice"]],
    ).fetchall() == [("corrected", 4), ("pending", 1)]
    assert conn.execute(
        "SELECT doc->>'lat' FROM lake.quarantine WHERE id = %s", [items[4]["id"]]
    ).fetchone() == ("95",), "a failed correction leaves the item as it was sent"
    assert conn.execute(
        "SELECT count(*) FROM user_data.location_history WHERE doc->>'lat' = '45.5'"
    ).fetchone() == (1,)
    batches_before = conn.execute("SELECT count(*) FROM lake.batches").fetchone()
    counts_hold(conn)

    again = json.loads(cli("quarantine", "import", str(path), "--json", dsn=db).stdout)
    assert again["outcomes"] == {"already_corrected": 4, "invalid": 1}
    assert conn.execute("SELECT count(*) FROM lake.batches").fetchone() == batches_before
    counts_hold(conn)

    # Bytes that never parsed: exported as raw text, given a doc, stored.
    raw = tmp_path / "raw.jsonl"
    doc = json.loads(
        cli(
            "quarantine", "export", "--batch", batches["raw"], "-o", str(raw), "--json", dsn=db
        ).stdout
    )
    assert doc == {"path": str(raw), "items": 1}
    (item,) = [json.loads(line) for line in raw.read_text().splitlines()]
    assert (item["doc"], item["raw"]) == (None, "{oops")
    raw.write_text(json.dumps({**item, "doc": {"ts": TS, "lat": 7, "lon": 7}}) + "\n")
    assert "stored 1" in cli("quarantine", "import", str(raw), dsn=db).stdout
    counts_hold(conn)


def test_bulk_decisions_from_the_cli(db: str, conn: Conn, batches: dict[str, str]):
    dry = cli("quarantine", "release", "--rule", "maxLength", dsn=db)
    assert "dry run of release on 6 item(s) awaiting a decision: invalid 1, stored 5" in dry.stdout
    assert "dry run: nothing changed" in dry.stderr + dry.stdout
    assert conn.execute(
        "SELECT count(*) FROM lake.quarantine WHERE status = 'pending'"
    ).fetchone() == (9,)
    done = json.loads(
        cli("quarantine", "release", "--rule", "maxLength", "--apply", "--json", dsn=db).stdout
    )
    assert (done["dry_run"], done["outcomes"]) == (False, {"invalid": 1, "stored": 5})
    out = cli("quarantine", "discard", "--reason", "x", dsn=db, check=False)
    assert out.returncode == 1 and "needs a filter" in out.stderr
    out = cli(
        "quarantine", "discard", "--user", "bob", "--reason", "test device", "--apply", dsn=db
    )
    assert "discard on 1 item(s) awaiting a decision: discarded 1" in out.stdout
    out = cli("quarantine", "release", "3", "--user", "bob", dsn=db, check=False)
    assert out.returncode == 2
    counts_hold(conn)


def test_a_release_follows_the_rules_of_ingest(
    conn: Conn, location_dataset: str, archive_dir: Path
):
    """History is no reason: a record older than the first month in the lake is released into
    its month's archive (counted archived), one in a month without a partition yet gets its
    partition. The dry run says so and writes neither the archive nor the partition."""
    old = (NOW - timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = (NOW + timedelta(days=150)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conn.execute("UPDATE lake.datasets SET max_future = '200 days' WHERE name = 'location_history'")
    ingest(conn, "alice", [{"ts": old, "lat": 1, "lon": 2, "activity": LONG}])
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(  # a plain INSERT makes no partition: quarantined as partition_missing
        "INSERT INTO user_data.location_history (ts, doc) VALUES (%s, %s)",
        [soon, Jsonb({"ts": soon, "lat": 1, "lon": 2})],
    )
    conn.execute("SELECT lake.reset_identity()")
    assert conn.execute(
        "SELECT reasons->0->>'rule' FROM lake.quarantine ORDER BY id"
    ).fetchall() == [("maxLength",), ("partition_missing",)]
    props = {**LOCATION_SCHEMA["properties"], "activity": {"type": "string", "maxLength": 40}}
    conn.execute(
        "SELECT lake.evolve_schema('location_history', %s)",
        [Jsonb({**LOCATION_SCHEMA, "properties": props})],
    )
    before = state(conn)
    dry = decide(conn, "release", user_id="alice")
    assert dry["outcomes"] == {"archived": 1, "stored": 1}
    assert state(conn) == before, "no partition was made"
    assert conn.execute("SELECT count(*) FROM lake.archives").fetchone() == (0,)
    assert list(archive_dir.rglob("*.jsonl*")) == [], "no archive was written"

    done = decide(conn, "release", user_id="alice", dry_run=False)
    assert done["outcomes"] == dry["outcomes"]
    assert conn.execute(
        "SELECT received, accepted, archived FROM lake.batches WHERE source = 'release'"
    ).fetchone() == (2, 1, 1)
    assert conn.execute(
        "SELECT rows, status FROM lake.archives WHERE dataset = 'location_history'"
    ).fetchall() == [(1, "dropped")]
    assert conn.execute("SELECT doc->>'ts' FROM user_data.location_history").fetchall() == [(soon,)]


def test_a_correction_keeps_personal_data_it_left_masked(conn: Conn, tmp_path: Path):
    """A dataset with pii_fields: the export shows masks; a line fixed elsewhere and imported
    stores the e-mail address as it was sent, not its mask."""
    schema = {
        "type": "object",
        "required": ["ts", "email", "n"],
        "properties": {
            "ts": {"type": "string"},
            "email": {"type": "string"},
            "n": {"type": "integer", "minimum": 0},
        },
    }
    conn.execute(
        "SELECT lake.create_dataset('contacts', %s, '{\"pii_fields\": [\"email\"]}')",
        [Jsonb(schema)],
    )
    conn.execute(
        "SELECT lake.ingest('contacts', %s, for_user => 'alice')",
        [Jsonb([{"ts": TS, "email": "alice@example.com", "n": -1}])],
    )
    db = conn.info.dsn
    path = tmp_path / "contacts.jsonl"
    cli("quarantine", "export", "--dataset", "contacts", "-o", str(path), dsn=db)
    (item,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert item["doc"]["email"] == "a***@example.com"
    path.write_text(json.dumps({**item, "doc": {**item["doc"], "n": 1}}) + "\n")
    assert "stored 1" in cli("quarantine", "import", str(path), dsn=db).stdout
    assert conn.execute(
        "SELECT lake_internal._pii_open(doc, pii)->>'email', doc->>'email' FROM user_data.contacts"
    ).fetchone() == ("alice@example.com", "a***@example.com")
