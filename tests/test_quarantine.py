"""Review decisions: lake.quarantine_release and lake.quarantine_discard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC)
TS = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def items(conn: Conn, location_dataset: str) -> dict[str, int]:
    """Quarantine items: a schema failure, a time failure and an unparseable line."""
    conn.autocommit = False
    conn.execute("SELECT lake.act_as('alice')")
    conn.execute(
        "SELECT lake.ingest('location_history', %s)",
        [
            Jsonb(
                [
                    {"ts": TS, "lat": 95, "lon": 2},
                    {"lat": 1, "lon": 2},
                ]
            )
        ],
    )
    conn.execute("SELECT lake.begin_batch('location_history', gen_random_uuid(), NULL)")
    batch = conn.execute("SELECT id FROM lake.batches WHERE source = 'client'").fetchone()
    assert batch is not None
    conn.execute(
        "SELECT lake.ingest_raw('location_history', %s, ARRAY['line 3'],"
        " ARRAY['{\"ts\": oops'::bytea])",
        [batch[0]],
    )
    conn.commit()
    conn.autocommit = True
    rows = conn.execute("SELECT reasons->0->>'rule', id FROM lake.quarantine").fetchall()
    return {str(rule): int(str(i)) for rule, i in rows}


def test_release_with_a_correction(conn: Conn, items: dict[str, int]):
    item = items["maximum"]
    batch = conn.execute(
        "SELECT source, user_id, received, accepted FROM"
        " lake.quarantine_release(%s, %s, 'typo in export')",
        [item, Jsonb({"ts": TS, "lat": 45, "lon": 2})],
    ).fetchone()
    assert batch == ("release", "alice", 1, 1)
    row = conn.execute(
        "SELECT status, decided_by, decision_note, released_batch IS NOT NULL"
        " FROM lake.quarantine WHERE id = %s",
        [item],
    ).fetchone()
    assert row == ("corrected", "postgres", "typo in export", True)
    assert conn.execute(
        "SELECT user_id, doc->>'lat' FROM user_data.location_history"
    ).fetchall() == [("alice", "45")]


def test_release_of_a_still_invalid_record_changes_nothing(conn: Conn, items: dict[str, int]):
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.quarantine_release(%s)", [items["maximum"]])
    assert err.value.sqlstate == "LK022"
    assert "maximum" in (err.value.diag.message_detail or "")
    assert conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM lake.quarantine"
    ).fetchone() == (3, 3)
    assert conn.execute(
        "SELECT count(*) FROM lake.batches WHERE source = 'release'"
    ).fetchone() == (0,)


def test_unparseable_items_need_a_correction(conn: Conn, items: dict[str, int]):
    item = items["json_invalid"]
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.quarantine_release(%s)", [item])
    assert err.value.sqlstate == "LK022"
    conn.execute(
        "SELECT lake.quarantine_release(%s, %s)", [item, Jsonb({"ts": TS, "lat": 1, "lon": 2})]
    )
    assert conn.execute("SELECT status FROM lake.quarantine WHERE id = %s", [item]).fetchone() == (
        "corrected",
    )


def test_discard_needs_a_reason_and_is_final(conn: Conn, items: dict[str, int]):
    item = items["time_missing"]
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.quarantine_discard(%s, '  ')", [item])
    assert err.value.sqlstate == "LK022"
    conn.execute("SELECT lake.quarantine_discard(%s, 'older than we keep')", [item])
    row = conn.execute(
        "SELECT status, decision_note, doc IS NOT NULL FROM lake.quarantine WHERE id = %s", [item]
    ).fetchone()
    assert row == ("discarded", "older than we keep", True), "the payload stays as evidence"
    for call in (
        "SELECT lake.quarantine_discard(%s, 'again')",
        "SELECT lake.quarantine_release(%s)",
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(call, [item])
        assert err.value.sqlstate == "LK021"


def test_unknown_item(conn: Conn, location_dataset: str):
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.quarantine_release(424242)")
    assert err.value.sqlstate == "LK020"


def test_only_administrators_decide(conn: Conn, items: dict[str, int]):
    conn.execute("SET SESSION AUTHORIZATION lake_test_app")
    for call in ("SELECT lake.quarantine_release(%s)", "SELECT lake.quarantine_discard(%s, 'x')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(call, [items["maximum"]])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE lake.quarantine SET status = 'discarded'")
