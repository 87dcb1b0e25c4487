"""PII key rotation: a new key seals from the rotation on, the pii_keys job re-encrypts what older
keys sealed in batches (datasets, quarantine, rollback images) without touching the data's
history, and retires a key once nothing uses it; lake.pii_reveal works throughout."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import seal

Conn = psycopg.Connection[tuple[object, ...]]
TS = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
SCHEMA = {
    "type": "object",
    "required": ["ts"],
    "properties": {"email": {"type": "string", "pattern": "^[a-z0-9]+@"}},
}


@pytest.fixture
def contacts(conn: Conn) -> None:
    conn.execute(
        'SELECT lake.create_dataset(\'contacts\', %s, \'{"pii_fields": ["email", "phone"]}\')',
        [Jsonb(SCHEMA)],
    )
    conn.execute("SELECT lake.create_user('alice')")
    conn.execute("SELECT lake.act_as('alice', 'session')")


def ingest(conn: Conn, first: int, n: int) -> None:
    """Records first..first+n-1 (email uN@example.org, phone +49 N) and one for the quarantine."""
    conn.execute(
        "SELECT lake.ingest('contacts', (SELECT jsonb_agg(jsonb_build_object("
        f"'ts', {TS}, 'email', 'u' || i || '@example.org', 'phone', '+49 ' || i, 'n', i))"
        " FROM generate_series(%s::int, %s::int) AS i)"
        f" || jsonb_build_array(jsonb_build_object('ts', {TS},"
        " 'email', 'BAD' || %s::int || '@x')))",
        [first, first + n - 1, first],
    )


def revealed(conn: Conn) -> dict[int, tuple[object, object]]:
    rows = conn.execute(
        "SELECT (r.doc->>'n')::int, r.doc->>'email', r.doc->>'phone'"
        " FROM lake.pii_reveal('contacts', ARRAY(SELECT id FROM user_data.contacts)) AS r"
    ).fetchall()
    return {int(n): (email, phone) for n, email, phone in rows}  # type: ignore[call-overload]


def expected(numbers: range) -> dict[int, tuple[object, object]]:
    return {i: (f"u{i}@example.org", f"+49 {i}") for i in numbers}


def key_versions(conn: Conn, table: str) -> list[object]:
    return [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT lake_internal._pii_key_of(pii) FROM {table}"
            " WHERE pii IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]


def keys(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT id, key IS NOT NULL, retired_at IS NOT NULL FROM lake_internal.pii_keys ORDER BY id"
    ).fetchall()


def run_job(conn: Conn, now: str = "now()") -> dict[str, object]:
    conn.execute(f"CALL lake.run_maintenance('pii_keys', {now})")
    row = conn.execute(
        "SELECT status, details, error FROM lake.job_runs WHERE job = 'pii_keys'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert row is not None and row[0] == "ok", row
    assert isinstance(row[1], dict)
    return row[1]


def test_after_rotation_and_the_job_every_row_reveals_and_none_uses_the_retired_key(
    conn: Conn, contacts: None
) -> None:
    ingest(conn, 1, 10)
    conn.execute("SELECT lake.checkpoint('contacts')")
    # A change after a checkpoint keeps the row's before-image (sealed) for rollback.
    conn.execute(
        "UPDATE user_data.contacts SET doc = doc || '{\"edited\": true}' WHERE doc->>'n' = '1'"
    )
    assert key_versions(conn, "user_data.contacts") == [1]
    assert key_versions(conn, "lake.quarantine") == [1]
    assert key_versions(conn, "lake_internal.row_undo") == [1]
    old_seal = conn.execute("SELECT pii FROM user_data.contacts WHERE doc->>'n' = '2'").fetchone()
    assert old_seal is not None
    versions = conn.execute(
        "SELECT id, xact_id::text FROM user_data.contacts ORDER BY id"
    ).fetchall()

    assert conn.execute("SELECT lake.rotate_pii_key()").fetchone() == (2,)
    ingest(conn, 11, 2)  # sealed with the new key
    assert key_versions(conn, "user_data.contacts") == [1, 2]
    assert revealed(conn) == expected(range(1, 13))  # both keys open

    conn.execute("SELECT lake.set_setting('pii_rekey_batch', '4')")
    first = run_job(conn)
    assert first["rekeyed"] == {"contacts": 4, "(quarantine)": 1, "(rollback images)": 1}
    assert first["retired"] == []  # six rows still sealed with key 1
    assert keys(conn) == [(1, True, False), (2, True, False)]
    assert revealed(conn) == expected(range(1, 13))
    second = run_job(conn)
    assert second["rekeyed"] == {"contacts": 4}
    assert revealed(conn) == expected(range(1, 13))
    third = run_job(conn)
    assert third["rekeyed"] == {"contacts": 2} and third["retired"] == [1]

    assert keys(conn) == [(1, False, True), (2, True, False)]
    for table in ("user_data.contacts", "lake.quarantine", "lake_internal.row_undo"):
        assert key_versions(conn, table) == [2], table
    assert revealed(conn) == expected(range(1, 13))
    quarantined = conn.execute(
        "SELECT lake_internal._pii_open(doc, pii)->>'email' FROM lake.quarantine ORDER BY id"
    ).fetchall()
    assert quarantined == [("BAD1@x",), ("BAD11@x",)]
    # Re-keying is not a change of the data: the rows keep their writers, nothing is audited or
    # captured as an update, and no new rollback image was kept.
    now_versions = conn.execute(
        "SELECT id, xact_id::text FROM user_data.contacts ORDER BY id LIMIT 10"
    ).fetchall()
    assert now_versions == versions
    assert conn.execute("SELECT count(*) FROM lake_internal.row_undo").fetchone() == (1,)
    seal(conn)
    audit = dict(
        conn.execute(
            "SELECT action, count(*) FROM lake.audit_log"
            " WHERE action IN ('data.update', 'pii.rekey', 'pii.key_rotate', 'pii.key_retire')"
            " GROUP BY action"
        ).fetchall()
    )
    assert audit == {"data.update": 1, "pii.rekey": 5, "pii.key_rotate": 1, "pii.key_retire": 1}
    # Triggers are back on: an update is audited and re-sealed as before.
    conn.execute(
        "UPDATE user_data.contacts SET doc = doc || '{\"again\": 1}' WHERE doc->>'n' = '3'"
    )
    assert conn.execute("SELECT count(*) FROM lake_internal.row_undo").fetchone() == (2,)
    assert revealed(conn)[3] == ("u3@example.org", "+49 3")

    # A copy sealed with the retired key (as in an old archive) cannot be opened: an error, not
    # silently missing fields.
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake_internal._pii_open('{}', %s)", [old_seal[0]])
    assert err.value.sqlstate == "LK016"


def test_the_job_rotates_every_90_days_by_default(conn: Conn, contacts: None) -> None:
    ingest(conn, 1, 3)
    assert run_job(conn)["rotated_to"] is None
    assert run_job(conn, "now() + interval '89 days'")["rotated_to"] is None
    details = run_job(conn, "now() + interval '91 days'")
    assert details["rotated_to"] == 2 and details["rekeyed"] == {"contacts": 3, "(quarantine)": 1}
    assert details["retired"] == [1]
    assert revealed(conn) == expected(range(1, 4))
    conn.execute("SELECT lake.set_setting('pii_key_rotation', '30 days')")
    assert run_job(conn, "now() + interval '31 days'")["rotated_to"] == 3
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.set_setting('pii_key_rotation', '1 hour')")
    assert err.value.sqlstate == "LK060"


def test_a_key_stays_while_an_archive_of_its_time_is_kept(conn: Conn, contacts: None) -> None:
    ingest(conn, 1, 2)
    conn.execute(
        "INSERT INTO lake.archives (dataset, month, partition, path, manifest_path, rows, bytes,"
        " sha256, status) VALUES ('contacts', date_trunc('month', now()), 'p', '/nowhere',"
        " '/nowhere.manifest', 0, 0, repeat('0', 64), 'dropped')"
    )
    conn.execute("SELECT lake.rotate_pii_key()")
    details = run_job(conn)
    assert details["retired"] == [] and details["held_for_archives"] == [1]
    assert key_versions(conn, "user_data.contacts") == [2]
    assert keys(conn) == [(1, True, False), (2, True, False)]
