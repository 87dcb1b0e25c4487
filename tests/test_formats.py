"""Source formats: exports as people bring them (Google Takeout Records.json and Semantic
Location History, a Takeout zip, Spotify's extended streaming history, Apple Health's
export.xml), converted inside the database on every ingest path, the quarantine keeping what
was sent. The sample files (tests/export_samples.py) carry the records expected of them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from lake_client import exports, records
from lake_client.client import Lake
from lake_client.errors import InputError
from tests import export_samples as samples
from tests.conftest import APP_ROLE
from tests.test_cli import lake as cli

PLPYTHON = Path(__file__).resolve().parents[1] / "plpython"
Doc = dict[str, Any]


def canonical(docs: list[Any]) -> list[str]:
    return sorted(json.dumps(d, sort_keys=True) for d in docs)


def create(conn: psycopg.Connection[Any], name: str, schema: Doc, fmt: str) -> None:
    conn.execute(
        "SELECT lake.create_dataset(%s, %s, %s)",
        [name, Jsonb(schema), Jsonb({"source_format": fmt})],
    )


def stored(db: str, dataset: str) -> list[Any]:
    with psycopg.connect(db) as conn:
        return [r[0] for r in conn.execute(f"SELECT doc FROM user_data.{dataset}").fetchall()]


def quarantined(db: str, dataset: str) -> list[Any]:
    with psycopg.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT doc FROM lake.quarantine WHERE dataset = %s", [dataset]
            ).fetchall()
        ]


def counts_hold(db: str, dataset: str) -> tuple[int, int, int]:
    """received, accepted, quarantined over the dataset's batches; each batch adds up, and the
    tables agree with the counts."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT received, accepted, quarantined FROM lake.batches WHERE dataset = %s",
            [dataset],
        ).fetchall()
    assert rows and all(r == a + q for r, a, q in rows)
    total = tuple(sum(c) for c in zip(*rows, strict=True))
    assert total[1:] == (len(stored(db, dataset)), len(quarantined(db, dataset)))
    return total  # type: ignore[return-value]


def check(db: str, dataset: str, sources: list[Doc], expected: list[Doc | None]) -> None:
    """Stored = the expected conversion of the valid ones; quarantined = the others as sent."""
    assert canonical(stored(db, dataset)) == canonical([e for e in expected if e is not None])
    assert canonical(quarantined(db, dataset)) == canonical(
        [s for s, e in zip(sources, expected, strict=True) if e is None]
    )
    received, _accepted, held = counts_hold(db, dataset)
    assert (received, held) == (len(sources), expected.count(None))


# -- the converters and readers, without a server ---------------------------------------------


@pytest.fixture
def formats_module() -> Any:
    sys.path.insert(0, str(PLPYTHON))
    try:
        import lake_formats

        yield lake_formats
    finally:
        sys.path.remove(str(PLPYTHON))


@pytest.mark.fast
def test_every_format_module_is_listed_and_described(formats_module: Any):
    on_disk = {p.stem for p in (PLPYTHON / "lake_formats").glob("*.py")} - {"__init__", "_time"}
    assert set(formats_module.FORMATS) == on_disk
    for name, description, reader, member, sql, time_field, time_sql in formats_module.describe():
        assert description and member and (reader in ("json", "jsonl") or ":" in reader), name
        assert (sql is None) == hasattr(formats_module.module(name), "convert"), name
        assert (time_sql is None or sql is not None) and (time_sql is None) == (time_field is None)


@pytest.mark.fast
def test_spotify_plays_convert_in_plain_python(formats_module: Any):
    plays, expected = samples.spotify_history(20)
    out = formats_module.convert_many("spotify_streaming", [json.dumps(p) for p in plays])
    for exp, got in zip(expected, out, strict=True):
        if exp is not None:
            assert json.loads(got) == exp


@pytest.mark.fast
def test_a_record_the_converter_cannot_read_says_so(formats_module: Any):
    out = formats_module.convert_many("spotify_streaming", ["[1, 2]", '{"ts": 5}', "null"])
    assert json.loads(out[0]) == {"source_error": "a source record must be a JSON object"}
    assert json.loads(out[1]) == {}  # no time: the schema's reasons will say so
    assert json.loads(out[2]) == {"source_error": "a source record must be a JSON object"}


def test_sql_conversion_of_takeout_locations(conn: psycopg.Connection[Any]):
    """The SQL of google_takeout_records: every form, and what it cannot read left out."""
    locs = [samples.takeout_location(i) for i in range(30)]
    odd = [[1], {"latitudeE7": "52", "timestampMs": "12a", "activity": {"x": 1}}]
    (out,) = conn.execute(
        "SELECT lake_internal._convert('google_takeout_records', %s::jsonb[])",
        [[Jsonb(loc) for loc, _ in locs] + [Jsonb(o) for o in odd]],
    ).fetchone()
    for (loc, exp), got in zip(locs, out, strict=False):
        if exp is not None:
            assert got == exp, loc
    assert out[-2:] == [{"source_error": "a source record must be a JSON object"}, {}]


def test_sql_conversion_of_takeout_locations_at_the_edges(conn: psycopg.Connection[Any]):
    """Nulls are left out at every depth (as jsonb_strip_nulls would), text is escaped, and the
    activity is the most confident object of the first reading."""
    cases = [
        ({"timestamp": 'a"b\\c\n', "timestampMs": "1"}, {"ts": 'a"b\\c\n'}),
        ({"timestamp": "", "timestampMs": 253402300800000}, {"ts": "10000-01-01T00:00:00.000Z"}),
        ({"timestampMs": "1000000000000000", "latitudeE7": -1}, {"lat": -0.0000001}),
        (
            {"accuracy": None, "altitude": {"a": None, "b": [None, {"c": None}]}, "deviceTag": 1},
            {"altitude": {"b": [None, {}]}, "device_tag": 1},
        ),
        (
            {"source": [], "heading": False, "velocity": {}},
            {"source": [], "heading": False, "velocity": {}},
        ),
        ({"activity": [{"activity": [{"type": None, "confidence": None}]}]}, {}),
        (
            {
                "activity": [
                    {
                        "activity": [
                            {"confidence": "high"},
                            {"type": "A", "confidence": 5},
                            {"type": "B", "confidence": 5},
                            7,
                        ]
                    }
                ]
            },
            {"activity": "A", "activity_confidence": 5},
        ),
        ({"activity": [{"activity": [{"type": {"n": None}}]}]}, {"activity": {}}),
    ]
    (out,) = conn.execute(
        "SELECT lake_internal._convert('google_takeout_records', %s::jsonb[])",
        [[Jsonb(src) for src, _ in cases]],
    ).fetchone()
    assert out == [exp for _, exp in cases]


def test_takeout_times_handed_over_are_what_the_lake_reads(conn: psycopg.Connection[Any]):
    """google_takeout_records gives the time it computes from timestampMs with the record
    (TIME_SQL): exactly what lake.parse_times reads from the record's ts, in any session time
    zone; the other forms, and times beyond what RFC 3339 can write, are read from ts."""
    conn.execute("SET TimeZone = 'America/St_Johns'")  # -03:30: a time zone leak shows
    cases: list[tuple[Any, bool]] = [(samples.takeout_location(i)[0], i % 3 != 2) for i in range(9)]
    cases += [
        ({"timestampMs": "0"}, True),
        ({"timestampMs": 253402300799999}, True),  # the last millisecond of 9999
        ({"timestamp": "", "timestampMs": "1700000000123"}, True),
        ({"timestampMs": 253402300800000}, False),  # year 10000: no time
        ({"timestampMs": "1000000000000000"}, False),
        ({"timestamp": "2024-02-30T00:00:00.000Z", "timestampMs": "1"}, False),
        ({"timestamp": "2024-02-29T23:59:60Z"}, False),
        ({"timestampMs": "\uff11\uff12"}, False),  # full-width digits
        ({"timestampMs": 1.5}, False),
        ({"timestampMs": "-5"}, False),
        ([1], False),
    ]
    sources = [Jsonb(src) for src, _ in cases]
    (time_sql,) = conn.execute(
        "SELECT time_sql FROM lake_internal._source_formats() WHERE name = 'google_takeout_records'"
    ).fetchone()
    (handed,) = conn.execute(
        f"SELECT array_agg(({time_sql.replace('%', '%%')}) ORDER BY o) FROM unnest(%s::jsonb[])"
        " WITH ORDINALITY AS u(d, o)",
        [sources],
    ).fetchone()
    docs, times = conn.execute(
        "SELECT c.docs, c.times FROM lake_internal._convert_timed("
        "'google_takeout_records', %s::jsonb[], 'ts', 'rfc3339') AS c",
        [sources],
    ).fetchone()
    (read,) = conn.execute(
        "SELECT lake.parse_times(%s::jsonb[])",
        [[Jsonb(d.get("ts")) for d in docs]],
    ).fetchone()
    assert [h is not None for h in handed] == [h for _, h in cases]
    assert times == read
    assert [t for t, h in zip(times, handed, strict=True) if h] == [h for h in handed if h]
    assert sum(t is not None for t in times) == 13  # nine samples, three edges, a leap second
    # a dataset whose time is another field, or not RFC 3339, reads it as it always did
    (other,) = conn.execute(
        "SELECT c.times FROM lake_internal._convert_timed("
        "'google_takeout_records', %s::jsonb[], 'ts', 'epoch_ms') AS c",
        [sources],
    ).fetchone()
    assert other == [None] * len(cases)


@pytest.mark.fast
def test_records_json_streams_its_locations(tmp_path: Path):
    path = tmp_path / "Records.json"
    samples.records_json(path, 25)
    with path.open("rb") as fh:
        got = list(exports.read("items:locations", io.BufferedReader(fh, 64)))
    assert [r.ref for r in got[:2]] == ["locations[0]", "locations[1]"]
    assert [json.loads(r.raw) for r in got] == [samples.takeout_location(i)[0] for i in range(25)]


@pytest.mark.fast
def test_a_cut_off_records_json_fails_the_first_pass(tmp_path: Path):
    path = tmp_path / "Records.json"
    samples.records_json(path, 5)
    path.write_bytes(path.read_bytes()[:-40])
    source = records.Source("Records.json", "items:locations", lambda: path.open("rb"))
    with pytest.raises(InputError, match="malformed or cut off"):
        records.scan(source)


@pytest.mark.fast
def test_health_export_streams_its_records(tmp_path: Path):
    path = tmp_path / "export.xml"
    with path.open("w") as fh:
        samples.health_export(fh, 9)
    with path.open("rb") as fh:
        got = [json.loads(r.raw) for r in exports.read("xml:Record", io.BufferedReader(fh))]
    assert len(got) == 9
    assert got[1]["metadata"] == {"HKMetadataKeyHeartRateMotionContext": "0"}
    assert got[0]["type"] == "HKQuantityTypeIdentifierStepCount" and got[0]["value"] == "412"
    assert "startDate" not in got[7]


@pytest.mark.fast
def test_an_xml_bomb_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><HealthData><Record type="&lol2;"/></HealthData>'
    )
    with pytest.raises(InputError, match="refused"):
        list(exports.read("xml:Record", io.BufferedReader(io.BytesIO(bomb))))


# -- every ingest path, against the database --------------------------------------------------


def test_records_json_with_one_command(db: str, conn: psycopg.Connection[Any], tmp_path: Path):
    create(conn, "places", samples.PLACES_SCHEMA, "google_takeout_records")
    path = tmp_path / "Records.json"
    expected = samples.records_json(path, 120)
    out = cli("ingest", "places", str(path), "--user", "alice", dsn=db)
    assert "received 120, accepted 108, quarantined 12" in out.stdout
    sources = json.loads(path.read_text())["locations"]
    check(db, "places", sources, expected)
    with psycopg.connect(db) as c:
        rules = c.execute(
            "SELECT DISTINCT r->>'rule' FROM lake.quarantine, jsonb_array_elements(reasons) r"
        ).fetchall()
    assert rules == [("maximum",)]  # what failed after conversion
    assert "google_takeout_records" in cli("datasets", dsn=db).stdout


def test_semantic_location_history_with_one_command(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
):
    create(conn, "visits", samples.VISITS_SCHEMA, "google_takeout_semantic")
    doc, expected = samples.semantic_month()
    path = tmp_path / "2024_JANUARY.json"
    path.write_text(json.dumps(doc, indent=2))
    cli("ingest", "visits", str(path), "--user", "alice", dsn=db)
    check(db, "visits", doc["timelineObjects"], expected)


def test_spotify_history_with_one_command(db: str, conn: psycopg.Connection[Any], tmp_path: Path):
    create(conn, "plays", samples.PLAYS_SCHEMA, "spotify_streaming")
    plays, expected = samples.spotify_history(40)
    path = tmp_path / "Streaming_History_Audio_2025-2026_0.json"
    path.write_text(json.dumps(plays, indent=2))
    out = cli("ingest", "plays", str(path), "--user", "alice", "--json", dsn=db)
    assert json.loads(out.stdout)["quarantined"] == 4
    check(db, "plays", plays, expected)
    assert not any("203.0.113.7" in json.dumps(d) for d in stored(db, "plays"))


def test_apple_health_with_one_command(db: str, conn: psycopg.Connection[Any], tmp_path: Path):
    create(conn, "health", samples.HEALTH_SCHEMA, "apple_health")
    path = tmp_path / "export.xml"
    with path.open("w") as fh:
        expected = samples.health_export(fh, 30)
    cli("ingest", "health", str(path), "--user", "alice", dsn=db)
    with path.open("rb") as fh:
        sources = [json.loads(r.raw) for r in exports.read("xml:Record", io.BufferedReader(fh))]
    check(db, "health", sources, expected)


def test_an_apple_health_zip_and_stdin(db: str, conn: psycopg.Connection[Any], tmp_path: Path):
    """Apple's export.zip as it comes (export.xml beside export_cda.xml and workout routes), and
    a Records.json piped in: the dataset's source format says how to read them."""
    create(conn, "health", samples.HEALTH_SCHEMA, "apple_health")
    create(conn, "places", samples.PLACES_SCHEMA, "google_takeout_records")
    xml = io.StringIO()
    expected = samples.health_export(xml, 16)
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("apple_health_export/export.xml", xml.getvalue())
        zf.writestr("apple_health_export/export_cda.xml", "<ClinicalDocument/>")
        zf.writestr("apple_health_export/workout-routes/route_1.gpx", "<gpx/>")
    doc = json.loads(cli("ingest", "health", str(path), "--user", "alice", "--json", dsn=db).stdout)
    assert (doc["received"], doc["quarantined"], len(doc["skipped"])) == (16, 2, 2)
    assert canonical(stored(db, "health")) == canonical([e for e in expected if e is not None])

    records_file = tmp_path / "Records.json"
    places = samples.records_json(records_file, 30)
    proc = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "ingest", "places", "-", "--user", "alice"],
        input=records_file.read_bytes(),
        env={**os.environ, "LAKE_DSN": db, "COLUMNS": "200"},
        capture_output=True,
        timeout=300,
        check=True,
    )
    assert b"received 30, accepted 27, quarantined 3" in proc.stdout
    assert canonical(stored(db, "places")) == canonical([e for e in places if e is not None])


def test_a_takeout_zip_sends_each_member_to_its_dataset(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
):
    create(conn, "places", samples.PLACES_SCHEMA, "google_takeout_records")
    create(conn, "visits", samples.VISITS_SCHEMA, "google_takeout_semantic")
    path = tmp_path / "takeout-20260101T000000Z-001.zip"
    expected = samples.takeout_zip(path, 50)
    out = cli("ingest", "places", str(path), "--user", "alice", "--json", dsn=db)
    doc = json.loads(out.stdout)
    member = samples.semantic_member()
    assert [
        (s["source"], s["dataset"], s["received"], s["quarantined"]) for s in doc["sources"]
    ] == [
        (f"{path.name}:{samples.RECORDS_MEMBER}", "places", 50, 5),
        (f"{path.name}:{member}", "visits", 6, 1),
    ]
    assert [s["source"].split(":")[1] for s in doc["skipped"]] == [
        "Takeout/archive_browser.html",
        "Takeout/Location History/Settings.json",
    ]
    assert len(stored(db, "places")) == 45 and len(stored(db, "visits")) == 5
    assert canonical(stored(db, "places")) == canonical(
        [e for e in expected[samples.RECORDS_MEMBER] if e is not None]
    )
    assert canonical(stored(db, "visits")) == canonical([e for e in expected[member] if e])
    counts_hold(db, "places")
    counts_hold(db, "visits")
    text = cli("ingest", "places", str(path), "--user", "alice", dsn=db).stdout
    assert "nothing new" in text and "skipped (no dataset's source format" in text


def test_every_path_converts_the_same(db: str, conn: psycopg.Connection[Any], lake: Lake):
    """lake.ingest (SQL), the client (COPY inbox) and a quarantine release convert alike."""
    create(conn, "plays", samples.PLAYS_SCHEMA, "spotify_streaming")
    plays, expected = samples.spotify_history(18)
    with psycopg.connect(db) as c:
        c.execute("SELECT lake.act_as('alice')")
        c.execute("SELECT lake.ingest('plays', %s)", [Jsonb(plays[:9])])
    lake.act_as("alice")
    summary = lake.ingest("plays", plays[9:])
    assert (summary.received, summary.quarantined) == (9, 1)
    check(db, "plays", plays, expected)
    # The quarantine holds the play as sent: a correction is a play too, converted on release.
    with psycopg.connect(db) as c:
        qid, doc = c.execute("SELECT id, doc FROM lake.quarantine ORDER BY id LIMIT 1").fetchone()
        assert doc["ms_played"] == -1 and "master_metadata_track_name" in doc
        c.execute("SELECT lake.quarantine_release(%s, %s)", [qid, Jsonb({**doc, "ms_played": 5})])
        got = c.execute(
            "SELECT doc FROM user_data.plays WHERE doc->>'ts' = %s", [doc["ts"]]
        ).fetchone()
    assert got is not None and got[0]["ms_played"] == 5
    assert got[0]["track"] == doc["master_metadata_track_name"]


def test_an_application_with_a_users_key_ingests_an_export(
    db: str, conn: psycopg.Connection[Any], as_role: Any, tmp_path: Path
):
    """What a person's app does: reads lake.source_formats() and loads Records.json with the
    person's key, as a login role that is neither superuser nor owner."""
    create(conn, "places", samples.PLACES_SCHEMA, "google_takeout_records")
    conn.execute("SELECT lake.create_user('bob')")
    (key,) = conn.execute("SELECT api_key FROM lake.create_api_key('bob')").fetchone()
    app = as_role(APP_ROLE)
    assert ("places", "items:locations") in app.execute(
        "SELECT d.name, f.reader FROM lake.datasets d JOIN lake.source_formats() f"
        " ON f.name = d.source_format"
    ).fetchall()
    path = tmp_path / "Records.json"
    expected = samples.records_json(path, 40)
    cli("ingest", "places", str(path), "--api-key", key, dsn=make_conninfo(db, user=APP_ROLE))
    with psycopg.connect(db) as c:
        rows = c.execute("SELECT user_id, doc FROM user_data.places").fetchall()
    assert {r[0] for r in rows} == {"bob"}
    assert canonical([r[1] for r in rows]) == canonical([e for e in expected if e is not None])


def test_an_unknown_source_format_is_refused(conn: psycopg.Connection[Any]):
    with pytest.raises(psycopg.Error, match=r"not one of lake\.source_formats\(\)") as err:
        create(conn, "plays", samples.PLAYS_SCHEMA, "myspace_export")
    assert err.value.sqlstate == "LK005"
    names = [r[0] for r in conn.execute("SELECT name FROM lake.source_formats() ORDER BY 1")]
    assert names == [
        "apple_health",
        "google_takeout_records",
        "google_takeout_semantic",
        "spotify_streaming",
    ]


def test_an_invalid_source_record_is_quarantined_as_sent_on_every_path(
    db: str, conn: psycopg.Connection[Any], lake: Lake
):
    """lake.ingest, lake.ingest_raw, plain INSERTs into the COPY inbox (no refs, two statements
    in one transaction) and the client's COPY: the quarantine holds each invalid play exactly as
    it was sent, never its conversion, and every path counts it."""
    create(conn, "plays", samples.PLAYS_SCHEMA, "spotify_streaming")
    plays, expected = samples.spotify_history(45)  # every 9th invalid: 5 of them
    bad = [p for p, e in zip(plays, expected, strict=True) if e is None]
    good = [p for p, e in zip(plays, expected, strict=True) if e is not None]
    assert len(bad) == 5
    with psycopg.connect(db) as c:
        c.execute("SELECT lake.act_as('alice')")
        c.execute("SELECT lake.ingest('plays', %s)", [Jsonb([bad[0], good[0]])])
        batch = uuid.uuid4()
        c.execute("SELECT lake.begin_batch('plays', %s, NULL)", [batch])
        c.execute(
            "SELECT lake.ingest_raw('plays', %s, ARRAY['line 1', 'line 2'], %s)",
            [batch, [json.dumps(bad[1]).encode(), json.dumps(good[1]).encode()]],
        )
    with psycopg.connect(db) as c:  # one transaction, two statements, no refs
        c.execute("SELECT lake.act_as('alice')")
        for play in (bad[2], bad[3]):
            c.execute(
                "INSERT INTO inbox.plays (ts, doc) VALUES (now(), %s), (now(), %s)",
                [Jsonb(play), Jsonb(good[2])],
            )
    lake.act_as("alice")
    summary = lake.ingest("plays", [bad[4], *good[3:6]])
    assert (summary.received, summary.quarantined) == (4, 1)
    assert canonical(quarantined(db, "plays")) == canonical(bad)
    with psycopg.connect(db) as c:
        refs = [r[0] for r in c.execute("SELECT record_ref FROM lake.quarantine ORDER BY id")]
    assert len(set(refs)) == 5 and None not in refs
    received, _accepted, held = counts_hold(db, "plays")
    assert (received, held) == (12, 5)
