"""Replica lag at a steady write rate (`make bench-replica`): how far behind the primary a hot
standby's reader is, for issue 20's "what a reader may see".

    .venv/bin/python bench/replica_lag.py [--rates 50,200,0] [--seconds 10]

Makes a plain streaming standby of the lake's embedded cluster (lake_client.local.standby,
pg_basebackup -R, asynchronous: the default of a replica that Patroni does not manage), a scratch
database lake_bench_replica, and one writer that ingests single records through lake.ingest (one
validated, audited transaction each) at each rate in turn (0: as fast as it can). Meanwhile:

  visible     from a commit's return to the moment the standby has replayed it
              (pg_last_wal_replay_lsn() >= the commit's LSN), for every commit, polled every
              0.5 ms from another thread: what a reader who reads right after a write may miss
  replay_lag  pg_stat_replication.replay_lag on the primary, sampled every 100 ms (PostgreSQL's
              own figure: flush on the standby to replay, as the primary learns of it)

Figures: p50 / p99 / max in milliseconds. The standby and the database are removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts

from lake_client.local import standby

DB = "lake_bench_replica"
SLOT = "lake_bench_replica"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<12} (no samples)"
    return (
        f"{label:<12} p50 {statistics.median(values):7.2f}   p99 {_pct(values, 0.99):7.2f}"
        f"   max {max(values):7.2f} ms   ({len(values)} samples)"
    )


def run_rate(primary_dsn: str, node: standby.Standby, rate: float, seconds: float) -> list[str]:
    pending: list[tuple[float, str]] = []  # (commit returned at, its LSN), oldest first
    visible: list[float] = []
    replay: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(node.dsn(DB), autocommit=True) as conn:
            while not (done.is_set() and not pending):
                row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                now = time.perf_counter()
                replayed = str(row[0]) if row else "0/0"
                with lock:
                    ready = [p for p in pending if _lsn(p[1]) <= _lsn(replayed)]
                    for p in ready:
                        pending.remove(p)
                        visible.append((now - p[0]) * 1000)
                time.sleep(0.0005)

    def sample() -> None:
        with psycopg.connect(node.settings.dsn("postgres"), autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute(
                    "SELECT r.replay_lag FROM pg_stat_replication AS r"
                    " JOIN pg_replication_slots AS s ON s.active_pid = r.pid"
                    " WHERE s.slot_name = %s",
                    [SLOT],
                ).fetchone()
                if row and isinstance(row[0], timedelta):
                    replay.append(row[0].total_seconds() * 1000)
                time.sleep(0.1)

    threads = [threading.Thread(target=watch), threading.Thread(target=sample)]
    for t in threads:
        t.start()
    commits = 0
    with psycopg.connect(primary_dsn) as conn:
        conn.execute("SELECT lake.act_as('bench_replica', 'session')")
        conn.commit()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            conn.execute(
                "SELECT lake.ingest('replica_lag', jsonb_build_array(jsonb_build_object("
                "'ts', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                " 'n', %s::int)))",
                [commits],
            )
            conn.commit()
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            conn.commit()
            at = time.perf_counter()
            with lock:
                pending.append((at, str(row[0]) if row else "0/0"))
            commits += 1
            if rate > 0:
                wait = start + commits / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
        elapsed = time.perf_counter() - start
    done.set()
    for t in threads:
        t.join()
    label = f"{rate:g}/s" if rate > 0 else "unpaced"
    return [
        f"rate {label}: {commits} commits in {elapsed:.1f} s ({commits / elapsed:.0f}/s)",
        "  " + _row("visible", visible),
        "  " + _row("replay_lag", replay),
    ]


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,0", help="commits/s, comma-separated; 0: max")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate")
    args = parser.parse_args()
    settings = lake_settings()
    dsn = fresh_database(settings, DB, {})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT lake.create_user('bench_replica')")
        conn.execute(
            "SELECT lake.create_dataset('replica_lag', %s::jsonb)",
            [
                '{"type": "object", "required": ["ts"], "properties": {"ts": {"type": "string"},'
                ' "n": {"type": "integer"}}}'
            ],
        )
    folder = Path(tempfile.mkdtemp(prefix="lake-bench-standby-", dir="/tmp"))
    folder.chmod(0o755)
    node = standby.create(settings, folder / "node", _free_port(), name=SLOT)
    try:
        node.wait_replayed()
        print("replica lag (asynchronous streaming standby on the same machine)")
        for line in machine_facts(dsn):
            print(line)
        for rate in (float(r) for r in args.rates.split(",")):
            for line in run_rate(dsn, node, rate, args.seconds):
                print(line, flush=True)
    finally:
        node.remove()
        standby.drop_slot(settings, SLOT)
        drop_database(settings, DB)


if __name__ == "__main__":
    main()
