"""Synchronous replication and failover (`make bench-ha`, the HA part): commits on a highly
available lake (Patroni: a primary and two replicas, one synchronous) as a ratio to one server,
measured in the same run; replica lag at that write rate; failover time.

    .venv/bin/python bench/ha.py [--seconds 10] [--writers 16] [--keep]

Starts, under /tmp on free ports (the lake's own servers are not touched), a one-server embedded
cluster and a highly available one (lake_client.local.ha, with the tests' timing: ttl 10 s,
loop_wait 1 s), migrates both and creates one validated dataset in each. Then, on each, --writers
threads commit for --seconds, each transaction `SELECT lake.act_as(..)`, `SELECT
lake.ingest('points', <one record>)`, COMMIT, as the superuser over the socket (validated,
audited and captured like any write). Prints commits/s and the COMMIT's latency (p50, p99) of
both, and their ratio. During the HA run it samples pg_stat_replication every 0.5 s: how far
(bytes of WAL, and replay_lag) each replica is behind. Then, with the writers running again, it
kills the primary (SIGKILL to its Patroni and postmaster) and reports the time from the kill to
the new leader and to the first commit that succeeds after it (writers retry every 0.1 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from common import free_ports, machine_facts
from psycopg.types.json import Jsonb

from lake_client import migrate
from lake_client.config import Settings
from lake_client.demo import SCHEMA
from lake_client.local import ha, postgres
from lake_client.local.processes import silent

RECORD = {"ts": "2026-01-01T00:00:00Z", "lat": 52.5, "lon": 13.4}


def _settings(base: Path, name: str, port: int) -> Settings:
    home = base / name
    home.mkdir(mode=0o755)
    return Settings(
        home=home,
        pg_port=port,
        redis_port=0,
        database="lake",
        external_dsn=None,
        external_redis=None,
    )


def _prepare(dsn: str) -> None:
    migrate.upgrade(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT lake.create_dataset('points', %s)", [Jsonb(SCHEMA)])


@dataclass
class Run:
    """Writers committing until stopped; what they measured."""

    dsn: str
    writers: int
    commit_s: list[float] = field(default_factory=list)  # each COMMIT's duration
    # (when its connection was made, when it committed): the first commit after a failover is
    # the first on a connection made after the kill (one in flight may still finish on the old
    # primary, its standby's acknowledgement already on the way)
    committed_at: list[tuple[float, float]] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writer(self, k: int) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        opened = 0.0
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    opened = time.monotonic()
                    conn = psycopg.connect(self.dsn, connect_timeout=2)
                conn.execute("SELECT lake.act_as(%s)", [f"user{k}"])
                conn.execute("SELECT lake.ingest('points', %s)", [Jsonb([RECORD])])
                started = time.perf_counter()
                conn.commit()
                took = time.perf_counter() - started
                with self.lock:
                    self.commit_s.append(took)
                    self.committed_at.append((opened, time.monotonic()))
            except psycopg.Error:
                with self.lock:
                    self.failures += 1
                if conn is not None and not conn.broken and not conn.closed:
                    conn.rollback()
                time.sleep(0.1)
        if conn is not None:
            conn.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.writer, args=(k,)) for k in range(self.writers)]
        for t in threads:
            t.start()
        return threads

    def finish(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for t in threads:
            t.join(60)


def timed(dsn: str, writers: int, seconds: float) -> tuple[float, float, float]:
    """commits/s, COMMIT p50 and p99 (ms) of `writers` for `seconds`."""
    run = Run(dsn, writers)
    threads = run.start()
    time.sleep(1.0)  # connections made, caches warm
    with run.lock:
        first = len(run.commit_s)
    started = time.monotonic()
    time.sleep(seconds)
    with run.lock:
        done = run.commit_s[first:]
    elapsed = time.monotonic() - started
    run.finish(threads)
    cuts = statistics.quantiles(done, n=100)
    return len(done) / elapsed, cuts[49] * 1000, cuts[98] * 1000


def lag_sampler(
    s: Settings, stop: threading.Event, samples: list[tuple[str, int, float | None]]
) -> None:
    """(replica, bytes behind the primary's WAL, replay_lag s) every 0.5 s."""
    with psycopg.connect(s.dsn("postgres"), autocommit=True) as conn:
        while not stop.wait(0.5):
            for name, behind, lag in conn.execute(
                "SELECT application_name, pg_current_wal_lsn() - replay_lsn,"
                " extract(epoch FROM replay_lag) FROM pg_stat_replication"
            ):
                samples.append((str(name), int(str(behind)), None if lag is None else float(lag)))


def failover(s: Settings, layout: ha.Layout, writers: int) -> tuple[float, float]:
    """Seconds from killing the primary to the new leader, and to the first commit after it."""
    run = Run(s.dsn(), writers)
    threads = run.start()
    time.sleep(3.0)
    old = ha.leader(layout)
    assert old is not None
    killed = time.monotonic()
    ha.kill_node(layout, old)
    leader_at = None
    while time.monotonic() - killed < 120:
        found = ha.leader(layout)
        if found not in (None, old):
            leader_at = time.monotonic()
            break
        time.sleep(0.05)
    while time.monotonic() - killed < 120:
        with run.lock:
            after = [t for opened, t in run.committed_at if opened > killed]
        if after:
            break
        time.sleep(0.05)
    run.finish(threads)
    first_write = min(t for opened, t in run.committed_at if opened > killed)
    assert leader_at is not None
    return leader_at - killed, first_write - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the private clusters' folder")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="lake-bench-ha-", dir="/tmp"))
    base.chmod(0o755)
    one_port, *ports = free_ports(9)
    single = _settings(base, "single", one_port)
    replicated = _settings(base, "ha", ports[0])
    layout = ha.Layout(replicated.home, tuple(ports[0:3]), tuple(ports[3:6]), (ports[6], ports[7]))
    try:
        postgres.up(single, silent)
        replicated = ha.up(replicated, 2, silent, layout=layout)
        for s in (single, replicated):
            _prepare(s.dsn())
        for line in machine_facts(single.dsn()):
            print(line)
        print(f"{args.writers} writers, {args.seconds:.0f} s each, one record per transaction")

        one = timed(single.dsn(), args.writers, args.seconds)
        stop = threading.Event()
        samples: list[tuple[str, int, float | None]] = []
        sampler = threading.Thread(target=lag_sampler, args=(replicated, stop, samples))
        sampler.start()
        sync = timed(replicated.dsn(), args.writers, args.seconds)
        stop.set()
        sampler.join()

        print(f"{'':26}{'commits/s':>10}{'COMMIT p50 ms':>15}{'p99 ms':>9}")
        print(f"{'one server':26}{one[0]:>10.0f}{one[1]:>15.2f}{one[2]:>9.2f}")
        print(f"{'synchronous replication':26}{sync[0]:>10.0f}{sync[1]:>15.2f}{sync[2]:>9.2f}")
        print(
            f"ratio (replicated / one server): commits/s {sync[0] / one[0]:.2f},"
            f" COMMIT p50 {sync[1] / one[1]:.2f}x"
        )
        for name in sorted({n for n, _, _ in samples}):
            mine = [(b, lag) for n, b, lag in samples if n == name]
            lags = [lag for _, lag in mine if lag is not None]
            print(
                f"replica lag {name}: bytes mean {statistics.fmean(b for b, _ in mine):,.0f}"
                f" max {max(b for b, _ in mine):,}; replay_lag max"
                f" {max(lags) * 1000 if lags else 0:.1f} ms ({len(mine)} samples)"
            )
        to_leader, to_write = failover(replicated, layout, args.writers)
        print(
            f"failover (ttl {ha.TTL_S} s, loop_wait {ha.LOOP_WAIT_S} s): primary killed ->"
            f" new leader {to_leader:.1f} s, -> first successful commit {to_write:.1f} s"
        )
    finally:
        ha.down(replicated)
        postgres.down(single)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
