"""Export benchmark: a person's export (lake.export_user streamed into a zip) in records/s.

    .venv/bin/python bench/export.py [--records 1000000] [--others 100000] [--keep]

Creates a fresh migrated database on the lake's server with one dataset holding --records
records of the person and --others of someone else, then, in the same run:

  baseline  COPY (SELECT the person's rows as JSON text) TO STDOUT, read and thrown away: what
            reading the rows costs before anything is written
  export    Lake.export_user(path, user): the function's rows through a server-side cursor into
            a deflated zip member with its SHA-256, and the manifest
Printed: records/s of each, their ratio, the zip's size and the client's peak memory (RSS).
"""

from __future__ import annotations

import argparse
import resource
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts

from lake_client.client import Lake

DATASET = "places"


def prepare(dsn: str, records: int, others: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'SELECT lake.create_dataset(%s, \'{"type": "object"}\', \'{"pii_scan": false}\')',
            [DATASET],
        )
        for user in ("person", "other"):
            conn.execute("SELECT lake.create_user(%s)", [user])
        # Superuser: explicit owners, no RLS; the validation trigger checks every row.
        conn.execute(
            f"""
            INSERT INTO user_data.{DATASET} (user_id, ts, doc)
            SELECT CASE WHEN i <= %(n)s THEN 'person' ELSE 'other' END, t,
                   jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                      'lat', 52 + random(), 'lon', 13 + random(),
                                      'note', repeat('x', 40))
              FROM generate_series(1, %(n)s + %(o)s) AS i,
                   LATERAL (SELECT now() - interval '20 days' * i / (%(n)s + %(o)s) AS t) AS x
            """,
            {"n": records, "o": others},
        )
        conn.execute(f"VACUUM ANALYZE user_data.{DATASET}")


def baseline(dsn: str) -> float:
    """Seconds to read the person's rows as JSON text with COPY TO STDOUT."""
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        with conn.cursor().copy(
            f"COPY (SELECT row_to_json(t)::text FROM user_data.{DATASET} AS t"
            " WHERE t.user_id = 'person' ORDER BY t.ts, t.id) TO STDOUT"
        ) as copy:
            for _ in copy:
                pass
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="the person's records")
    parser.add_argument("--others", type=int, default=100_000, help="someone else's records")
    parser.add_argument("--database", default="lake_bench_export", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.records < 1 or args.others < 0:
        parser.error("--records must be positive, --others not negative")

    settings = lake_settings()
    print("command: " + shlex.join([".venv/bin/python", "bench/export.py", *sys.argv[1:]]))
    dsn = fresh_database(settings, args.database, {})
    folder = Path(tempfile.mkdtemp(prefix="lake-bench-export-"))
    try:
        for fact in machine_facts(dsn):
            print(fact)
        t0 = time.perf_counter()
        prepare(dsn, args.records, args.others)
        print(
            f"data:    {args.records:,} records of the person, {args.others:,} of another "
            f"(loaded in {time.perf_counter() - t0:.0f} s)"
        )
        copy_s = baseline(dsn)
        target = folder / "person.zip"
        with Lake(dsn) as lake:
            t0 = time.perf_counter()
            manifest = lake.export_user(target, "person")
            export_s = time.perf_counter() - t0
        (records,) = [f for f in manifest["files"] if f["name"] == f"records/{DATASET}.jsonl"]
        if records["lines"] != args.records:
            raise SystemExit(f"exported {records['lines']} records, not {args.records}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        print(f"baseline (COPY TO STDOUT, read)  {args.records / copy_s:>12,.0f} records/s")
        print(f"export (lake.export_user → zip)  {args.records / export_s:>12,.0f} records/s")
        print(f"ratio export / baseline          {copy_s / export_s:>12.2f}")
        print(
            f"zip {target.stat().st_size / 2**20:,.1f} MiB "
            f"({records['bytes'] / 2**20:,.1f} MiB of JSON Lines); "
            f"client peak RSS {peak_mb:,.0f} MiB"
        )
    finally:
        if not args.keep:
            drop_database(settings, args.database)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
