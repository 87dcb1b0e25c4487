"""Bridge latency: commit -> Redis subscriber, against raw NOTIFY -> LISTEN in the same run.

    .venv/bin/python bench/bridge.py [--rate 1000] [--seconds 5] [--keep]

Creates a fresh migrated database on the lake's server with one dataset, then, one after the
other:

  raw   a sender commits `SELECT pg_notify('bench_raw', <n>)` at --rate a second for --seconds;
        a listener on its own connection notes when each notification arrives.
  ours  a writer commits one INSERT into user_data.<dataset> at --rate a second for --seconds
        (validated, captured into lake.data_changes, sealed at commit); the bridge
        (lake_client.bridge, in a thread of this process) forwards the changes; a Redis
        subscriber on cache.invalidate notes when each record's message arrives.

Latency is measured from just before the sender's or writer's statement (so it includes the
commit) to the arrival, on one clock (this process). Prints p50, p99 and max of both, the rates
reached, and the ratio of the p99s. Goal (issue 5): p99 of ours at most 2 ms at 1000 commits/s.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable

import orjson
import psycopg
import redis
from common import drop_database, fresh_database, lake_settings, machine_facts

from lake_client.bridge import Bridge

DB = "lake_bench_bridge"
DATASET = "steps"


def pace(rate: int, seconds: float, send: Callable[[int], None]) -> tuple[int, float]:
    """Call send(i) at `rate` a second for `seconds`; returns (sent, elapsed)."""
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(i)
    return n, time.perf_counter() - start


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


Result = tuple[list[float], list[float], int, float]  # from before, from the commit's ack


def raw(dsn: str, rate: int, seconds: float) -> Result:
    sent: dict[int, int] = {}
    acked: dict[int, int] = {}
    got: dict[int, int] = {}
    with (
        psycopg.connect(dsn, autocommit=True) as listener,
        psycopg.connect(dsn, autocommit=True) as sender,
    ):
        listener.execute("LISTEN bench_raw")
        done = threading.Event()

        def listen() -> None:
            while not done.is_set():
                for note in listener.notifies(timeout=0.2):
                    got[int(note.payload)] = time.perf_counter_ns()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()

        def send(i: int) -> None:
            sent[i] = time.perf_counter_ns()
            sender.execute("SELECT pg_notify('bench_raw', %s)", [str(i)])
            acked[i] = time.perf_counter_ns()

        n, elapsed = pace(rate, seconds, send)
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        thread.join(5)
    return _result(sent, acked, got, n, elapsed)


def _result(
    sent: dict[int, int], acked: dict[int, int], got: dict[int, int], n: int, elapsed: float
) -> Result:
    keys = [i for i in sent if i in got]
    return (
        [(got[i] - sent[i]) / 1e6 for i in keys],
        [max(0, got[i] - acked[i]) / 1e6 for i in keys],
        n,
        elapsed,
    )


def ours(dsn: str, redis_url: str, rate: int, seconds: float) -> Result:
    sent: dict[int, int] = {}
    acked: dict[int, int] = {}
    got: dict[int, int] = {}
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    bridge = Bridge(dsn, client, name="bench", stream="bench:changes", cache_prefix="bench")
    bridge_thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe("cache.invalidate")

    def subscribe() -> None:
        while not stop.is_set():
            msg = pubsub.get_message(timeout=0.2)
            if msg and msg["type"] == "message":
                got[int(orjson.loads(msg["data"])["record_id"])] = time.perf_counter_ns()

    sub_thread = threading.Thread(target=subscribe, daemon=True)
    sub_thread.start()
    bridge_thread.start()
    with psycopg.connect(dsn, autocommit=True) as writer:
        writer.execute("SELECT lake.act_as('bench-user', 'session')")
        # Warm up the bridge and the plans.
        for _ in range(20):
            writer.execute(f"INSERT INTO user_data.{DATASET} (ts, doc) VALUES (now(), '{{}}')")
        time.sleep(1)
        got.clear()

        def send(i: int) -> None:
            t = time.perf_counter_ns()
            row = writer.execute(
                f"INSERT INTO user_data.{DATASET} (ts, doc) VALUES (now(), '{{}}') RETURNING id"
            ).fetchone()
            assert row is not None
            sent[int(row[0])] = t
            acked[int(row[0])] = time.perf_counter_ns()

        n, elapsed = pace(rate, seconds, send)
        deadline = time.monotonic() + 15
        while len([i for i in sent if i in got]) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    stop.set()
    bridge_thread.join(15)
    sub_thread.join(5)
    pubsub.close()
    client.close()
    return _result(sent, acked, got, n, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="commits a second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    settings = lake_settings()
    dsn = fresh_database(settings, DB, {})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('SELECT lake.create_dataset(%s, \'{"type": "object"}\')', [DATASET])
    print("command:", shlex.join(["bench/bridge.py", *sys.argv[1:]]))
    for line in machine_facts(dsn):
        print(line)
    results = {
        "raw NOTIFY -> LISTEN": raw(dsn, args.rate, args.seconds),
        "commit -> bridge -> Redis subscriber": ours(
            dsn, settings.redis_url(), args.rate, args.seconds
        ),
    }
    print(
        f"\n{'path':40} {'sent':>6} {'rate/s':>7} {'arrived':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}   after the commit's ack: p50, p99 ms"
    )
    p99s = []
    for name, (lat, after_ack, n, elapsed) in results.items():
        p50, p99, worst = percentiles(lat)
        a50, a99, _ = percentiles(after_ack)
        p99s.append(p99)
        print(
            f"{name:40} {n:>6} {n / elapsed:>7.0f} {len(lat):>7} {p50:>7.2f} {p99:>7.2f} "
            f"{worst:>7.2f}   {a50:.2f}, {a99:.2f}"
        )
    print(
        f"\np99 ours / raw: {p99s[1] / p99s[0]:.1f}; goal: ours at most 2 ms -> "
        f"{'met' if p99s[1] <= 2 else 'not met'}"
    )
    if not args.keep:
        drop_database(settings, DB)


if __name__ == "__main__":
    main()
