"""The lake's own history of figures (quality scores, storage bytes): a hypertable, a table
partitioned by month as the datasets are, or a plain table?

    .venv/bin/python bench/history.py [--rows 1000000] [--series 20] [--runs 15] [--keep]

(`make bench-history` runs it with the defaults.)

In a scratch database with TimescaleDB, each layout gets the same --rows samples: --series
series (a figure and a subject, as lake.figure_history keeps them) sampled every 5 minutes up
to now, with the same index (figure, subject, at). Printed per layout:

  load       INSERT ... SELECT of all rows (one statement), then ANALYZE
  size       table, indexes and TOAST (hypertable_size for the hypertable)
  one 30d    one series over the last 30 days in buckets of an hour (time_bucket, avg): the
             status page's plot of one figure; median and max of --runs runs
  all 30d    every series of a figure over the last 30 days in buckets of a day
  expire     removing the samples older than 90 days: DELETE (plain), DROP of the whole
             months (partitioned: the rest of a partly expired month stays), drop_chunks
             (hypertable, chunks of 7 days)
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg
from common import drop_database, lake_settings, machine_facts
from psycopg import sql

DB = "lake_bench_history"
COLUMNS = "at timestamptz NOT NULL, figure text NOT NULL, subject text NOT NULL, value float8"
LOAD = """
    INSERT INTO {t} (at, figure, subject, value)
    SELECT now() - make_interval(mins => 5 * i), f, 'subject_' || s, random()
      FROM generate_series(0, %(per)s - 1) AS i,
           generate_series(0, %(series)s - 1) AS s,
           LATERAL (SELECT CASE WHEN s %% 2 = 0 THEN 'quality_score'
                                ELSE 'storage_bytes' END AS f) AS x
"""
ONE = """
    SELECT public.time_bucket('1 hour', at) AS b, avg(value) FROM {t}
     WHERE figure = 'quality_score' AND subject = 'subject_4'
       AND at >= now() - interval '30 days'
     GROUP BY 1 ORDER BY 1
"""
ALL = """
    SELECT subject, public.time_bucket('1 day', at) AS b, avg(value) FROM {t}
     WHERE figure = 'storage_bytes' AND at >= now() - interval '30 days'
     GROUP BY 1, 2 ORDER BY 1, 2
"""


def make(conn: psycopg.Connection[tuple[object, ...]], layout: str, days: int) -> None:
    t = sql.Identifier(layout)
    if layout == "partitioned":
        conn.execute(sql.SQL("CREATE TABLE {} (" + COLUMNS + ") PARTITION BY RANGE (at)").format(t))
        conn.execute(
            f"""DO $$DECLARE m timestamptz; BEGIN
                 FOR m IN SELECT generate_series(
                                     date_trunc('month', now() - interval '{days + 1} days'),
                                     date_trunc('month', now()), interval '1 month')
                 LOOP
                     EXECUTE format('CREATE TABLE %I PARTITION OF partitioned'
                                    ' FOR VALUES FROM (%L) TO (%L)',
                                    'partitioned_' || to_char(m, 'YYYYMM'), m,
                                    m + interval '1 month');
                 END LOOP; END$$"""
        )
    else:
        conn.execute(sql.SQL("CREATE TABLE {} (" + COLUMNS + ")").format(t))
    if layout == "hypertable":
        conn.execute(
            "SELECT public.create_hypertable('hypertable',"
            " public.by_range('at', interval '7 days'), create_default_indexes => false)"
        )
    conn.execute(sql.SQL("CREATE INDEX ON {} (figure, subject, at)").format(t))


def timed(conn: psycopg.Connection[tuple[object, ...]], query: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(query).fetchall()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def expire(conn: psycopg.Connection[tuple[object, ...]], layout: str) -> tuple[float, int]:
    """Remove samples older than 90 days as the layout allows; (ms, rows left)."""
    t0 = time.perf_counter()
    if layout == "plain":
        conn.execute("DELETE FROM plain WHERE at < now() - interval '90 days'")
    elif layout == "hypertable":
        conn.execute("SELECT public.drop_chunks('hypertable', older_than => interval '90 days')")
    else:
        conn.execute(
            """DO $$DECLARE p record; BEGIN
                 FOR p IN SELECT c.relname FROM pg_inherits AS i
                            JOIN pg_class AS c ON c.oid = i.inhrelid
                           WHERE i.inhparent = 'partitioned'::regclass
                             AND to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month'
                                 <= now() - interval '90 days'
                 LOOP
                     EXECUTE format('ALTER TABLE partitioned DETACH PARTITION %I', p.relname);
                     EXECUTE format('DROP TABLE %I', p.relname);
                 END LOOP; END$$"""
        )
    ms = (time.perf_counter() - t0) * 1000
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layout))).fetchone()
    return ms, int(str(row[0])) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    settings = lake_settings()
    per = args.rows // args.series
    days = per * 5 // (60 * 24) + 1
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    dsn = settings.dsn(DB)
    print(
        f"{args.rows:,} samples: {args.series} series every 5 minutes over {days} days;"
        f" {args.runs} runs per query (median / max ms)"
    )
    for fact in machine_facts(dsn):
        print(fact)
    print(
        f"{'layout':<12} {'load s':>7} {'size MB':>8} {'one 30d':>15} {'all 30d':>15}"
        f" {'expire ms':>10} {'left':>9}"
    )
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for layout in ("plain", "partitioned", "hypertable"):
                make(conn, layout, days)
                t = sql.Identifier(layout)
                t0 = time.perf_counter()
                conn.execute(sql.SQL(LOAD).format(t=t), {"per": per, "series": args.series})
                conn.execute(sql.SQL("ANALYZE {}").format(t))
                load = time.perf_counter() - t0
                size_sql = {
                    "plain": "SELECT pg_total_relation_size('plain')",
                    "partitioned": "SELECT sum(pg_total_relation_size(relid))"
                    " FROM pg_partition_tree('partitioned')",
                    "hypertable": "SELECT public.hypertable_size('hypertable')",
                }[layout]
                size = conn.execute(size_sql).fetchone()
                mb = int(str(size[0])) / 2**20 if size else 0.0
                one = timed(conn, sql.SQL(ONE).format(t=t).as_string(conn), args.runs)
                all_ = timed(conn, sql.SQL(ALL).format(t=t).as_string(conn), args.runs)
                ms, left = expire(conn, layout)
                print(
                    f"{layout:<12} {load:>7.1f} {mb:>8.1f}"
                    f" {statistics.median(one):>7.1f} / {max(one):>5.1f}"
                    f" {statistics.median(all_):>7.1f} / {max(all_):>5.1f}"
                    f" {ms:>10.1f} {left:>9,}"
                )
    finally:
        if not args.keep:
            drop_database(settings, DB)


if __name__ == "__main__":
    main()
