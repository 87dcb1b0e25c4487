"""Plain INSERT, COPY and UPDATE on user_data tables by applications: validated in the database
by the statement trigger, invalid rows diverted to the quarantine, the statement succeeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import APP_ROLE

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC)


@pytest.fixture
def app(conn: Conn, location_dataset: str) -> Conn:
    """The test connection as an application login role, acting for lake user alice."""
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
    return conn


def doc(ts: datetime, lat: float = 1.0) -> str:
    return f'{{"ts": "{ts.isoformat()}", "lat": {lat}, "lon": 2}}'


def test_insert_diverts_invalid_rows_and_succeeds(app: Conn):
    good, late, bad = NOW - timedelta(hours=1), NOW - timedelta(days=900), NOW
    app.execute(
        "INSERT INTO user_data.location_history (ts, doc) VALUES (%s, %s), (%s, %s), (%s, %s),"
        " (%s, %s)",
        [
            good,
            doc(good),
            late,
            doc(late),
            bad,
            doc(bad, 95.5),
            NOW + timedelta(days=3650),
            doc(NOW + timedelta(days=3650)),
        ],
    )
    assert app.execute("SELECT user_id, ts FROM user_data.location_history").fetchall() == [
        ("alice", good)
    ]
    app.execute("RESET SESSION AUTHORIZATION")
    rows = app.execute(
        "SELECT q.user_id, q.reasons->0->>'rule', b.source, b.received,"
        " b.accepted, b.archived, b.quarantined FROM lake.quarantine q"
        " JOIN lake.batches b ON b.id = q.batch_id ORDER BY q.id"
    ).fetchall()
    assert rows == [
        ("alice", "maximum", "insert", 4, 1, 1, 2),
        ("alice", "time_in_future", "insert", 4, 1, 1, 2),
    ]
    # The row older than the first month went to its month's archive, with its id.
    archived = app.execute(
        "SELECT a.rows, a.status FROM lake.archives AS a"
        " WHERE a.dataset = 'location_history' AND a.month = lake.month_start(%s)",
        [late],
    ).fetchall()
    assert archived == [(1, "dropped")]
    # Rows outside the window landed in the overflow partitions and were moved out again.
    assert app.execute(
        "SELECT count(*) FROM user_data_partitions.location_history_p_before"
    ).fetchone() == (0,)
    assert app.execute(
        "SELECT count(*) FROM user_data_partitions.location_history_p_after"
    ).fetchone() == (0,)


def test_copy_goes_through_the_inbox(app: Conn):
    lines = [
        f"{(NOW - timedelta(minutes=i)).isoformat()}\t{doc(NOW, 200 if i % 10 == 0 else 1)}"
        for i in range(1, 101)
    ]
    # PostgreSQL itself refuses COPY FROM into a table under row-level security...
    with (
        pytest.raises(psycopg.errors.FeatureNotSupported),
        app.cursor() as cur,
        cur.copy("COPY user_data.location_history (ts, doc) FROM STDIN") as cp,
    ):
        cp.write("\n".join(lines) + "\n")
    # ...so COPY goes to the dataset's inbox, and lands in the table in the same statement.
    with app.cursor() as cur, cur.copy("COPY inbox.location_history (ts, doc) FROM STDIN") as cp:
        cp.write("\n".join(lines) + "\n")
    assert app.execute(
        "SELECT count(*), min(user_id), max(user_id) FROM user_data.location_history"
    ).fetchone() == (90, "alice", "alice")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT count(*) FROM inbox.location_history")
    app.execute("RESET SESSION AUTHORIZATION")
    assert app.execute("SELECT received, accepted, quarantined FROM lake.batches").fetchall() == [
        (100, 90, 10)
    ]
    assert app.execute("SELECT count(*) FROM inbox.location_history").fetchone() == (0,)


def test_copy_without_identity_writes_nothing(conn: Conn, location_dataset: str):
    conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
    with (
        pytest.raises(psycopg.Error) as err,
        conn.cursor() as cur,
        cur.copy("COPY inbox.location_history (ts, doc) FROM STDIN") as cp,
    ):
        cp.write(f"{NOW.isoformat()}\t{doc(NOW)}\n")
    assert err.value.sqlstate == "LK010"
    conn.execute("RESET SESSION AUTHORIZATION")
    assert conn.execute("SELECT count(*) FROM inbox.location_history").fetchone() == (0,)


def test_a_transaction_is_one_batch_and_a_closed_batch_cannot_grow(app: Conn):
    app.autocommit = False
    for _ in range(3):
        app.execute(
            "INSERT INTO user_data.location_history (ts, doc) VALUES (%s, %s)",
            [NOW, doc(NOW - timedelta(hours=1))],
        )
    app.commit()
    (batch_id,) = app.execute("SELECT DISTINCT batch_id FROM user_data.location_history").fetchone()  # type: ignore[misc]
    with pytest.raises(psycopg.Error) as err:
        app.execute(
            "INSERT INTO user_data.location_history (ts, doc, batch_id) VALUES (%s, %s, %s)",
            [NOW, doc(NOW), batch_id],
        )
    assert err.value.sqlstate == "LK030"
    app.rollback()
    app.execute("RESET SESSION AUTHORIZATION")
    assert app.execute("SELECT received, accepted FROM lake.batches").fetchall() == [(3, 3)]


def test_update_that_breaks_the_schema_is_refused(app: Conn):
    app.execute(
        "INSERT INTO user_data.location_history (ts, doc) VALUES (%s, %s)",
        [NOW - timedelta(hours=1), doc(NOW)],
    )
    with pytest.raises(psycopg.Error) as err:
        app.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 91}'")
    assert err.value.sqlstate == "LK040"
    assert "maximum" in (err.value.diag.message_detail or "")
    app.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 45}'")
    assert app.execute("SELECT doc->>'lat' FROM user_data.location_history").fetchone() == ("45",)


def test_null_time_is_a_clear_error(app: Conn):
    # A row without a partition key cannot be routed to any partition: PostgreSQL says so.
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        app.execute("INSERT INTO user_data.location_history (doc) VALUES ('{}')")
    assert "no partition of relation" in str(err.value)


def test_owner_missing_is_quarantined_for_privileged_writers(conn: Conn, location_dataset: str):
    conn.execute(
        "INSERT INTO user_data.location_history (user_id, ts, doc) VALUES (NULL, %s, %s)",
        [NOW, doc(NOW)],
    )
    assert conn.execute("SELECT reasons->0->>'rule' FROM lake.quarantine").fetchone() == (
        "owner_missing",
    )
    assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (0,)
