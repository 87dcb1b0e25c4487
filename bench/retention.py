"""Retention benchmark: expiring a month costs the same whatever its row count.

    .venv/bin/python bench/retention.py [--small 10000] [--large 1000000] [--rounds 3] [--keep]

Creates a fresh migrated database on the lake's server with two datasets whose oldest month
holds --small and --large rows, and runs `CALL lake.apply_retention(<now>)` with a simulated
"now" at which exactly that month has left the retention window. Both months are archived in the
same call (gzip JSON Lines, read back and compared with the table), then detached and dropped.
Printed side by side, from the report of lake.apply_retention:

  drop     the detach-and-drop step (the ACCESS EXCLUSIVE lock on the dataset's table is held
           only for this): it does not depend on the row count, since the month is dropped, not
           deleted row by row. The small month is the baseline measured in the same run.
  archive  writing the archive and reading it back (round 1), which is proportional to the rows
           and holds no lock that blocks ingest; in later rounds the month is restored
           (lake.restore_partition, timed too) and expired again, and the archive, still equal
           to the partition, is only verified against it, not written again.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts

DATASETS = ("month_small", "month_large")


def prepare(dsn: str, rows: dict[str, int]) -> tuple[str, str]:
    """The datasets with their rows in the oldest month; returns that month's start and the
    simulated "now" at which it has just left the window (SQL literals)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, n in rows.items():
            conn.execute(
                'SELECT lake.create_dataset(%s, \'{"type": "object"}\', \'{"pii_scan": false}\')',
                [name],
            )
            # Superuser: explicit owners, no RLS; the validation trigger checks every row.
            conn.execute(
                f"""
                INSERT INTO user_data.{name} (user_id, ts, doc)
                SELECT 'user' || (i %% 50), t,
                       jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',
                                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                          'lat', 52 + random(), 'lon', 13 + random(),
                                          'note', repeat('x', 40))
                  FROM generate_series(1, %(n)s) AS i,
                       LATERAL (SELECT w.lo + (w.hi - w.lo) * i / (%(n)s + 1) AS t
                                  FROM (SELECT greatest(d.partitions_from,
                                                        now() - d.retention + interval '1 hour')
                                                   AS lo,
                                               d.partitions_from + interval '1 month' AS hi
                                          FROM lake.datasets d WHERE d.name = %(name)s) AS w) x
                """,
                {"n": n, "name": name},
            )
            conn.execute(f"VACUUM ANALYZE user_data.{name}")
        row = conn.execute(
            "SELECT partitions_from::text,"
            " (partitions_from + interval '1 month' + retention + interval '1 hour')::text"
            " FROM lake.datasets WHERE name = %s",
            [DATASETS[0]],
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def archive_folder() -> Path:
    """A scratch folder that the server's OS user owns."""
    path = Path(tempfile.mkdtemp(prefix="lake-bench-archive-", dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def run_retention(dsn: str, now: str) -> dict[str, dict[str, Any]]:
    """One CALL; the month's report per dataset."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("CALL lake.apply_retention(%s)", [now]).fetchone()
    assert row is not None
    report: dict[str, Any] = row[0]
    out = {}
    for name in DATASETS:
        ds = report["datasets"][name]
        if ds["errors"] or ds["kept"] or ds["dropped"] != 1:
            raise SystemExit(f"retention of {name} did not drop one month: {ds}")
        (month,) = ds["months"]
        out[name] = month
    return out


def restore(dsn: str, month: str) -> dict[str, float]:
    times = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in DATASETS:
            t0 = time.perf_counter()
            conn.execute("SELECT lake.restore_partition(%s, %s)", [name, month])
            times[name] = (time.perf_counter() - t0) * 1000
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="rows of the small month")
    parser.add_argument("--large", type=int, default=1_000_000, help="rows of the large month")
    parser.add_argument("--rounds", type=int, default=3, help="expiries of each month (3)")
    parser.add_argument("--database", default="lake_bench_retention", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if min(args.small, args.large, args.rounds) < 1:
        parser.error("every count must be positive")

    settings = lake_settings()
    print("command: " + shlex.join([".venv/bin/python", "bench/retention.py", *sys.argv[1:]]))
    dsn = fresh_database(settings, args.database, {})
    folder = archive_folder()
    try:
        for fact in machine_facts(dsn):
            print(fact)
        rows = dict(zip(DATASETS, (args.small, args.large), strict=True))
        t0 = time.perf_counter()
        month, now = prepare(dsn, rows)
        print(
            f"data:    {args.small:,} and {args.large:,} rows in month {month[:7]} "
            f"(loaded in {time.perf_counter() - t0:.0f} s); simulated now {now[:16]}"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT lake.set_setting('archive_dir', %s)", [str(folder)])
            conn.execute("SELECT lake.set_setting('restore_hold', '0')")

        drops: dict[str, list[float]] = {n: [] for n in DATASETS}
        verifies: dict[str, list[float]] = {n: [] for n in DATASETS}
        restores: dict[str, list[float]] = {n: [] for n in DATASETS}
        first = run_retention(dsn, now)
        for name in DATASETS:
            drops[name].append(float(first[name]["drop_ms"]))
        for _ in range(args.rounds - 1):
            for name, ms in restore(dsn, month).items():
                restores[name].append(ms)
            again = run_retention(dsn, now)
            for name in DATASETS:
                assert again[name]["archive"] == "reused", again[name]
                drops[name].append(float(again[name]["drop_ms"]))
                verifies[name].append(float(again[name]["archive_ms"]))

        with psycopg.connect(dsn) as conn:
            sizes: dict[str, int] = dict(
                conn.execute(
                    "SELECT dataset, bytes FROM lake.archives WHERE status = 'dropped'"
                ).fetchall()
            )
        print()
        print(f"{'':34}{args.small:>13,} rows{args.large:>13,} rows   ratio")
        s, big = DATASETS

        def line(label: str, a: float, b: float, unit: str = "ms") -> None:
            print(f"{label:34}{a:>15,.1f} {unit}{b:>15,.1f} {unit}   {b / a:6.1f}")

        line(
            f"drop (detach + drop), median of {args.rounds}",
            statistics.median(drops[s]),
            statistics.median(drops[big]),
        )
        line(
            "archive: write + read back (round 1)",
            float(first[s]["archive_ms"]),
            float(first[big]["archive_ms"]),
        )
        if args.rounds > 1:
            line(
                f"archive: verify only, median of {args.rounds - 1}",
                statistics.median(verifies[s]),
                statistics.median(verifies[big]),
            )
            line(
                f"restore, median of {args.rounds - 1}",
                statistics.median(restores[s]),
                statistics.median(restores[big]),
            )
        print(
            f"{'archive file (gzip)':34}{sizes[s] / 1024:>15,.0f} kB{sizes[big] / 1024:>15,.0f} kB"
        )
        print(f"drop times, each round: {drops[s]} / {drops[big]} ms")
    finally:
        if not args.keep:
            drop_database(settings, args.database)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
