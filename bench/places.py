"""Places benchmark: what declared coordinates cost at ingest, and a search's latency.

    .venv/bin/python bench/places.py [--records 100000] [--rounds 3] [--keep]

Creates a fresh migrated database on the lake's server and ingests the same --records points of
`make demo`'s location history (three people, a few percent broken) through the client's COPY
path (Lake.ingest, validation in the database) into two new datasets per round: one plain, one
with lake.declare_coordinates (its GiST index on the record's point kept up by every insert).
The order alternates between rounds. Prints the median seconds and records/s of each and the
difference, then the median latency of lake.near, lake.within and lake.stay_points as the
busiest person (alice, 60 % of the records), under the lake's rule of whose rows.
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts

from lake_client.client import Lake
from lake_client.demo import PEOPLE, SCHEMA, generate
from lake_client.records import Record

ROLE = "bench_places_admin"


def ingest(dsn: str, name: str, records: dict[str, list[Record]], places: bool) -> float:
    with Lake(dsn) as lake:
        lake.create_dataset(name, SCHEMA)
        if places:
            lake.declare_coordinates(name, "lat", "lon")
        started = time.perf_counter()
        for user, recs in records.items():
            lake.act_as(user)
            lake.ingest(name, recs)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per dataset")
    parser.add_argument("--rounds", type=int, default=3, help="ingests of each kind (3)")
    parser.add_argument("--database", default="lake_bench_places", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    settings = lake_settings()
    print("command: " + shlex.join([".venv/bin/python", "bench/places.py", *sys.argv[1:]]))
    dsn = fresh_database(settings, args.database, {ROLE: ["lake_admin"]})
    try:
        for fact in machine_facts(dsn):
            print(fact)
        anchor = datetime.now(UTC).date()
        records = {
            user: generate(user, round(args.records * share), anchor)
            for user, (share, _, _) in PEOPLE.items()
        }
        total = sum(len(r) for r in records.values())
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for n in range(args.rounds):
            for places in (False, True) if n % 2 == 0 else (True, False):
                name = f"{'placed' if places else 'plain'}_{n}"
                seconds[places].append(ingest(dsn, name, records, places))
        plain, placed = (statistics.median(seconds[k]) for k in (False, True))
        print(f"ingest of {total:,} records, median of {args.rounds}:")
        print(f"  without coordinates  {plain:6.2f} s  {total / plain:9,.0f} records/s")
        print(f"  with coordinates     {placed:6.2f} s  {total / placed:9,.0f} records/s")
        print(f"  difference           {100 * (placed - plain) / plain:+5.1f} %")

        _, lat, lon = PEOPLE["alice"]
        report_searches(psycopg.conninfo.make_conninfo(dsn, user=ROLE), lat, lon)
        return 0
    finally:
        if not args.keep:
            drop_database(settings, args.database)


def report_searches(dsn: str, lat: float, lon: float) -> None:
    """Median latency of lake.near and lake.within as alice, over dataset placed_0, as an
    administrator acting for her (whose rows: hers only, as for any caller)."""
    week = datetime.now(UTC) - timedelta(days=7)
    searches: dict[str, Callable[[Lake], list[dict[str, Any]]]] = {
        "near 100 m, all time": lambda lake: lake.near("placed_0", lat, lon, 100),
        "near 500 m, last 7 days": lambda lake: lake.near("placed_0", lat, lon, 500, from_ts=week),
        "within 1 km square, 7 days": lambda lake: lake.within(
            "placed_0", square(lat, lon, 0.0045), from_ts=week
        ),
        "stay points of yesterday": lambda lake: lake.stay_points(
            "placed_0", datetime.now(UTC).date() - timedelta(days=1), min_minutes=10, radius_m=300
        ),
    }
    print("as alice (an administrator acting for her), median of 20:")
    with Lake(dsn) as lake:
        lake.act_as("alice")
        for what, search in searches.items():
            times = []
            for _ in range(20):
                started = time.perf_counter()
                found = len(search(lake))
                times.append(time.perf_counter() - started)
            print(f"  {what:28} {1000 * statistics.median(times):7.1f} ms  {found:,} rows")


def square(lat: float, lon: float, half: float) -> dict[str, Any]:
    """A GeoJSON square of ±half degrees of latitude (and as many metres east-west)."""
    dlon = half / math.cos(math.radians(lat))
    ring = [[lon - dlon, lat - half], [lon + dlon, lat - half], [lon + dlon, lat + half],
            [lon - dlon, lat + half], [lon - dlon, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


if __name__ == "__main__":
    raise SystemExit(main())
