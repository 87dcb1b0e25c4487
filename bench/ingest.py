"""Ingest benchmark: Lake.ingest against raw COPY of the same lines, measured in the same run.

    .venv/bin/python bench/ingest.py [--records 1000000] [--runs 2] [--batch-size 10000] [--keep]
                                     [--jobs 1] [--empty-schema]

Generates realistic location history (the demo's schema, chronological like a real export,
about 1 % invalid) into a file under <lake home>/bench/ (reused while it is recent), creates a
fresh database on the lake's server (the embedded cluster, or LAKE_DSN / PG* naming a superuser,
who creates the database and the application role) migrated to the latest schema, and then
alternates, with a CHECKPOINT before each:

  raw   COPY of the file's lines into CREATE TABLE raw (id bigserial primary key, doc jsonb),
        one transaction per batch: the physical limit of the server;
  ours  Lake.ingest of the same lines as an application login role (a member of lake_app, no
        superuser, no BYPASSRLS) acting for one lake user: COPY into the inbox, validation in
        the database, invalid records quarantined with reasons.

With --empty-schema the dataset's JSON Schema is {"type": "object"} (every record passes it; the
lake's own checks still run): the cost of the path itself, without the schema's predicate.

It prints records/s of both, the ratio ours/raw per round and its median, the CPU time the
sessions' server processes spent a record (from /proc, when the server runs on this machine: it
hardly moves when other work shares the machine, unlike the seconds), and proves that nothing was
lost (received = accepted + quarantined + archived = records, and the tables agree).
Every invalid record is well-formed JSON, so the raw baseline can load every line as well.
Timings drift by +-30 % between runs on small machines: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lake_client.client import IngestSummary, Lake
from lake_client.config import Settings
from lake_client.demo import SCHEMA
from lake_client.records import Record

DATASET = "location_history"
APP_ROLE = "lake_bench_app"
LAKE_USER = "bench-user"
REUSE_DAYS = 7  # a data file stays inside the 12-month retention window for this long
SPAN_DAYS = 330  # the export covers the last 330 days

Doc = dict[str, object]


# --------------------------------------------------------------------------- the data


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _breakers() -> list[tuple[float, Callable[[Doc, random.Random], None]]]:
    """(share, how) for the ways a record breaks; each leaves well-formed JSON."""

    def swapped(d: Doc, r: random.Random) -> None:
        d["lat"], d["lon"] = round(100 + r.random() * 79, 7), d["lat"]  # a longitude as latitude

    def sentinel(d: Doc, r: random.Random) -> None:
        d["accuracy_m"] = -1

    def unknown_source(d: Doc, r: random.Random) -> None:
        d["source"] = "bluetooth"

    def missing(d: Doc, r: random.Random) -> None:
        del d["lon"]

    def local_time(d: Doc, r: random.Random) -> None:
        d["ts"] = str(d["ts"])[:19].replace("T", " ")  # no offset: the database decides

    def bad_date(d: Doc, r: random.Random) -> None:
        d["ts"] = str(d["ts"])[:8] + "32" + str(d["ts"])[10:]  # day 32: not a time

    def epoch_zero(d: Doc, r: random.Random) -> None:
        d["ts"] = "1970-01-01T00:00:00.000Z"

    def future(d: Doc, r: random.Random) -> None:
        d["ts"] = "2099-12-31T23:59:59.000Z"

    def long_activity(d: Doc, r: random.Random) -> None:
        d["activity"] = "walking " * 8

    return [
        (0.0025, swapped),
        (0.0020, sentinel),
        (0.0015, unknown_source),
        (0.0010, missing),
        (0.0008, local_time),
        (0.0004, bad_date),
        (0.0008, epoch_zero),
        (0.0004, future),
        (0.0006, long_activity),
    ]


def generate(path: Path, count: int, anchor: date) -> None:
    """`count` points of one person's location history over SPAN_DAYS up to `anchor`."""
    rng = random.Random(f"bench:{count}:{anchor.isoformat()}")
    end = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
    start = end - timedelta(days=SPAN_DAYS)
    step = (end - start).total_seconds() / count
    breakers = _breakers()
    lat0, lon0 = 52.5200, 13.4050
    lat, lon = lat0, lon0
    devices = ["pixel-7", "iphone-13"]
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for i in range(count):
            ts = start + timedelta(seconds=step * i + rng.random() * step / 2)
            lat += (lat0 - lat) * 0.05 + rng.gauss(0, 0.002)
            lon += (lon0 - lon) * 0.05 + rng.gauss(0, 0.003)
            doc: Doc = {
                "ts": _iso(ts),
                "lat": round(lat, 7),
                "lon": round(lon, 7),
                "accuracy_m": round(abs(rng.gauss(12, 8)) + 1, 1),
                "altitude_m": round(40 + 30 * math.sin(i / 50) + rng.gauss(0, 2), 1),
                "source": rng.choices(["gps", "wifi", "cell"], [0.7, 0.25, 0.05])[0],
                "activity": rng.choice(["still", "walking", "in_vehicle", "on_bicycle"]),
                "device": devices[(i // 50_000) % 2],
            }
            roll = rng.random()
            for share, breaker in breakers:
                if roll < share:
                    breaker(doc, rng)
                    break
                roll -= share
            out.write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
    tmp.replace(path)


def data_file(folder: Path, count: int) -> Path:
    """The data file for `count` records: a recent one if present, else a new one."""
    folder.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date()
    for days in range(REUSE_DAYS + 1):
        path = folder / f"location-{count}-{(today - timedelta(days=days)).isoformat()}.jsonl"
        if path.exists():
            return path
    for stale in folder.glob(f"location-{count}-*.jsonl"):
        stale.unlink()
    path = folder / f"location-{count}-{today.isoformat()}.jsonl"
    print(f"generating {count:,} records into {path} ...", flush=True)
    generate(path, count, today)
    return path


# --------------------------------------------------------------------------- the database


def _copy_escape(raw: bytes) -> bytes:
    return (
        raw.replace(b"\\", b"\\\\")
        .replace(b"\t", b"\\t")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
    )


def prepare_database(
    settings: Settings, name: str, schema: dict[str, Any], pii_scan: bool = True
) -> str:
    """A fresh migrated database with the dataset, the raw table and the application role."""
    dsn = fresh_database(settings, name, {APP_ROLE: ["lake_app", "lake_admin"]})
    with Lake(dsn) as lake:
        lake.create_dataset(
            DATASET, schema, description="benchmark: location history", pii_scan=pii_scan
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw (id bigserial PRIMARY KEY, doc jsonb)")
    return dsn


def reset(dsn: str) -> None:
    """Empty everything a run writes, then CHECKPOINT, so every run starts alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "TRUNCATE raw, user_data.{ds}, inbox.{ds}, lake.quarantine, lake.batches"
            ).format(ds=sql.Identifier(DATASET))
        )
        conn.execute("VACUUM ANALYZE raw, lake.batches, lake.quarantine")
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------- the two paths


@dataclass
class Result:
    seconds: float
    client_cpu: float  # seconds of this process's CPU (parsing, routing, hashing, sending)
    server_cpu: float | None = None  # seconds of the sessions' server processes' CPU, if known

    def rate(self, n: int) -> float:
        return n / self.seconds

    def server_us(self, n: int) -> str:
        return "n/a" if self.server_cpu is None else f"{self.server_cpu / n * 1e6:.1f}"


def backend_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds (user and system) the session's server process has used so far, read from
    /proc when the server runs on this machine (the embedded cluster); None otherwise. Unlike
    wall-clock time it hardly moves when other work shares the machine."""
    try:
        stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
    except OSError:
        return None
    name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
    if name != "postgres":
        return None  # a pid of this machine, but the server is elsewhere
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def run_raw(dsn: str, lines: list[bytes], batch_size: int, jobs: int) -> Result:
    """COPY of the lines into the plain table, batch by batch, on `jobs` sessions."""
    starts = list(range(0, len(lines), batch_size))

    server: list[float | None] = []

    def load(mine: list[int]) -> None:
        with psycopg.connect(dsn) as conn:
            before = backend_cpu(conn)
            for i in mine:
                data = b"".join(_copy_escape(line) + b"\n" for line in lines[i : i + batch_size])
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy("COPY raw (doc) FROM STDIN") as copy,
                ):
                    copy.write(data)
            after = backend_cpu(conn)
            server.append(None if before is None or after is None else after - before)

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(load, starts[j::jobs]) for j in range(jobs)]:
            future.result()
    known = [s for s in server if s is not None]
    return Result(
        time.perf_counter() - started,
        time.process_time() - cpu,
        sum(known) if len(known) == jobs else None,
    )


def run_ours(
    dsn: str, records: list[Record], batch_size: int, jobs: int
) -> tuple[Result, IngestSummary]:
    # A login role that is neither superuser nor BYPASSRLS, acting for the lake user like a
    # gateway service: row-level security applies to every statement of every session.
    app_dsn = make_conninfo(dsn, user=APP_ROLE)
    with Lake(app_dsn, application_name="lake-bench") as lake:
        lake.act_as(LAKE_USER, "session")
        row = lake.conn.execute(
            "SELECT current_user AS who, r.rolsuper, r.rolbypassrls FROM pg_roles r"
            " WHERE r.rolname = current_user"
        ).fetchone()
        lake.conn.commit()
        assert row is not None and row["who"] == APP_ROLE, row
        assert not row["rolsuper"] and not row["rolbypassrls"], row
        before = backend_cpu(lake.conn)
        cpu, started = time.process_time(), time.perf_counter()
        summary = lake.ingest(DATASET, records, batch_size=batch_size, origin="bench", jobs=jobs)
        result = Result(time.perf_counter() - started, time.process_time() - cpu)
        after = backend_cpu(lake.conn)
        if jobs == 1 and before is not None and after is not None:  # (the forks: not seen)
            result.server_cpu = after - before
    return result, summary


def stored_counts(dsn: str) -> tuple[int, int, int, int, int, int, int]:
    """(raw rows, dataset rows, quarantine rows, received, accepted, quarantined, archived)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM user_data.{ds}),"
                " (SELECT count(*) FROM lake.quarantine WHERE dataset = {lit}),"
                " (SELECT coalesce(sum(received), 0) FROM lake.batches WHERE dataset = {lit}),"
                " (SELECT coalesce(sum(accepted), 0) FROM lake.batches WHERE dataset = {lit}),"
                " (SELECT coalesce(sum(quarantined), 0) FROM lake.batches WHERE dataset = {lit}),"
                " (SELECT coalesce(sum(archived), 0) FROM lake.batches WHERE dataset = {lit})"
            ).format(ds=sql.Identifier(DATASET), lit=sql.Literal(DATASET))
        ).fetchone()
    assert row is not None
    return (
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        int(row[4]),
        int(row[5]),
        int(row[6]),
    )


# --------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records (1 000 000)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of raw + ours (2)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="records a batch (10 000)")
    parser.add_argument("--database", default="lake_bench", help="scratch database (lake_bench)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--jobs", type=int, default=1, help="parallel sessions, for raw COPY and ours alike (1)"
    )
    parser.add_argument(
        "--no-pii-scan",
        action="store_true",
        help="create the dataset with pii_scan off (no search for personal identifiers)",
    )
    parser.add_argument(
        "--empty-schema",
        action="store_true",
        help='the schema {"type": "object"}: the cost of the path without the predicate',
    )
    args = parser.parse_args(argv)
    if args.records < 1 or args.runs < 1 or args.batch_size < 1 or args.jobs < 1:
        parser.error("--records, --runs, --batch-size and --jobs must be positive")

    settings = lake_settings()
    path = data_file(settings.home / "bench", args.records)
    lines = path.read_bytes().splitlines()
    assert len(lines) == args.records, f"{path}: {len(lines)} lines"
    records = [Record(f"line {n}", line) for n, line in enumerate(lines, start=1)]
    avg = sum(len(line) for line in lines) / len(lines)

    print("command: " + shlex.join([".venv/bin/python", "bench/ingest.py", *sys.argv[1:]]))
    dsn = prepare_database(
        settings,
        args.database,
        {"type": "object"} if args.empty_schema else SCHEMA,
        pii_scan=not args.no_pii_scan,
    )
    for fact in machine_facts(dsn):
        print(fact)
    print(
        f"data:    {len(lines):,} location records of {avg:.0f} B on average ({path.name}), "
        f"batches of {args.batch_size:,}, {args.jobs} session(s) each, "
        f"{args.runs} round(s) of raw then ours"
        + (', schema {"type": "object"}' if args.empty_schema else "")
        + (", pii_scan off" if args.no_pii_scan else "")
    )
    print()
    print(
        f"{'round':<6}{'path':<6}{'seconds':>9}{'records/s':>12}{'client CPU':>12}"
        f"{'server µs/rec':>15}{'ratio':>8}"
    )

    ratios: list[float] = []
    raw_rates: list[float] = []
    our_rates: list[float] = []
    server_us: dict[str, list[float]] = {"raw": [], "ours": []}
    lost = False
    try:
        for run in range(1, args.runs + 1):
            reset(dsn)
            raw = run_raw(dsn, lines, args.batch_size, args.jobs)
            raw_rates.append(raw.rate(len(lines)))
            if raw.server_cpu is not None:
                server_us["raw"].append(raw.server_cpu / len(lines) * 1e6)
            print(
                f"{run:<6}{'raw':<6}{raw.seconds:>9.2f}{raw.rate(len(lines)):>12,.0f}"
                f"{raw.client_cpu:>11.2f}s{raw.server_us(len(lines)):>15}"
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            ours, summary = run_ours(dsn, records, args.batch_size, args.jobs)
            our_rates.append(ours.rate(len(lines)))
            if ours.server_cpu is not None:
                server_us["ours"].append(ours.server_cpu / len(lines) * 1e6)
            ratios.append(ours.rate(len(lines)) / raw.rate(len(lines)))
            print(
                f"{run:<6}{'ours':<6}{ours.seconds:>9.2f}{ours.rate(len(lines)):>12,.0f}"
                f"{ours.client_cpu:>11.2f}s{ours.server_us(len(lines)):>15}{ratios[-1]:>8.2f}"
            )
            n_raw, n_rows, n_quar, received, accepted, quarantined, archived = stored_counts(dsn)
            # (archived: valid records older than the lake's first month, to the archive)
            ok = (
                n_raw == len(lines)
                and received == len(lines)
                and summary.received == len(lines)
                and received == accepted + quarantined + archived
                and (accepted, quarantined) == (n_rows, n_quar)
                and (summary.accepted, summary.quarantined, summary.archived)
                == (accepted, quarantined, archived)
            )
            lost = lost or not ok
            print(
                f"      counts: received {received:,} = accepted {accepted:,} + quarantined "
                f"{quarantined:,} + archived {archived:,} ({'ok' if ok else 'MISMATCH'}; "
                f"user_data {n_rows:,} rows, "
                f"quarantine {n_quar:,} rows, raw {n_raw:,} rows)"
            )
    finally:
        if not args.keep:
            drop_database(settings, args.database)
    print()
    print(
        f"median: raw {statistics.median(raw_rates):,.0f} records/s, ours "
        f"{statistics.median(our_rates):,.0f} records/s, ratio ours/raw "
        f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    if server_us["raw"] and server_us["ours"]:
        raw_us, our_us = (statistics.median(server_us[k]) for k in ("raw", "ours"))
        print(
            f"server CPU a record (median): raw {raw_us:.1f} µs, ours {our_us:.1f} µs, "
            f"ratio raw/ours {raw_us / our_us:.2f}"
        )
    if lost:
        print("ERROR: the counts do not add up")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
