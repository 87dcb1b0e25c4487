"""Source-format benchmark: a Google Takeout Records.json ingested with its conversion, against
JSON Lines of the same records already converted, measured in the same run.

    .venv/bin/python bench/formats.py [--locations 1000000] [--runs 2] [--batch-size 10000]
                                      [--keep]

Writes a Records.json of N locations in the real shape (tests/export_samples.py: the older and
newer time forms, activities, 1 % invalid after conversion: a latitude beyond 90 degrees) over
the last 300 days, and a JSON Lines file of the records the lake makes of them (converted by the
lake's own lake_internal._convert before the rounds). It creates a fresh
database with two datasets of the same JSON Schema: `places_src` declares the source format
google_takeout_records, `places` none. Then it alternates, with a CHECKPOINT before each:

  jsonl     Lake.ingest of the converted lines into `places` (COPY into the inbox, validation);
  takeout   Lake.ingest of the Records.json's locations, read incrementally (ijson), into
            `places_src`: the database converts each batch, then validates it.

Both as an application login role (no superuser, no BYPASSRLS) acting for one lake user. Prints
records/s of both, the ratio takeout/jsonl per round and its median, and proves that nothing was
lost and that both datasets hold the same records.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts
from psycopg.conninfo import make_conninfo

from lake_client.client import IngestSummary, Lake
from lake_client.records import Record, Source, records
from tests import export_samples as samples

APP_ROLE = "lake_bench_app"
LAKE_USER = "bench-user"
SPAN = timedelta(days=300)


def data_files(dsn: str, folder: Path, n: int) -> tuple[Path, Path]:
    """Records.json of n locations and the JSON Lines of their conversion by the lake itself
    (lake_internal._convert, as the superuser), made afresh: the times are relative to now."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / f"Records-{n}.json"
    out = folder / f"converted-{n}.jsonl"
    samples.records_json(src, n, step=SPAN / n, invalid_every=100)
    source = Source(src.name, "items:locations", lambda: src.open("rb"))
    with psycopg.connect(dsn) as conn, out.open("wb") as sink:
        chunk: list[bytes] = []
        for rec in [*records(source), None]:
            if rec is not None:
                chunk.append(rec.raw)
            if len(chunk) == 10_000 or (rec is None and chunk):
                rows = conn.execute(
                    "SELECT d::text FROM unnest(lake_internal._convert("
                    "'google_takeout_records', %s::text[]::jsonb[])) AS d",
                    [[c.decode() for c in chunk]],
                ).fetchall()
                sink.writelines(r[0].encode() + b"\n" for r in rows)
                chunk = []
    return src, out


def prepare_database(settings: Any, name: str) -> str:
    dsn = fresh_database(settings, name, {APP_ROLE: ["lake_app", "lake_admin"]})
    with Lake(dsn) as lake:
        lake.create_dataset("places", samples.PLACES_SCHEMA, pii_scan=False)
        lake.create_dataset(
            "places_src",
            samples.PLACES_SCHEMA,
            pii_scan=False,
            source_format="google_takeout_records",
        )
    return dsn


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE user_data.places, user_data.places_src, inbox.places, inbox.places_src,"
            " lake.quarantine, lake.batches"
        )
        conn.execute("VACUUM ANALYZE lake.batches, lake.quarantine")
        conn.execute("CHECKPOINT")


def run(dsn: str, dataset: str, recs: Any, batch_size: int) -> tuple[float, IngestSummary]:
    with Lake(make_conninfo(dsn, user=APP_ROLE), application_name="lake-bench") as lake:
        lake.act_as(LAKE_USER, "session")
        started = time.perf_counter()
        summary = lake.ingest(dataset, recs, batch_size=batch_size, origin="bench")
        return time.perf_counter() - started, summary


def same_records(dsn: str) -> tuple[int, int]:
    """(rows of places, rows of places_src that have no equal in places: 0 when alike)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM user_data.places),"
            " (SELECT count(*) FROM (SELECT doc FROM user_data.places_src"
            "  EXCEPT ALL SELECT doc FROM user_data.places) AS d)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=1_000_000, help="(1 000 000)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of jsonl + takeout (2)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="(10 000)")
    parser.add_argument("--database", default="lake_bench_formats")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.locations < 1 or args.runs < 1 or args.batch_size < 1:
        parser.error("--locations, --runs and --batch-size must be positive")
    settings = lake_settings()
    folder = settings.home / "bench"
    dsn = prepare_database(settings, args.database)
    print(f"writing {args.locations:,} locations ({folder}) …", flush=True)
    src, converted = data_files(dsn, folder, args.locations)
    n = args.locations
    ratios = []
    try:
        for round_ in range(1, args.runs + 1):
            reset(dsn)
            lines = converted.read_bytes().splitlines()
            recs = (Record(f"line {i}", x) for i, x in enumerate(lines))
            jsonl_s, jsonl = run(dsn, "places", recs, args.batch_size)
            del lines
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            source = Source(src.name, "items:locations", lambda: src.open("rb"))
            takeout_s, takeout = run(dsn, "places_src", records(source), args.batch_size)
            for s in (jsonl, takeout):
                assert s.received == n == s.accepted + s.quarantined, s
            assert (jsonl.accepted, jsonl.quarantined) == (takeout.accepted, takeout.quarantined)
            assert same_records(dsn) == (jsonl.accepted, 0)
            ratio = jsonl_s / takeout_s
            ratios.append(ratio)
            print(
                f"round {round_}: jsonl {n / jsonl_s:,.0f} records/s, takeout with conversion"
                f" {n / takeout_s:,.0f} records/s, ratio {ratio:.2f}"
                f" (accepted {takeout.accepted:,}, quarantined {takeout.quarantined:,})",
                flush=True,
            )
    finally:
        if not args.keep:
            drop_database(settings, args.database)
    print(f"ratio takeout/jsonl, median of {len(ratios)}: {statistics.median(ratios):.2f}")
    print("command: " + shlex.join(["bench/formats.py", *(argv or sys.argv[1:])]))
    for line in machine_facts(settings.dsn("postgres")):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
