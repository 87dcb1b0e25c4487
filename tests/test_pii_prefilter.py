"""The PII scan's pre-filter in SQL (lake_internal._pii_prefilter_sql, the pattern from
plpython/lake_pii): on a real PostgreSQL, it lets through every document the Python scanner finds
something in, it rules out ordinary records so they never enter Python, and the ingest paths
record exactly the findings the scanner makes without it."""

from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent / "plpython"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plpython"))

from lake_pii import PREFILTER, scan
from pii_fuzz import documents, location_records
from pii_sample import sample

Conn = psycopg.Connection[tuple[object, ...]]
DATASET = "location_history"


def _through_the_prefilter(conn: Conn, docs: list[object]) -> list[tuple[str, bool]]:
    """For each document, as the scan sees it (its JSON text less the fields the dataset's scan
    skips) and whether the pre-filter of the ingest paths lets it through, all of them taken as
    one statement's."""
    row = conn.execute(
        "SELECT lake_internal._pii_prefilter_sql(%s, 'SELECT s.d AS doc FROM s', 's.d'),"
        " lake_internal._pii_skip(%s)",
        [DATASET, DATASET],
    ).fetchone()
    assert row is not None
    expression, skip = row
    query = sql.SQL(
        "WITH s AS (SELECT x.d, x.o FROM unnest(%s::jsonb[]) WITH ORDINALITY AS x(d, o))"
        " SELECT (s.d - %s::text[])::text, {} FROM s ORDER BY s.o"
    ).format(sql.SQL(str(expression)))  # the lake's own SQL expression
    rows = conn.execute(query, [[Jsonb(d) for d in docs], skip]).fetchall()
    return [(str(text), bool(passed)) for text, passed in rows]


def _location(doc: dict[str, object], i: int) -> dict[str, object]:
    """`doc` as a valid record of the demo's schema (its fields come on top)."""
    return {**doc, "ts": f"2026-12-01T00:00:{i % 60:02d}Z", "lat": 1.5, "lon": 2.5}


def test_the_pattern_comes_from_the_detectors(conn: Conn):
    assert conn.execute("SELECT lake_internal._pii_prefilter()").fetchone() == (PREFILTER,)


def test_it_never_rules_out_a_finding(conn: Conn, location_dataset: str):
    """Random documents in many shapes (pii_fuzz), the labelled sample's values and bench-like
    records, as JSON text written by PostgreSQL: whatever the scanner finds in one, PostgreSQL's
    pre-filter lets through."""
    docs: list[object] = documents(41, 3000)
    docs += [s.doc for s in sample()]
    docs += [_location(d, i) for i, d in enumerate(documents(42, 1000))]
    docs += [["a@example.org", 4111111111111111], ["ts", "lat"], []]  # records are objects;
    # an array is kept as it is (the scan skips only an object's fields)
    docs += location_records(43, 500)
    found = ruled_out = 0
    for text, passed in _through_the_prefilter(conn, docs):
        findings = scan(json.loads(text))
        assert passed or not findings, (text, findings)
        found += bool(findings)
        ruled_out += not passed
    assert found >= 5000 and ruled_out >= 1000, (found, ruled_out)  # both sides exercised


def test_it_rules_out_ordinary_records(conn: Conn, location_dataset: str):
    """Records as make bench generates them: none gets through, while their whole text would;
    with one record holding an e-mail address among them, that one alone."""
    docs = location_records(44, 2000)
    assert not any(passed for _, passed in _through_the_prefilter(conn, docs))
    docs[7] = {**docs[7], "note": "a@example.org"}
    through = [i for i, (_, passed) in enumerate(_through_the_prefilter(conn, docs)) if passed]
    assert through == [7]
    pattern = conn.execute("SELECT lake_internal._pii_prefilter()").fetchone()
    assert pattern is not None
    everything = conn.execute(
        "SELECT bool_and(d::text ~ %s) FROM unnest(%s::jsonb[]) AS d",
        [pattern[0], [Jsonb(d) for d in docs]],
    ).fetchone()
    assert everything == (True,)  # so it is the skipped fields that keep them out, as meant


def _pii_find_calls(conn: Conn) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
        " WHERE schemaname = 'lake_internal' AND funcname = '_pii_find'"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_ordinary_records_never_enter_python(db: str, location_dataset: str):
    """A batch of ordinary records through the inbox (the path lake_client takes) and through a
    plain INSERT: the scan's Python function is not called at all; one record with an e-mail
    address in the next batch makes it run once."""
    docs = location_records(45, 1000)
    with psycopg.connect(db) as c:
        c.execute("SET track_functions = 'all'")
        c.execute("SELECT lake.act_as('alice', 'session')")
        c.execute(
            "INSERT INTO inbox.location_history (ts, doc)"
            " SELECT (d->>'ts')::timestamptz, d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs]],
        )
        c.execute(
            "INSERT INTO user_data.location_history (user_id, ts, doc)"
            " SELECT 'alice', (d->>'ts')::timestamptz, d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs[:100]]],
        )
        assert _pii_find_calls(c) == 0
        stored = c.execute("SELECT count(*) FROM user_data.location_history").fetchone()
        assert stored == (1100,)
        c.execute(
            "INSERT INTO inbox.location_history (ts, doc)"
            " SELECT now(), d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in [*docs[:10], {**docs[10], "note": "a@example.org"}, "a@b.co"]]],
        )  # a record that is no object goes to the quarantine, unscanned, as before
        assert _pii_find_calls(c) == 1
        assert c.execute("SELECT count(*) FROM lake.quarantine").fetchone() == (1,)
        c.commit()
        assert c.execute("SELECT path, kind FROM lake.pii_findings").fetchall() == [
            ("$.note", "email")
        ]


def test_the_ingest_paths_record_what_the_scanner_finds(db: str, location_dataset: str):
    """Random records through the inbox, lake.ingest and a plain INSERT: the findings recorded
    (with the pre-filter) are exactly what the scanner finds in each stored record, less the
    fields the scan skips."""
    docs = [_location(d, i) for i, d in enumerate(documents(46, 1500))]
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT lake.act_as('alice', 'session')")
        c.execute(
            "INSERT INTO inbox.location_history (ts, doc)"
            " SELECT (d->>'ts')::timestamptz, d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs[:500]]],
        )
        c.execute("SELECT lake.ingest('location_history', %s)", [Jsonb(docs[500:1000])])
        c.execute(
            "INSERT INTO user_data.location_history (user_id, ts, doc)"
            " SELECT 'alice', (d->>'ts')::timestamptz, d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs[1000:]]],
        )
        rows = c.execute(
            "SELECT t.id, (t.doc - lake_internal._pii_skip('location_history'))::text"
            " FROM user_data.location_history AS t"
        ).fetchall()
        recorded = set(c.execute("SELECT record_id, path, kind FROM lake.pii_findings").fetchall())
    assert len(rows) == len(docs)  # every one stored: they are valid
    expected = {(i, f.path, f.kind) for i, text in rows for f in scan(json.loads(str(text)))}
    assert recorded == expected
    assert len({r[0] for r in expected}) >= 500  # many records hold something


def test_large_statements_are_filtered_row_by_row(db: str, location_dataset: str):
    """A statement of more than 4 MB of documents is not joined into one text: each row is
    matched on its own, and the findings are the same."""
    rng = random.Random(47)
    filler = "".join(rng.choice(string.ascii_letters) for _ in range(9000))  # incompressible
    docs = [_location({"blob": filler[i:] + filler[:i]}, i) for i in range(600)]
    docs[300]["note"] = "mail a@example.org"
    with psycopg.connect(db, autocommit=True) as c:
        size = c.execute(
            "SELECT sum(pg_column_size(d)) FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs]],
        ).fetchone()
        assert size is not None and int(str(size[0])) > 4 * 1024 * 1024
        c.execute(
            "INSERT INTO user_data.location_history (user_id, ts, doc)"
            " SELECT 'alice', (d->>'ts')::timestamptz, d FROM unnest(%s::jsonb[]) AS d",
            [[Jsonb(d) for d in docs]],
        )
        found = c.execute(
            "SELECT t.doc->>'note', f.path, f.kind FROM lake.pii_findings AS f"
            " JOIN user_data.location_history AS t ON t.id = f.record_id"
        ).fetchall()
    assert found == [("mail a@example.org", "$.note", "email")]
