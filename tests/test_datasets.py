"""lake.create_dataset: the table, its partitions, policies and triggers, and what it refuses."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import LOCATION_SCHEMA

Conn = psycopg.Connection[tuple[object, ...]]


def test_creates_partitioned_table_with_window_and_overflow(conn: Conn, location_dataset: str):
    row = conn.execute(
        "SELECT partitions_from, partitions_to, retention::text, premake,"
        " lake.month_start(now() - interval '12 months') = partitions_from,"
        " lake.month_start(now()) + interval '4 months' = partitions_to"
        " FROM lake.datasets WHERE name = %s",
        [location_dataset],
    ).fetchone()
    assert row is not None
    assert row[2:] == ("1 year", 3, True, True)
    kinds = conn.execute(
        "SELECT kind, count(*) FROM lake.partitions WHERE dataset = %s GROUP BY kind ORDER BY kind",
        [location_dataset],
    ).fetchall()
    # 12 past months + the current one + 3 premade, between two overflow partitions.
    assert kinds == [("month", 16), ("overflow (after)", 1), ("overflow (before)", 1)]
    assert conn.execute(
        "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c"
        " ON c.oid = p.partrelid WHERE c.relname = %s AND p.partdefid <> 0",
        [location_dataset],
    ).fetchone() == (0,), "no DEFAULT partition"
    months = conn.execute(
        "SELECT range_from, range_to FROM lake.partitions WHERE dataset = %s AND kind = 'month'"
        " ORDER BY range_from",
        [location_dataset],
    ).fetchall()
    for (_, end), (start, _) in itertools.pairwise(months):
        assert end == start, "months are contiguous"


def test_table_shape_rls_and_triggers(conn: Conn, location_dataset: str):
    cols = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'user_data.location_history'::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    assert cols == [
        ("id", "bigint"),
        ("user_id", "text"),
        ("ts", "timestamp with time zone"),
        ("doc", "jsonb"),
        ("batch_id", "uuid"),
        ("ingested_at", "timestamp with time zone"),
        ("pii", "bytea"),
        ("xact_id", "xid8"),
    ]
    rls = conn.execute(
        "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner)"
        " FROM pg_class WHERE oid = 'user_data.location_history'::regclass"
    ).fetchone()
    assert rls == (True, True, "lake_owner")
    policy = conn.execute(
        "SELECT qual, with_check FROM pg_policies WHERE tablename = %s"
        " AND policyname = 'user_isolation'",
        [location_dataset],
    ).fetchone()
    assert policy == (
        "(user_id = ( SELECT lake.current_user_id() AS current_user_id))",
        "(user_id = ( SELECT lake.current_user_id() AS current_user_id))",
    )
    triggers = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid ="
        " 'user_data.location_history'::regclass ORDER BY 1"
    ).fetchall()
    assert triggers == [
        ("audit_delete",),
        ("audit_truncate",),
        ("audit_update",),
        ("pii_forget",),
        ("pii_forget_all",),
        ("quota_free",),
        ("row_version",),
        ("undo_delete",),
        ("undo_truncate",),
        ("undo_update",),
        ("validate_insert",),
        ("validate_update",),
        ("write_changes_delete",),
        ("write_changes_insert",),
        ("write_changes_truncate",),
        ("write_changes_update",),
    ]
    scope_policies = conn.execute(
        "SELECT policyname, permissive, cmd, roles::text[] FROM pg_policies"
        " WHERE tablename = %s AND policyname LIKE 'scope%%' ORDER BY 1",
        [location_dataset],
    ).fetchall()
    assert scope_policies == [
        ("scope_delete", "RESTRICTIVE", "DELETE", ["lake_admin", "lake_write"]),
        ("scope_insert", "RESTRICTIVE", "INSERT", ["lake_admin", "lake_write"]),
        ("scope_update", "RESTRICTIVE", "UPDATE", ["lake_admin", "lake_write"]),
    ]
    compiled = conn.execute(
        "SELECT predicate IS NOT NULL FROM lake.dataset_schemas WHERE dataset = %s",
        [location_dataset],
    ).fetchone()
    assert compiled == (True,), "the location schema compiles to an SQL predicate"


@pytest.mark.parametrize(
    "name",
    [
        "Location",
        "1abc",
        "",
        "a-b",
        "x" * 49,
        "select",
        "user",
        "a b",
        "drop table x;--",
        'a"b',
        "ä",
        "a\tb",
        "_hidden",
        "places__embeddings",  # a double _ is the lake's own (a dataset's embeddings table)
        "location history",
        "x; DROP SCHEMA lake CASCADE",
    ],
)
def test_hostile_names_are_refused(conn: Conn, name: str):
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.create_dataset(%s, %s)", [name, Jsonb(LOCATION_SCHEMA)])
    assert err.value.sqlstate == "LK001"
    assert "invalid dataset name" in str(err.value)
    assert conn.execute("SELECT count(*) FROM lake.datasets").fetchone() == (0,)


def test_duplicate_name(conn: Conn, location_dataset: str):
    with pytest.raises(psycopg.Error) as err:
        conn.execute(
            "SELECT lake.create_dataset(%s, %s)", [location_dataset, Jsonb(LOCATION_SCHEMA)]
        )
    assert err.value.sqlstate == "LK002"


@pytest.mark.parametrize(
    ("schema", "options", "state"),
    [
        ({"type": "array"}, {}, "LK004"),
        ({"type": "object", "properties": {"a": {"type": "no-such-type"}}}, {}, "LK004"),
        ({"type": "object"}, {"retention": "banana"}, "LK005"),
        ({"type": "object"}, {"premake": 0}, "LK005"),
        ({"type": "object"}, {"time_format": "iso"}, "LK005"),
        ({"type": "object"}, {"no_such_option": 1}, "LK005"),
        ({"type": "object"}, {"tiers": {"lukewarm": "1 day"}}, "LK005"),
    ],
)
def test_invalid_schema_or_options(conn: Conn, schema: object, options: object, state: str):
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.create_dataset('d', %s, %s)", [Jsonb(schema), Jsonb(options)])
    assert err.value.sqlstate == state
    assert conn.execute("SELECT to_regclass('user_data.d')").fetchone() == (None,)


def test_options_are_recorded(conn: Conn):
    conn.execute(
        "SELECT lake.create_dataset('steps', %s, %s)",
        [
            Jsonb({"type": "object"}),
            Jsonb(
                {
                    "time_field": "at",
                    "time_format": "epoch_ms",
                    "retention": "6 months",
                    "premake": 2,
                    "description": "step counts",
                }
            ),
        ],
    )
    row = conn.execute(
        "SELECT time_field, time_format, retention::text, premake, description FROM lake.datasets"
    ).fetchone()
    assert row == ("at", "epoch_ms", "6 mons", 2, "step counts")
    assert conn.execute("SELECT count(*) FROM lake.partitions WHERE kind = 'month'").fetchone() == (
        6 + 1 + 2,
    )


def test_ensure_partitions_extends_the_run(conn: Conn, location_dataset: str):
    made = conn.execute(
        "SELECT lake.ensure_partitions(%s, now() + interval '6 months',"
        " now() + interval '7 months')",
        [location_dataset],
    ).fetchone()
    assert made == (4,)  # months 4, 5, 6 and 7 ahead
    again = conn.execute(
        "SELECT lake.ensure_partitions(%s, now(), now() + interval '7 months')", [location_dataset]
    ).fetchone()
    assert again == (0,)
    assert conn.execute(
        "SELECT count(*) FROM lake.partitions WHERE dataset = %s AND kind <> 'month'",
        [location_dataset],
    ).fetchone() == (2,)


@pytest.mark.parametrize(
    ("text", "ts", "valid"),
    [
        ("2026-11-27T08:00:00.123Z", "2026-11-27 08:00:00.123+00", True),  # canonical, fast
        ("2026-11-27T08:00:00Z", "2026-11-27 08:00:00+00", True),  # canonical, fast
        ("2026-11-27T08:00:00Z", "2020-01-01 00:00:00+00", True),  # ts disagrees: regex says
        ("2026-11-27T09:00:00+01:00", "2026-11-27 08:00:00+00", True),  # not canonical: regex
        ("2026-11-27T08:00:00.123Z", None, True),  # no ts: regex
        ("2026-13-27T08:00:00.000Z", "2026-11-27 08:00:00+00", False),  # month 13
        ("2026-11-27 08:00:00Z", "2026-11-27 08:00:00+00", False),  # a space is not RFC 3339 here
        ("2026-11-27T08:00:00.123z", "2026-11-27 08:00:00.123+00", False),
    ],
)
def test_time_field_format_fast_path_is_exact(conn: Conn, text: str, ts: str | None, valid: bool):
    schema = '{"type": "object", "properties": {"ts": {"type": "string", "format": "date-time"}}}'
    row = conn.execute(
        "SELECT lake_internal._compile_predicate(%s::jsonb, 'ts')", [schema]
    ).fetchone()
    assert row is not None and "to_char(ts AT TIME ZONE" in str(row[0])
    got = conn.execute(
        f"SELECT {row[0]} FROM (SELECT jsonb_build_object('ts', %s::text) AS doc,"
        " %s::timestamptz AS ts) AS r",
        [text, ts],
    ).fetchone()
    assert got == (valid,)


def test_trigger_set_reapplies_to_an_existing_dataset(conn: Conn, location_dataset: str):
    """lake_internal._dataset_triggers is what a migration calls to re-apply the trigger set to a
    dataset that exists: a dataset that lost its validation trigger validates again, and calling
    it twice leaves the same set (drop-if-exists, then create)."""

    def trigger_set() -> list[tuple[object, ...]]:
        return conn.execute(
            "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid IN ('user_data.location_history'::regclass,"
            " 'inbox.location_history'::regclass) ORDER BY 1, 2"
        ).fetchall()

    def insert_bad() -> None:
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO user_data.location_history (ts, doc) VALUES (%s, %s)",
            [now, Jsonb({"ts": now.isoformat(), "lat": 95.5, "lon": 2})],
        )

    def counts() -> tuple[object, ...] | None:
        return conn.execute(
            "SELECT (SELECT count(*) FROM user_data.location_history),"
            ' (SELECT count(*) FROM lake.quarantine WHERE reasons @> \'[{"rule": "maximum"}]\')'
        ).fetchone()

    complete = trigger_set()
    assert ("user_data.location_history", "validate_insert") in [t[:2] for t in complete]
    conn.execute("SELECT lake.act_as('alice', 'session')")
    conn.execute("DROP TRIGGER validate_insert ON user_data.location_history")
    insert_bad()
    assert counts() == (1, 0), "without its trigger the dataset keeps an invalid record"

    conn.execute("SELECT lake_internal._dataset_triggers(%s)", [location_dataset])
    conn.execute("SELECT lake_internal._dataset_triggers(%s)", [location_dataset])
    assert trigger_set() == complete
    insert_bad()
    assert counts() == (1, 1), "the re-applied trigger quarantines the invalid record"
