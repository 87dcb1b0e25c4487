"""Concurrent single-row writes: the lake against a plain table, 1, 4 and 16 writers, same run.

    .venv/bin/python bench/writes.py [--seconds 10] [--writers 1,4,16] [--keep]

Creates a fresh migrated database on the lake's server with one dataset (the demo's validated
location-history schema) and, beside it, a plain table with the same columns and an index (no
lake triggers). For each writer count, pgbench runs --seconds of

  plain  BEGIN; INSERT INTO bench_plain (ts, doc) VALUES (now(), <point>); COMMIT;
  lake   BEGIN; SELECT lake.act_as('bench-user'); INSERT INTO user_data.points (ts, doc)
         VALUES (now(), <point>); COMMIT;

each writer on its own connection, as a login role that is a member of lake_admin (no superuser),
so every lake transaction is validated, counted as a batch, audited (act_as and the batch) and
captured. The sealer (lake.seal(), as the bridge runs it) seals in its own session throughout the
lake runs, and the run ends by sealing the rest and verifying the audit chain. Prints tps of both,
their ratio, and the lake's average latency. Goal (issue 14): ratio at least 0.5 at every writer
count, and the lake's tps never falling as writers are added.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts
from psycopg.types.json import Jsonb

from lake_client.demo import SCHEMA

DB = "lake_bench_writes"
ROLE = "lake_bench_writer"
DATASET = "points"
DOC = """jsonb_build_object('ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                         'lat', 52.5, 'lon', 13.4)"""
SCRIPTS = {
    "plain": f"BEGIN;\nINSERT INTO bench_plain (ts, doc) VALUES (now(), {DOC});\nCOMMIT;\n",
    "lake": (
        "BEGIN;\nSELECT lake.act_as('bench-user');\n"
        f"INSERT INTO user_data.{DATASET} (ts, doc) VALUES (now(), {DOC});\nCOMMIT;\n"
    ),
}


def pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    raise SystemExit("pgbench not found (Debian: apt-get install postgresql-client)")


def run(dsn: str, script: Path, writers: int, seconds: float) -> tuple[float, float]:
    """tps and average latency (ms) of `writers` pgbench clients running `script`."""
    out = subprocess.run(
        [
            pgbench(),
            "-n",
            "-f",
            str(script),
            "-c",
            str(writers),
            "-j",
            str(min(writers, 4)),
            "-T",
            str(max(1, round(seconds))),
            dsn,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    tps = re.search(r"tps = ([0-9.]+)", out.stdout)
    lat = re.search(r"latency average = ([0-9.]+) ms", out.stdout)
    if not tps or not lat:
        raise SystemExit(f"cannot read pgbench's output:\n{out.stdout}")
    return float(tps.group(1)), float(lat.group(1))


def sealer(dsn: str, stop: threading.Event) -> None:
    """Seal every 5 ms, as a busy bridge does."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(0.005):
            conn.execute("SELECT lake.seal()")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per point (default 10)")
    ap.add_argument("--writers", default="1,4,16", help="writer counts (default 1,4,16)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    settings = lake_settings()
    dsn = fresh_database(settings, DB, {ROLE: ["lake_admin"]})
    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute("SELECT lake.create_dataset(%s, %s)", [DATASET, Jsonb(SCHEMA)])
        su.execute("SELECT lake.create_user('bench-user')")
        su.execute("CREATE TABLE bench_plain (id bigserial PRIMARY KEY, ts timestamptz, doc jsonb)")
        su.execute("CREATE INDEX ON bench_plain (ts)")
        su.execute(f"GRANT INSERT ON bench_plain TO {ROLE}")
        su.execute(f"GRANT USAGE ON SEQUENCE bench_plain_id_seq TO {ROLE}")
        # Sources from before the sealer (to measure "before") seal at commit themselves.
        found = su.execute("SELECT to_regprocedure('lake.seal()') IS NOT NULL").fetchone()
        has_sealer = bool(found and found[0])
    app = psycopg.conninfo.make_conninfo(dsn, user=ROLE)
    print("\n".join(machine_facts(dsn)))
    print(f"pgbench {args.seconds:g} s per point; lake: act_as + one validated INSERT + COMMIT")
    print(f"{'writers':>7}  {'plain tps':>10}  {'lake tps':>10}  {'ratio':>6}  {'lake ms':>8}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, text in SCRIPTS.items():
            files[name] = Path(tmp) / f"{name}.sql"
            files[name].write_text(text)
        for n in counts:
            plain, _ = run(app, files["plain"], n, args.seconds)
            stop = threading.Event()
            thread = threading.Thread(target=sealer, args=(dsn, stop))
            if has_sealer:
                thread.start()
            try:
                lake, lake_ms = run(app, files["lake"], n, args.seconds)
            finally:
                stop.set()
                if has_sealer:
                    thread.join()
            results.append((n, lake))
            print(f"{n:>7}  {plain:>10.0f}  {lake:>10.0f}  {lake / plain:>6.2f}  {lake_ms:>8.2f}")
    with psycopg.connect(dsn, autocommit=True) as su:
        if has_sealer:
            su.execute("SELECT lake.seal()")
        ok = su.execute("SELECT ok, entries FROM lake.verify_audit_chain()").fetchone()
        changes = su.execute("SELECT count(*) FROM lake.data_changes").fetchone()
    print(f"audit chain verified: {ok}; change events: {changes[0] if changes else '?'}")
    rising = all(b[1] >= a[1] for a, b in itertools.pairwise(results))
    print(f"lake tps never falls as writers are added: {rising}")
    if not args.keep:
        drop_database(settings, DB)


if __name__ == "__main__":
    main()
