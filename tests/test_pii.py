"""Personal identifiers in the database: found as records are stored (lake.pii_findings, never the
value), encrypted and masked in a dataset's pii_fields, shown in clear only to PII readers, and
every decryption audited."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from tests.conftest import APP_ROLE, AUDITOR_ROLE, PII_READER_ROLE, seal

Conn = psycopg.Connection[tuple[object, ...]]
TS = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
SCHEMA = {
    "type": "object",
    "required": ["ts"],
    # The originals must match; the masks (j***@...) would not.
    "properties": {"email": {"type": "string", "pattern": "^[a-z]+@"}},
}


@pytest.fixture
def contacts(conn: Conn) -> dict[str, str]:
    """Dataset contacts with pii_fields email and phone; users alice and bob with a key each."""
    conn.execute(
        'SELECT lake.create_dataset(\'contacts\', %s, \'{"pii_fields": ["email", "phone"]}\')',
        [Jsonb(SCHEMA)],
    )
    keys = {}
    for user in ("alice", "bob"):
        conn.execute("SELECT lake.create_user(%s)", [user])
        row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [user]).fetchone()
        assert row is not None
        keys[user] = str(row[0])
    return keys


def ingest(c: Conn, records: str) -> tuple[object, ...]:
    row = c.execute(
        f"SELECT received, accepted, quarantined FROM lake.ingest('contacts', {records})"
    ).fetchone()
    assert row is not None
    return row


def test_pii_fields_are_stored_encrypted_and_shown_masked(contacts, as_role):
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [contacts["alice"]])
    assert ingest(
        app,
        f"jsonb_build_array(jsonb_build_object('ts', {TS}, 'email', 'jane@example.org',"
        f" 'phone', '+49 30 1234567'), jsonb_build_object('ts', {TS}, 'email', 'BAD@x.org'))",
    ) == (2, 1, 1)  # judged by the originals: the second one's does not match the pattern
    app.execute(
        "INSERT INTO inbox.contacts (ts, doc) VALUES"
        f" (now(), jsonb_build_object('ts', {TS}, 'email', 'kim@example.net'))"
    )
    app.execute(
        "INSERT INTO user_data.contacts (ts, doc) VALUES"
        f" (now(), jsonb_build_object('ts', {TS}, 'email', 'lou@example.com', 'n', 1))"
    )
    rows = app.execute(
        "SELECT doc->>'email', doc->>'phone', pii IS NOT NULL FROM user_data.contacts ORDER BY id"
    ).fetchall()
    assert rows == [
        ("j***@example.org", "+***67", True),
        ("k***@example.net", None, True),
        ("l***@example.com", None, True),
    ]
    stored = app.execute("SELECT string_agg(t::text, ' ') FROM user_data.contacts AS t")
    text = str(stored.fetchone())
    assert "jane@" not in text and "1234567" not in text

    # An application sees masks only, cannot read the key and cannot decrypt.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT key FROM lake_internal.pii_keys")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM lake.pii_reveal('contacts', ARRAY[1])")


def test_updates_keep_or_replace_the_originals(conn, contacts, as_role):
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [contacts["alice"]])
    ingest(
        app,
        f"jsonb_build_array(jsonb_build_object('ts', {TS}, 'email', 'jane@example.org', 'n', 1),"
        f" jsonb_build_object('ts', {TS}, 'email', 'joe@example.org', 'n', 1))",
    )
    app.execute("UPDATE user_data.contacts SET doc = doc || '{\"n\": 2}'")  # masks unchanged
    app.execute(
        'UPDATE user_data.contacts SET doc = doc || \'{"email": "max@example.com"}\' WHERE id = 2'
    )
    revealed = conn.execute(
        "SELECT id, doc->>'email', doc->>'n' FROM lake.pii_reveal('contacts', ARRAY[1, 2])"
    ).fetchall()
    assert revealed == [(1, "jane@example.org", "2"), (2, "max@example.com", "2")]


def test_pii_readers_see_their_own_records_in_clear_and_are_audited(db, conn, contacts, as_role):
    for user in ("alice", "bob"):
        app = as_role(APP_ROLE)
        app.execute("SELECT lake.authenticate(%s, 'session')", [contacts[user]])
        ingest(app, f"jsonb_build_array(jsonb_build_object('ts', {TS}, 'email', '{user}@ex.org'))")
    ids = dict(conn.execute("SELECT user_id, id FROM user_data.contacts").fetchall())
    both = [ids["alice"], ids["bob"]]
    reader = as_role(PII_READER_ROLE)
    reader.execute("SELECT lake.authenticate(%s, 'session')", [contacts["alice"]])
    rows = reader.execute(
        "SELECT id, user_id, doc->>'email' FROM lake.pii_reveal('contacts', %s)", [both]
    ).fetchall()
    assert rows == [(ids["alice"], "alice", "alice@ex.org")]  # bob's record is left out
    seal(conn)
    entry = conn.execute(
        "SELECT db_role, lake_user, detail->'ids' FROM lake.audit_log WHERE action = 'pii.decrypt'"
    ).fetchall()
    assert entry == [(PII_READER_ROLE, "alice", both)]
    auditor = as_role(AUDITOR_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        auditor.execute("SELECT * FROM lake.pii_reveal('contacts', ARRAY[1])")

    from lake_client.client import Lake

    with Lake(make_conninfo(db, user=PII_READER_ROLE)) as client:
        client.authenticate(contacts["bob"])
        assert [r["doc"]["email"] for r in client.pii_reveal("contacts", both)] == ["bob@ex.org"]


def test_findings_name_path_and_kind_never_the_value(conn, location_dataset):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        "SELECT lake.ingest('location_history', jsonb_build_array("
        f" jsonb_build_object('ts', {TS}, 'lat', 1, 'lon', 2, 'note', 'mail me: a@example.org'),"
        f" jsonb_build_object('ts', {TS}, 'lat', 1, 'lon', 2, 'device', 'pixel-7'),"
        f" jsonb_build_object('ts', {TS}, 'lat', 1, 'lon', 2,"
        "   'paid', jsonb_build_object('card', '4111 1111 1111 1111')),"
        f" jsonb_build_object('ts', {TS}, 'lat', 120, 'lon', 2, 'note', 'b@example.org')))"
    )
    # Through the inbox too (the path lake_client takes).
    conn.execute(
        "INSERT INTO inbox.location_history (ts, doc) VALUES (now(), jsonb_build_object("
        f"'ts', {TS}, 'lat', 1, 'lon', 2, 'from', '192.168.7.1'))"
    )
    findings = conn.execute(
        "SELECT f.path, f.kind, f.user_id, t.doc->>'lat' FROM lake.pii_findings f"
        " JOIN user_data.location_history t ON t.id = f.record_id ORDER BY f.id"
    ).fetchall()
    assert findings == [
        ("$.note", "email", "alice", "1"),
        ("$.paid.card", "payment_card", "alice", "1"),
        ("$.from", "ip_address", "alice", "1"),
    ]  # the quarantined record (lat 120) is not stored, so not a finding
    dump = conn.execute("SELECT string_agg(f::text, ' ') FROM lake.pii_findings f").fetchone()
    assert "a@example.org" not in str(dump) and "4111" not in str(dump)


def test_scanning_can_be_switched_off_per_dataset(conn):
    conn.execute(
        "SELECT lake.create_dataset('quiet', '{\"type\": \"object\"}', '{\"pii_scan\": false}')"
    )
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        f"SELECT lake.ingest('quiet', jsonb_build_array(jsonb_build_object('ts', {TS},"
        " 'email', 'a@example.org')))"
    )
    assert conn.execute("SELECT count(*) FROM lake.pii_findings").fetchone() == (0,)


def test_pii_fields_are_checked(conn):
    for options in ('{"pii_fields": ["ts"]}', '{"pii_fields": [""]}', '{"pii_scan": "maybe"}'):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(
                "SELECT lake.create_dataset('bad', '{\"type\": \"object\"}', %s)", [options]
            )
        assert err.value.sqlstate == "LK005", options


def test_quarantined_records_keep_pii_fields_sealed(conn, contacts, as_role):
    app = as_role(APP_ROLE)
    app.execute("SELECT lake.authenticate(%s, 'session')", [contacts["alice"]])
    ingest(app, f"jsonb_build_array(jsonb_build_object('ts', {TS}, 'email', 'BAD@example.org'))")
    row = conn.execute("SELECT id, doc->>'email', pii IS NOT NULL, reasons FROM lake.quarantine")
    item, shown, sealed, reasons = row.fetchone()  # type: ignore[misc]
    assert (shown, sealed) == ("B***@example.org", True)
    assert "BAD@" not in str(reasons) and reasons[0]["rule"] == "pattern"
    # Released with a correction: judged in clear, stored sealed; the audit log shows masks.
    conn.execute(
        "SELECT lake.quarantine_release(%s, jsonb_build_object('ts', " + TS + ","
        " 'email', 'good@example.org'))",
        [item],
    )
    assert conn.execute("SELECT doc->>'email' FROM user_data.contacts").fetchone() == (
        "g***@example.org",
    )
    seal(conn)
    audit = conn.execute(
        "SELECT before->>'email', after->>'email' FROM lake.audit_log"
        " WHERE action = 'quarantine.release'"
    ).fetchone()
    assert audit == ("B***@example.org", "g***@example.org")


def test_findings_go_with_their_records(conn, location_dataset):
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(
        "SELECT lake.ingest('location_history', jsonb_build_array("
        f" jsonb_build_object('ts', {TS}, 'lat', 1, 'lon', 2, 'note', 'a@example.org'),"
        f" jsonb_build_object('ts', {TS}, 'lat', 1, 'lon', 2, 'note', 'b@example.org')))"
    )
    assert conn.execute("SELECT count(*) FROM lake.pii_findings").fetchone() == (2,)
    conn.execute("DELETE FROM user_data.location_history WHERE doc->>'note' LIKE 'a%'")
    assert conn.execute("SELECT count(*) FROM lake.pii_findings").fetchone() == (1,)
    conn.execute("TRUNCATE user_data.location_history")
    assert conn.execute("SELECT count(*) FROM lake.pii_findings").fetchone() == (0,)
