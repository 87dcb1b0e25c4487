r"""Ingest benchmark: Lake.ingest against raw COPY of the same lines, measured in the same run.

    .venv/bin/python bench/ingest.py [--records 1000000] [--runs 2] [--batch-size 10000] [--keep]
                                     [--jobs N] [--empty-schema] [--no-pii-scan]

Generates realistic location history (the demo's schema, chronological like a real export,
about 1 % invalid) into a file under <lake home>/bench/ (reused while it is recent), creates a
fresh database on the lake's server (the embedded cluster, or LAKE_DSN / PG* naming a superuser,
who creates the database and the application role) migrated to the latest schema, and then
alternates, with a CHECKPOINT before each:

  raw   COPY of the file's lines into CREATE TABLE raw (id bigserial primary key, doc jsonb)
        in one session, one transaction per batch: what a person does with psql's \copy;
  ours  Lake.ingest of the same lines in one session as an application login role (a member
        of lake_app, no superuser, no BYPASSRLS) acting for one lake user: COPY into the inbox,
        validation in the database, invalid records quarantined with reasons;
  lake  the same as `lake ingest` runs it: Lake.ingest with its default sessions (one per
        server core, lake.server_cores(); --jobs N to choose), each batch one transaction.

It prints records/s of each, and two ratios to raw: ours/raw is the cost of the lake's path
session for session, lake/raw the wall-clock a person sees against \copy of the same file.

With --empty-schema the dataset's JSON Schema is {"type": "object"} (every record passes it; the
lake's own checks still run): the cost of the path itself, without the schema's predicate.

With the server on this machine it also prints each path's server CPU (its processes' CPU
time from /proc) and, at the end, the CPU a record of each path: unlike wall-clock, CPU time
hardly moves when other work shares the cores, and it tells how fast the lake path could be with
every core on it.

Each round proves that nothing was lost (received = accepted + archived + quarantined = records,
and the tables agree).
Every invalid record is well-formed JSON, so the raw baseline can load every line as well.
Timings drift by +-30 % between runs on small machines: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import ServerCpu, drop_database, fresh_database, lake_settings, machine_facts
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


def reset(dsn: str, *, raw: bool = True) -> None:
    """Empty everything a run writes (but the raw table unless `raw`), then CHECKPOINT, so
    every run starts alike."""
    tables = "user_data.{ds}, inbox.{ds}, lake.quarantine, lake.batches"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("TRUNCATE " + ("raw, " if raw else "") + tables).format(
                ds=sql.Identifier(DATASET)
            )
        )
        conn.execute("VACUUM ANALYZE raw, lake.batches, lake.quarantine")
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------- the paths


@dataclass
class Result:
    seconds: float
    client_cpu: float  # seconds of this process's CPU (parsing, routing, hashing, sending)
    server_cpu: float | None = None  # seconds of the server's CPU (None: not on this machine)

    def rate(self, n: int) -> float:
        return n / self.seconds


class Meter:
    """Wall-clock, this process's CPU and the server's CPU over a stretch of work."""

    def __init__(self, server: ServerCpu) -> None:
        self.server = server

    def __enter__(self) -> Meter:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.server_start = self.server.seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = Result(time.perf_counter() - self.wall, time.process_time() - self.cpu)
        end = self.server.seconds()
        if end is not None and self.server_start is not None:
            self.result.server_cpu = end - self.server_start


def run_raw(dsn: str, lines: list[bytes], batch_size: int, server: ServerCpu) -> Result:
    """COPY of the lines into the plain table in one session, one transaction per batch."""
    with Meter(server) as meter, psycopg.connect(dsn) as conn:
        for i in range(0, len(lines), batch_size):
            data = b"".join(_copy_escape(line) + b"\n" for line in lines[i : i + batch_size])
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY raw (doc) FROM STDIN") as copy,
            ):
                copy.write(data)
    return meter.result


def run_ours(
    dsn: str, records: list[Record], batch_size: int, jobs: int | None, server: ServerCpu
) -> tuple[Result, IngestSummary]:
    """Lake.ingest on `jobs` sessions (None: its default, one per server core)."""
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
        with Meter(server) as meter:
            summary = lake.ingest(
                DATASET, records, batch_size=batch_size, origin="bench", jobs=jobs
            )
    return meter.result, summary


def stored_counts(dsn: str) -> tuple[int, int, int, int, int, int, int]:
    """(raw rows, dataset rows, quarantine rows, received, accepted, archived, quarantined)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM user_data.{ds}),"
                " (SELECT count(*) FROM lake.quarantine WHERE dataset = {lit}), b.*"
                " FROM (SELECT coalesce(sum(received), 0), coalesce(sum(accepted), 0),"
                " coalesce(sum(archived), 0), coalesce(sum(quarantined), 0)"
                " FROM lake.batches WHERE dataset = {lit}) AS b"
            ).format(ds=sql.Identifier(DATASET), lit=sql.Literal(DATASET))
        ).fetchone()
    assert row is not None
    n_raw, n_rows, n_quar, received, accepted, archived, quarantined = (int(v) for v in row)
    return n_raw, n_rows, n_quar, received, accepted, archived, quarantined


# --------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records (1 000 000)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of raw, ours, lake (2)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="records a batch (10 000)")
    parser.add_argument("--database", default="lake_bench", help="scratch database (lake_bench)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="sessions of the lake path (default: Lake.ingest's, one per server core)",
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
    if (
        args.records < 1
        or args.runs < 1
        or args.batch_size < 1
        or (args.jobs is not None and args.jobs < 1)
    ):
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
    with Lake(dsn) as lake:
        cores = lake.server_cores()
    jobs = args.jobs or cores
    print(
        f"data:    {len(lines):,} location records of {avg:.0f} B on average ({path.name}), "
        f"batches of {args.batch_size:,}; raw and ours in one session, lake in {jobs} "
        f"(lake.server_cores() = {cores}); {args.runs} round(s) of raw, ours, lake"
        + (', schema {"type": "object"}' if args.empty_schema else "")
        + (", pii_scan off" if args.no_pii_scan else "")
    )
    print()
    print(
        f"{'round':<6}{'path':<6}{'seconds':>9}{'records/s':>12}{'client CPU':>12}"
        f"{'server CPU':>12}{'ratio':>8}"
    )

    server = ServerCpu(dsn)
    results: dict[str, list[Result]] = {"raw": [], "ours": [], "lake": []}
    ratios: dict[str, list[float]] = {"ours": [], "lake": []}
    lost = False

    def show(run: int, name: str, result: Result, note: str = "") -> None:
        server_cpu = "n/a" if result.server_cpu is None else f"{result.server_cpu:.2f}s"
        ratio = f"{ratios[name][-1]:>8.2f}" if name in ratios else ""
        print(
            f"{run:<6}{name:<6}{result.seconds:>9.2f}{result.rate(len(lines)):>12,.0f}"
            f"{result.client_cpu:>11.2f}s{server_cpu:>12}{ratio}{note}"
        )

    try:
        for run in range(1, args.runs + 1):
            reset(dsn)
            raw = run_raw(dsn, lines, args.batch_size, server)
            results["raw"].append(raw)
            show(run, "raw", raw)
            for name, sessions in (("ours", 1), ("lake", args.jobs)):
                reset(dsn, raw=False)
                ours, summary = run_ours(dsn, records, args.batch_size, sessions, server)
                results[name].append(ours)
                ratios[name].append(raw.seconds / ours.seconds)
                show(run, name, ours, f"  ({summary.jobs} sessions)" if summary.jobs > 1 else "")
                ok = check_counts(dsn, len(lines), summary)
                lost = lost or not ok
    finally:
        if not args.keep:
            drop_database(settings, args.database)
    print()

    def median_rate(name: str) -> float:
        return statistics.median(r.rate(len(lines)) for r in results[name])

    print(
        f"median: raw {median_rate('raw'):,.0f} records/s (one session), ours "
        f"{median_rate('ours'):,.0f} (one session), lake {median_rate('lake'):,.0f} "
        f"({jobs} sessions)"
    )
    for name, what in (("ours", "per session"), ("lake", "as `lake ingest` runs it")):
        print(
            f"ratio {name}/raw ({what}): {statistics.median(ratios[name]):.2f} "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios[name])})"
        )
    if all(r.server_cpu is not None for rs in results.values() for r in rs):
        # CPU time hardly depends on what else runs on the machine, wall-clock does: what the
        # lake path would reach with every core busy on it alone.
        def per_record(name: str, what: str) -> float:
            values = [getattr(r, what) or 0.0 for r in results[name]]
            return statistics.median(values) / len(lines) * 1e6

        cpu = {n: (per_record(n, "server_cpu"), per_record(n, "client_cpu")) for n in results}
        print(
            "CPU a record (median, server + client): "
            + ", ".join(f"{n} {s:.1f} + {c:.1f} µs" for n, (s, c) in cpu.items())
        )
        raw_wall = statistics.median(r.seconds for r in results["raw"]) / len(lines) * 1e6
        lake_cpu = sum(cpu["lake"])
        print(
            f"lake: {lake_cpu:.1f} µs of CPU a record, so at best {lake_cpu / cores:.1f} µs of "
            f"wall-clock on {cores} cores; 0.6 of raw's {raw_wall:.1f} µs (median wall-clock "
            f"a record) is {raw_wall / 0.6:.1f} µs"
        )
    if lost:
        print("ERROR: the counts do not add up")
        return 1
    return 0


def check_counts(dsn: str, n: int, summary: IngestSummary) -> bool:
    """Whether nothing was lost: received = accepted + archived + quarantined = n, and the
    tables agree with the batches and with the client's summary (printed). The records dated
    1970 are older than the lake's first month: they go to that month's archive."""
    n_raw, n_rows, n_quar, received, accepted, archived, quarantined = stored_counts(dsn)
    ok = (
        n_raw == n
        and received == n
        and summary.received == n
        and received == accepted + archived + quarantined
        and (accepted, quarantined) == (n_rows, n_quar)
        and (summary.accepted, summary.archived, summary.quarantined)
        == (accepted, archived, quarantined)
    )
    print(
        f"      counts: received {received:,} = accepted {accepted:,} + archived {archived:,}"
        f" + quarantined {quarantined:,} ({'ok' if ok else 'MISMATCH'}; user_data {n_rows:,}"
        f" rows, quarantine {n_quar:,} rows, raw {n_raw:,} rows)"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
