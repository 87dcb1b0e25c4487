"""What the PII scan's pre-filter costs a record on the ingest benchmark's data, in the server.

    .venv/bin/python bench/pii_prefilter.py [--records 200000] [--batch-size 10000] [--repeat 5]
                                            [--keep]

Loads the records `make bench` ingests (bench/ingest.py's generator, the demo's schema) into a
plain table of a fresh database, then runs, statement by statement (one a batch, as the ingest
paths do), `SELECT count(*)` over each batch's records with each filter below, and prints the
server's CPU time a record (from /proc when the server runs on this machine, else wall-clock
time), less the same statements without a filter; the best of --repeat rounds:

  prefilter   the ingest paths' pre-filter as lake_internal._pii_prefilter_sql writes it: the
              batch's documents, less the fields the scan skips, joined and matched at once
              against lake_pii.PREFILTER (then row by row only if something matched)
  row by row  the same match made for each row (what a statement with a match, or of more than
              4 MB of documents, costs), and its parts: the fields taken off, the text written
  python      every document handed to the Python scan (lake_internal._pii_find, one call a
              batch): what the ingest paths did before the pre-filter moved into SQL

and how many records each lets through.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import psycopg
from common import backend_cpu, drop_database, fresh_database, lake_settings, machine_facts
from ingest import DATASET, _copy_escape, data_file
from psycopg import sql

from lake_client.client import Lake
from lake_client.demo import SCHEMA

Conn = psycopg.Connection[tuple[object, ...]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="records (200 000)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="records a batch (10 000)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each filter (5)")
    parser.add_argument("--database", default="lake_bench_pii", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1 or args.batch_size < 1:
        parser.error("--records, --batch-size and --repeat must be positive")

    settings = lake_settings()
    path = data_file(settings.home / "bench", args.records)
    lines = path.read_bytes().splitlines()
    n = len(lines)
    print("command: " + shlex.join([".venv/bin/python", "bench/pii_prefilter.py", *sys.argv[1:]]))
    dsn = fresh_database(settings, args.database, {})
    try:
        with Lake(dsn) as lake:
            lake.create_dataset(DATASET, SCHEMA, description="benchmark: location history")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for fact in machine_facts(dsn):
                print(fact)
            conn.execute("CREATE TABLE docs (n bigint GENERATED ALWAYS AS IDENTITY, doc jsonb)")
            with conn.cursor().copy("COPY docs (doc) FROM STDIN") as copy:
                copy.write(b"".join(_copy_escape(line) + b"\n" for line in lines))
            conn.execute("CREATE INDEX ON docs (n)")
            conn.execute("VACUUM ANALYZE docs")
            conn.execute("SET jit = off")
            rows = "SELECT s.doc FROM s"
            row = conn.execute(
                "SELECT lake_internal._pii_prefilter_sql(%s, %s, 's.doc'),"
                " lake_internal._pii_skip(%s), lake_internal._pii_prefilter()",
                [DATASET, rows, DATASET],
            ).fetchone()
            assert row is not None
            prefilter, skip, pattern = str(row[0]), row[1], str(row[2])
            print(
                f"data:    {n:,} records as make bench makes them ({path.name}), "
                f"statements of {args.batch_size:,}"
            )
            print(f"skipped: {', '.join(skip)}; pattern: {pattern}")
            print()
            clock: Callable[[], float] = time.perf_counter
            if backend_cpu(conn) is not None:
                clock = lambda: backend_cpu(conn) or 0.0  # noqa: E731
            unit = "server CPU" if clock is not time.perf_counter else "wall-clock"

            def cost(where: sql.Composable) -> tuple[float, int]:
                """(seconds of the best round, records let through) for the filter `where`."""
                query = sql.SQL(
                    "WITH s AS MATERIALIZED (SELECT t.doc FROM docs AS t WHERE t.n > %s"
                    " AND t.n <= %s) SELECT count(*) FROM s WHERE {}"
                ).format(where)
                best, through = float("inf"), 0
                for _ in range(args.repeat):
                    started, through = clock(), 0
                    for lo in range(0, n, args.batch_size):
                        got = conn.execute(query, [lo, lo + args.batch_size]).fetchone()
                        through += int(str(got[0])) if got else 0
                    best = min(best, clock() - started)
                return best, through

            base, _ = cost(sql.SQL("s.doc IS NOT NULL"))
            text = sql.SQL("(s.doc - {}::text[])").format(sql.Literal(skip))
            filters = [
                ("prefilter", sql.SQL(prefilter)),
                ("row by row", sql.SQL("{}::text ~ {}").format(text, sql.Literal(pattern))),
                ("- skip", sql.SQL("{} IS NOT NULL").format(text)),
                ("::text", sql.SQL("{}::text IS NOT NULL").format(text)),
                (
                    "python",
                    sql.SQL(
                        "(SELECT count(*) FROM lake_internal._pii_find("
                        "ARRAY(SELECT x.doc - {}::text[] FROM s AS x))) >= 0"
                    ).format(sql.Literal(skip)),
                ),
            ]
            print(f"{'filter':<12}{'µs a record':>12}{'let through':>14}   ({unit})")
            for name, where in filters:
                seconds, through = cost(where)
                shown = "" if name in ("- skip", "::text", "python") else f"{through:,}"
                print(f"{name:<12}{(seconds - base) / n * 1e6:>12.2f}{shown:>14}")
    finally:
        if not args.keep:
            drop_database(settings, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
