"""lake.series against the real TimescaleDB (Apache build): buckets and aggregates as computed
here from the same rows, gaps filled, time zones, row-level security (a user, a service acting
for one), arguments refused with clear errors and never run as SQL, and the TimescaleDB features
the README says the build lacks."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from lake_client.client import Lake
from lake_client.errors import IdentityError, InputError, UnknownDataset
from tests.conftest import APP_ROLE, SERVICE_ROLE
from tests.test_cli import lake as run_lake

Conn = psycopg.Connection[tuple[object, ...]]
SCHEMA = (
    '{"type": "object", "required": ["ts"], "properties": {"steps": {"type": "integer"},'
    ' "kind": {"type": "string"}, "body": {"type": "object"}}}'
)
DAY0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday; the records span three days from it


@pytest.fixture
def steps(conn: Conn) -> str:
    """Dataset steps: alice has 30 records over 2026-11-02..04 (every 2 hours and 24 minutes,
    steps = i, body.hr = 60 + i, every fifth without steps, every seventh with body.hr "n/a"),
    bob 5 records of 1000 steps in the same days; users alice and bob, service gw."""
    conn.execute("SELECT lake.create_dataset('steps', %s, '{\"pii_scan\": false}')", [SCHEMA])
    for user, kind in (("alice", "user"), ("bob", "user"), ("gw", "service")):
        conn.execute("SELECT lake.create_user(%s, NULL, %s)", [user, kind])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO user_data.steps (user_id, ts, doc) VALUES (%s, %s, %s)",
            [("alice", t, Jsonb(doc)) for t, doc in alice_rows()]
            + [
                ("bob", t, Jsonb({"ts": t.isoformat(), "steps": 1000}))
                for t in (DAY0 + timedelta(hours=10 * i) for i in range(5))
            ],
        )
    return "steps"


def alice_rows() -> list[tuple[datetime, dict[str, object]]]:
    rows = []
    for i in range(30):
        t = DAY0 + timedelta(minutes=144 * i)
        doc: dict[str, object] = {
            "ts": t.isoformat(),
            "kind": "walk",
            "body": {"hr": "n/a" if i % 7 == 3 else 60 + i},
        }
        if i % 5 != 4:
            doc["steps"] = i
        rows.append((t, doc))
    return rows


def key_of(conn: Conn, principal: str) -> str:
    row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [principal]).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def alice(db: str, conn: Conn, steps: str) -> Iterator[Lake]:
    """A client that logs in as the test application with alice's key."""
    with Lake(make_conninfo(db, user=APP_ROLE)) as lake:
        lake.authenticate(key_of(conn, "alice"))
        yield lake


def expected(agg: str, field: str | None) -> dict[str, tuple[int, float | None]]:
    """alice's buckets of a day, computed here: {day: (records, value)}."""
    days: dict[str, list[tuple[datetime, object]]] = {}
    for t, doc in alice_rows():
        value: object = doc
        for name in (field or "").split(".") if field else []:
            value = value.get(name) if isinstance(value, dict) else None
        days.setdefault(t.strftime("%Y-%m-%dT00:00:00Z"), []).append((t, value))
    out: dict[str, tuple[int, float | None]] = {}
    for day, pairs in days.items():
        if field is None:
            out[day] = (len(pairs), float(len(pairs)))
            continue
        held = [v for _, v in pairs if v is not None]
        nums = [(t, float(v)) for t, v in pairs if isinstance(v, int | float)]
        vals = [v for _, v in nums]
        result: dict[str, float | None] = {
            "count": float(len(held)),
            "sum": sum(vals) if vals else None,
            "avg": statistics.fmean(vals) if vals else None,
            "min": min(vals, default=None),
            "max": max(vals, default=None),
            "stddev": statistics.stdev(vals) if len(vals) > 1 else None,
            "first": min(nums)[1] if nums else None,
            "last": max(nums)[1] if nums else None,
        }
        out[day] = (len(pairs), result[agg])
    return out


CASES = [
    (None, "count"),
    ("steps", "count"),
    ("steps", "sum"),
    ("steps", "avg"),
    ("steps", "min"),
    ("steps", "max"),
    ("steps", "stddev"),
    ("steps", "first"),
    ("body.hr", "avg"),
    ("body.hr", "count"),
    ("body.hr", "last"),
]


def test_buckets_and_aggregates_match_the_rows(alice: Lake):
    for field, agg in CASES:
        got = alice.series(
            "steps", "1 day", DAY0, DAY0 + timedelta(days=3), field, agg, timezone="UTC"
        )
        want = expected(agg, field)
        assert [r["bucket"] for r in got] == sorted(want), (field, agg)
        for r in got:
            records, value = want[r["bucket"]]
            assert r["records"] == records, (field, agg)
            assert r["value"] == pytest.approx(value), (field, agg, r["bucket"])


def test_gaps_are_filled_and_time_zones_move_the_days(alice: Lake):
    week = alice.series("steps", "1 day", DAY0 - timedelta(days=2), DAY0 + timedelta(days=5))
    assert [r["bucket"][:10] for r in week] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    filled = alice.series(
        "steps",
        "1 day",
        DAY0 - timedelta(days=2),
        DAY0 + timedelta(days=5),
        "steps",
        "sum",
        fill=True,
    )
    assert [r["bucket"][:10] for r in filled] == ["2026-10-31"] + [
        f"2026-11-{d:02}" for d in range(1, 7)
    ]
    empty = [r for r in filled if r["records"] == 0]
    assert [r["bucket"][:10] for r in empty] == [
        "2026-10-31",
        "2026-11-01",
        "2026-11-05",
        "2026-11-06",
    ]
    assert {r["value"] for r in empty} == {None}
    counted = alice.series("steps", timedelta(days=1), DAY0, DAY0 + timedelta(days=4), fill=True)
    assert [(r["records"], r["value"]) for r in counted][-1] == (0, 0.0)  # a count of nothing
    # Days in Tokyo (UTC+9) begin at 15:00 UTC the day before: the records fall otherwise.
    tokyo = alice.series(
        "steps",
        "1 day",
        DAY0 - timedelta(days=1),
        DAY0 + timedelta(days=3),
        timezone="Asia/Tokyo",
    )
    assert tokyo[0]["bucket"] == "2026-11-01T15:00:00Z"
    by_tokyo_day: dict[str, int] = {}
    for t, _ in alice_rows():
        local = (t + timedelta(hours=9)).date().isoformat()
        by_tokyo_day[local] = by_tokyo_day.get(local, 0) + 1
    assert [r["records"] for r in tokyo] == [by_tokyo_day[d] for d in sorted(by_tokyo_day)]
    months = alice.series(
        "steps", "1 month", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z", fill=True
    )
    assert [(r["bucket"][:7], r["records"]) for r in months] == [
        ("2026-10", 0),
        ("2026-11", 30),
        ("2026-12", 0),
    ]


def test_a_user_sees_only_their_rows_and_a_service_those_it_acts_for(
    conn: Conn, alice: Lake, as_role: Callable[[str], Conn]
):
    query = "SELECT sum(records) FROM lake.series('steps', '1 day', %s, %s)"
    span = [DAY0, DAY0 + timedelta(days=3)]
    assert sum(r["records"] for r in alice.series("steps", "1 day", *span)) == 30
    bob = as_role(APP_ROLE)
    bob.execute("SELECT lake.authenticate(%s, 'session')", [key_of(conn, "bob")])
    assert bob.execute(query, span).fetchone() == (5,)
    bob_max = "SELECT max(value) FROM lake.series('steps', '1 day', %s, %s, 'steps', 'max')"
    assert bob.execute(bob_max, span).fetchone() == (1000.0,)
    # A service is nobody until it acts for a user, then that user alone.
    svc = as_role(SERVICE_ROLE)
    svc.execute("SELECT lake.authenticate(%s, 'session')", [key_of(conn, "gw")])
    with pytest.raises(psycopg.Error, match="no lake user") as err:
        svc.execute(query, span)
    assert err.value.sqlstate == "LK010"
    svc.execute("SELECT lake.act_as('bob', 'session')")
    assert svc.execute(query, span).fetchone() == (5,)
    assert svc.execute(bob_max, span).fetchone() == (1000.0,)
    # Even a superuser's session (which row-level security lets through) reads its user only.
    conn.execute("SELECT lake.act_as('alice', 'session')")
    assert conn.execute(query, span).fetchone() == (30,)


def test_arguments_are_checked_with_clear_errors(alice: Lake, conn: Conn):
    span = (DAY0, DAY0 + timedelta(days=3))
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"bucket": "0 seconds"}, "LK120", "a positive interval"),
        ({"bucket": "-1 day"}, "LK120", "a positive interval"),
        ({"bucket": "1 month 2 days"}, "LK120", "mixes months with days"),
        ({"bucket": "1 second"}, "LK120", "at most 100000"),
        ({"to_ts": DAY0 - timedelta(days=1)}, "LK120", "not a finite range"),
        ({"timezone": "Mars/Olympus"}, "LK120", "unknown time zone"),
        ({"agg": "sum(1)); DROP TABLE lake.datasets; --"}, "LK121", "unknown aggregate"),
        ({"agg": "median"}, "LK121", "One of: avg, count, first, last, max, min, stddev, sum"),
        ({"agg": "sum"}, "LK121", "the aggregate sum needs a field"),
        ({"field": "steps') --", "agg": "sum"}, "LK121", "invalid field"),
        ({"field": "a..b", "agg": "sum"}, "LK121", "invalid field"),
        ({"field": "kind", "agg": "avg"}, "LK121", "not a number"),
    ]
    for change, code, message in cases:
        args: dict[str, object] = {
            "dataset": "steps",
            "bucket": "1 day",
            "from_ts": span[0],
            "to_ts": span[1],
            "field": None,
            "agg": "count",
        }
        args.update(change)
        with pytest.raises(InputError, match=message) as err:
            alice.series(**args)  # type: ignore[arg-type]
        assert err.value.sqlstate == code, change
    with pytest.raises(UnknownDataset):
        alice.series("nope", "1 day", *span)
    # A field is a value, never SQL: one that looks like SQL is a name no record holds.
    odd = alice.series("steps", "1 day", *span, "x'||pg_sleep(1)||'", "max")
    assert [r["value"] for r in odd] == [None, None, None]
    assert conn.execute("SELECT count(*) FROM lake.datasets").fetchone() == (1,)
    # Counting a string field counts the records that hold it.
    kinds = alice.series("steps", "1 day", *span, "kind", "count")
    assert [r["value"] for r in kinds] == [r["records"] for r in kinds]


def test_without_a_user_the_client_gets_an_identity_error(db: str, steps: str):
    with Lake(make_conninfo(db, user=APP_ROLE)) as anonymous, pytest.raises(IdentityError):
        anonymous.series("steps", "1 day", DAY0, DAY0 + timedelta(days=1))


def test_the_apache_build_lacks_what_the_readme_says(conn: Conn):
    """The README's list of TimescaleDB features missing from the Debian (Apache-2) build: if
    the build changes, this fails and the README (and lake.series' own gap filling) is due a
    look."""
    assert conn.execute("SHOW timescaledb.license").fetchone() == ("apache",)
    conn.execute("CREATE TABLE public.probe (t timestamptz NOT NULL, v float8)")
    conn.execute("SELECT public.create_hypertable('public.probe', public.by_range('t'))")
    conn.execute("INSERT INTO public.probe VALUES (now() - interval '1 month', 1), (now(), 2)")
    missing = [
        "SELECT public.time_bucket_gapfill('1 day', t) FROM public.probe GROUP BY 1",
        "SELECT public.add_retention_policy('public.probe', interval '1 day')",
        "ALTER TABLE public.probe SET (timescaledb.compress)",
        "CREATE MATERIALIZED VIEW public.probe_daily WITH (timescaledb.continuous) AS"
        " SELECT public.time_bucket('1 day', t) AS d, avg(v) FROM public.probe GROUP BY 1",
    ]
    for statement in missing:
        with pytest.raises(psycopg.Error, match='under the current "apache" license'):
            conn.execute(statement)
    # What the lake uses works: time_bucket with a time zone, first/last, drop_chunks.
    assert conn.execute(
        "SELECT public.time_bucket('1 day', '2026-11-02 03:00Z'::timestamptz, 'Asia/Tokyo')"
    ).fetchone() == (datetime(2026, 11, 1, 15, tzinfo=UTC),)
    conn.execute("SELECT public.drop_chunks('public.probe', older_than => now())")


def test_the_figures_job_keeps_the_lakes_history_in_a_hypertable(conn: Conn, steps: str):
    """The figures job samples the quality score of each dataset that received records in the
    last 24 hours and the bytes of each storage into lake.figure_history, a hypertable whose
    chunks older than figure_history_retention it drops."""
    hyper = conn.execute(
        "SELECT hypertable_schema, hypertable_name FROM timescaledb_information.hypertables"
    ).fetchall()
    assert hyper == [("lake", "figure_history")]
    conn.execute("SELECT lake.act_as('alice', 'session')")
    now = datetime.now(UTC)
    got = conn.execute(
        "SELECT accepted, quarantined FROM lake.ingest('steps', %s)",
        [
            Jsonb(
                [{"ts": (now - timedelta(hours=1)).isoformat(), "steps": n} for n in (1, -1, 2)]
                + [{"ts": now.isoformat(), "steps": "many"}]
            )
        ],
    ).fetchone()
    assert got == (3, 1)
    conn.execute("SELECT lake.reset_identity()")
    old = now - timedelta(days=500)
    conn.execute(
        "INSERT INTO lake.figure_history VALUES (%s, 'quality_score', 'steps', 0.5),"
        " (%s, 'storage_bytes', 'postgres', 1)",
        [old, now - timedelta(days=10)],
    )
    conn.execute("CALL lake.run_maintenance('figures', %s)", [now])
    report = conn.execute(
        "SELECT status, details FROM lake.job_runs WHERE job = 'figures'"
    ).fetchone()
    assert report is not None and report[0] == "ok"
    details = report[1]
    assert isinstance(details, dict) and details["chunks_dropped"] == 1
    rows = conn.execute(
        "SELECT figure, subject, value FROM lake.figure_history WHERE at = %s ORDER BY 1, 2",
        [now],
    ).fetchall()
    assert details["samples"] == len(rows)
    score = conn.execute(
        "SELECT score FROM lake.quality_scores"
        " WHERE dataset = 'steps' AND check_type = 'all' AND time_window = '24h'"
    ).fetchone()
    assert score is not None and 0 < float(str(score[0])) < 1  # the record of "many" steps
    assert ("quality_score", "steps", score[0]) in rows
    storage = {str(s): v for f, s, v in rows if f == "storage_bytes"}
    assert {"postgres", "archive"} <= storage.keys()
    assert isinstance(storage["postgres"], float) and storage["postgres"] > 0
    # The sample of 500 days ago went with its chunk; the one of 10 days ago stays.
    assert conn.execute(
        "SELECT count(*) FROM lake.figure_history WHERE at < %s", [now]
    ).fetchone() == (1,)
    # lake.series' bucketing serves the history too (administrators read it directly).
    hourly = conn.execute(
        "SELECT public.time_bucket('1 hour', at), avg(value) FROM lake.figure_history"
        " WHERE figure = 'quality_score' GROUP BY 1"
    ).fetchall()
    assert len(hourly) == 1
    with pytest.raises(psycopg.Error, match="figure_history_retention"):
        conn.execute("SELECT lake.set_setting('figure_history_retention', '1 hour')")


def test_lake_series_prints_a_users_buckets(db: str, conn: Conn, steps: str):
    span = ["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-05T00:00:00+00:00"]
    out = run_lake("series", "steps", "-b", "1 day", *span, "--user", "bob", "--json", dsn=db)
    assert json.loads(out.stdout) == [
        {"bucket": f"2026-11-0{d}T00:00:00Z", "records": n, "value": float(n)}
        for d, n in ((2, 3), (3, 2))
    ]
    key = key_of(conn, "alice")
    out = run_lake(
        "series",
        "steps",
        "-b",
        "1 day",
        *span,
        "-f",
        "steps",
        "-a",
        "max",
        "--api-key",
        key,
        dsn=db,
    )
    lines = out.stdout.splitlines()
    assert lines[0].split("\t") == ["bucket", "records", "max"]
    assert lines[1].split("\t") == ["2026-11-02T00:00:00Z", "10", "8.0"]
    bad = run_lake(
        "series",
        "steps",
        "-b",
        "1 day",
        *span,
        "-a",
        "median",
        "--api-key",
        key,
        dsn=db,
        check=False,
    )
    assert bad.returncode == 1 and "unknown aggregate 'median'" in bad.stderr
