r"""gRPC benchmark: streaming ingest through `lake grpc` against `lake ingest` of the same file, in
the same run, and Query of 1 000 rows.

    .venv/bin/python bench/grpc_bench.py [--records 1000000] [--repeat 3] [--queries 200]
                                         [--insecure] [--keep]

Uses bench/ingest.py's generated location history (about 1 % invalid) and a fresh database on
the lake's server with a service login (lake_service, no superuser, no BYPASSRLS) and one lake
user with an API key. Then, `--repeat` times, the two paths one after the other, each into a new
empty dataset of its own (the order alternates, so that neither always runs first):

  lake  Lake.ingest of the file's lines as `lake ingest --api-key` runs it (COPY, batches of
        10 000, one session per server core);
  grpc  GrpcLake.ingest of the same lines through `lake grpc` (a process of its own on loopback,
        TLS 1.3 with the lake's certificate as it is served; `--insecure`: plaintext): as many
        Ingest streams side by side as lake ingest has sessions, batches of 1 000 (the most a
        batch may hold), which the server stores by COPY with the caller's identity.

It prints records/s of each and grpc/lake (the goal is 0.8) for each repetition with the load
average before it, then the median ratio, then the latency of Query calls that each stream 1 000
of the user's rows from a random point in time (p50, p99). Each path proves that nothing was
lost (received = accepted + archived + quarantined = records).
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of both paths, order alternating (3)"
    )
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
    datasets = [
        {
            name: f"{DATASET}_{tag}_{rep + 1}"
            for name, tag in (("lake ingest", "lake"), ("gRPC", "grpc"))
        }
        for rep in range(args.repeat)
    ]
    with Lake(dsn) as lake:
        for pair in datasets:
            for dataset in pair.values():
                lake.create_dataset(dataset, SCHEMA, description="benchmark: location history")
        lake.create_user(LAKE_USER)
        key = str(lake.create_key(LAKE_USER)["api_key"])
        cores = lake.server_cores()
    print("\n".join(machine_facts(dsn)))
    print(f"{args.records:,} records from {path}")

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
        with (
            Lake(service_dsn, application_name="lake-bench") as lake,
            GrpcLake(found.group(1), key, insecure=args.insecure, timeout=None) as client,
        ):
            lake.authenticate(key)

            def by_lake(dataset: str) -> IngestSummary:
                return lake.ingest(dataset, lines(path), origin="bench")

            def by_grpc(dataset: str) -> IngestSummary:
                return client.ingest(dataset, lines(path), origin="bench", streams=cores)

            ratios = []
            for rep in range(args.repeat):
                load = os.getloadavg()[0]
                seconds = {}
                runs = [("lake ingest", by_lake), ("gRPC", by_grpc)]
                for name, run in runs if rep % 2 == 0 else runs[::-1]:
                    dataset = datasets[rep][name]
                    started = time.perf_counter()
                    summary = run(dataset)
                    seconds[name] = time.perf_counter() - started
                    check(name, summary, args.records)
                lake_rate = args.records / seconds["lake ingest"]
                grpc_rate = args.records / seconds["gRPC"]
                ratios.append(grpc_rate / lake_rate)
                print(
                    f"run {rep + 1} (load average {load:.1f}, "
                    f"{'lake first' if rep % 2 == 0 else 'gRPC first'}): "
                    f"lake ingest {lake_rate:,.0f} records/s, gRPC Ingest {grpc_rate:,.0f} "
                    f"records/s, ratio {ratios[-1]:.2f}",
                    flush=True,
                )
            print(
                f"ratio gRPC / lake ingest: median {statistics.median(ratios):.2f} of "
                f"{len(ratios)} (min {min(ratios):.2f}, max {max(ratios):.2f}; goal 0.8)"
            )

            queried = datasets[-1]["gRPC"]
            rows = list(client.query(queried, limit=1))
            first = rows[0]["ts"]
            rng = random.Random(1)
            times = []
            load = os.getloadavg()[0]
            for _ in range(args.queries):
                start = first + timedelta(days=rng.uniform(0, SPAN_DAYS))
                t0 = time.perf_counter()
                got = sum(1 for _ in client.query(queried, from_time=start, limit=1000))
                times.append((time.perf_counter() - t0) * 1000)
                assert got <= 1000
            cuts = statistics.quantiles(times, n=100)
            print(
                f"Query of up to 1 000 rows, {args.queries} calls (load average {load:.1f}): "
                f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms"
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
