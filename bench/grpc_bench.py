r"""gRPC benchmark: streaming ingest through `lake grpc` against `lake ingest` of the same file, in
the same run, and Query of 1 000 rows.

    .venv/bin/python bench/grpc_bench.py [--records 1000000] [--queries 200] [--insecure] [--keep]

Uses bench/ingest.py's generated location history (about 1 % invalid) and a fresh database on
the lake's server with a service login (lake_service, no superuser, no BYPASSRLS) and one lake
user with an API key. Then:

  lake  Lake.ingest of the file's lines as `lake ingest --api-key` runs it (COPY, batches of
        10 000, one session per server core);
  grpc  GrpcLake.ingest of the same lines through `lake grpc` (a process of its own on loopback,
        TLS 1.3 with the lake's certificate as it is served; `--insecure`: plaintext): as many
        Ingest streams side by side as lake ingest has sessions, batches of 1 000, each stored
        by COPY in one transaction with the caller's identity.

It prints records/s of each and grpc/lake (the goal is 0.8), then the latency of Query calls that
each stream 1 000 of the user's rows from a random point in time (p50, p99). Each path proves
that nothing was lost (received = accepted + archived + quarantined = records).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from common import drop_database, fresh_database, lake_settings, machine_facts
from ingest import DATASET, LAKE_USER, SPAN_DAYS, data_file
from psycopg.conninfo import make_conninfo

from lake_client.client import IngestSummary, Lake
from lake_client.demo import SCHEMA
from lake_client.grpc_client import GrpcLake

SERVICE_ROLE = "lake_bench_grpc"


def lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")


def check(name: str, summary: IngestSummary, n: int) -> None:
    total = summary.accepted + summary.archived + summary.quarantined
    ok = summary.received == n == total
    print(
        f"  {name}: received {summary.received:,}, accepted {summary.accepted:,}, "
        f"quarantined {summary.quarantined:,}, archived {summary.archived:,}"
        f" ({'counts hold' if ok else 'COUNTS DO NOT HOLD'})"
    )
    if not ok:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records (1 000 000)")
    parser.add_argument("--queries", type=int, default=200, help="Query calls timed (200)")
    parser.add_argument("--database", default="lake_bench_grpc", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--insecure", action="store_true", help="serve and call gRPC in plaintext, not TLS 1.3"
    )
    args = parser.parse_args(argv)
    settings = lake_settings()
    path = data_file(settings.home / "bench", args.records)
    dsn = fresh_database(settings, args.database, {SERVICE_ROLE: ["lake_service"]})
    service_dsn = make_conninfo(dsn, user=SERVICE_ROLE)
    with Lake(dsn) as lake:
        lake.create_dataset(DATASET, SCHEMA, description="benchmark: location history")
        lake.create_user(LAKE_USER)
        key = str(lake.create_key(LAKE_USER)["api_key"])
        cores = lake.server_cores()
    print("\n".join(machine_facts(dsn)))
    print(f"{args.records:,} records from {path}")

    with Lake(service_dsn, application_name="lake-bench") as lake:
        lake.authenticate(key)
        started = time.perf_counter()
        summary = lake.ingest(DATASET, lines(path), origin="bench")
        lake_s = time.perf_counter() - started
    check("lake ingest", summary, args.records)

    argv_server = [str(Path(sys.executable).parent / "lake"), "grpc", "--port", "0"]
    if args.insecure:
        argv_server.append("--insecure")
    print(f"gRPC over {'plaintext' if args.insecure else 'TLS 1.3'}")
    server = subprocess.Popen(
        [*argv_server, "--dsn", service_dsn],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        found = None
        for line in server.stdout:  # `lake grpc` may first say it made its certificate
            found = re.search(r"serving gRPC .* on (\S+:\d+)", line)
            if found:
                break
        assert found is not None, "lake grpc did not start"
        with GrpcLake(found.group(1), key, insecure=args.insecure, timeout=None) as client:
            started = time.perf_counter()
            summary = client.ingest(DATASET, lines(path), origin="bench", streams=cores)
            grpc_s = time.perf_counter() - started
            check("gRPC", summary, args.records)
            lake_rate, grpc_rate = args.records / lake_s, args.records / grpc_s
            print(f"lake ingest: {lake_rate:,.0f} records/s ({lake_s:.1f} s)")
            print(f"gRPC Ingest: {grpc_rate:,.0f} records/s ({grpc_s:.1f} s)")
            print(f"ratio gRPC / lake ingest: {grpc_rate / lake_rate:.2f} (goal 0.8)")

            rows = list(client.query(DATASET, limit=1))
            first = rows[0]["ts"]
            rng = random.Random(1)
            times = []
            for _ in range(args.queries):
                start = first + timedelta(days=rng.uniform(0, SPAN_DAYS))
                t0 = time.perf_counter()
                got = sum(1 for _ in client.query(DATASET, from_time=start, limit=1000))
                times.append((time.perf_counter() - t0) * 1000)
                assert got <= 1000
            cuts = statistics.quantiles(times, n=100)
            print(
                f"Query of up to 1 000 rows, {args.queries} calls: p50 {cuts[49]:.1f} ms, "
                f"p99 {cuts[98]:.1f} ms"
            )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # SIGINT ignored: started in a background shell
            server.kill()
            server.wait()
        if not args.keep:
            drop_database(settings, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
