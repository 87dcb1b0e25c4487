"""Bridge latency: commit -> Redis subscriber and commit -> RabbitMQ consumer, against raw
NOTIFY -> LISTEN in the same run.

    .venv/bin/python bench/bridge.py [--rate 1000] [--seconds 5] [--writers 2] [--keep]

Creates a fresh migrated database on the lake's server with one dataset, then, one after the
other:

  raw   --writers processes together commit `SELECT pg_notify('bench_raw', <n>)` at --rate a
        second for --seconds; a listener on its own connection notes when each notification
        arrives.
  ours  --writers processes together commit one INSERT into user_data.<dataset> at --rate a
        second (validated, counted as a batch and audited, captured into lake.data_changes,
        sealed after commit by the bridge); `lake bridge` runs as its own process, as in
        production; a Redis subscriber on cache.invalidate notes when each record's message
        arrives. A listener counts the writers' NOTIFY lake_seal meanwhile (sent only while the
        bridge is idle), and afterwards 20 single commits, each after 0.5 s of quiet, measure
        the idle bridge's wake-up.
  amqp  the same writers; `lake bridge --amqp` (its own process) publishes to the embedded
        RabbitMQ (started if it does not run: `lake up --with rabbitmq`; stopped again then)
        with publisher confirms; a consumer on a durable quorum queue bound to <dataset>.*
        notes when each record's message arrives.

Each writer runs BEGIN; <statement>; COMMIT. Latency is measured from just before the COMMIT to
the arrival, on one clock (CLOCK_MONOTONIC, shared by the processes). Prints p50, p99 and max,
the same from the commit's acknowledgement, the statement's own time, and the rates reached.
Last, how fast each bridge forwards: 20 000 row changes committed at once, from the COMMIT to the
last message's arrival.
Goal (issue 14): p99 of ours at most 2 ms at 100 commits/s (--rate 100).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

import aio_pika
import orjson
import psycopg
import redis
from common import ROOT, drop_database, fresh_database, lake_settings, machine_facts

from lake_client import amqp
from lake_client.config import Settings
from lake_client.local import rabbitmq
from lake_client.local.processes import Paths, to_stderr

DB = "lake_bench_bridge"
DATASET = "steps"
INSERT = f"INSERT INTO user_data.{DATASET} (ts, doc) VALUES (now(), '{{}}') RETURNING id"

# key -> (before the statement, before COMMIT, after COMMIT), perf_counter_ns
Sent = dict[int, tuple[int, int, int]]


def writer(
    mode: str, dsn: str, w: int, rate: float, n: int, phase: float, go: MpEvent, out: mp.Queue[Sent]
) -> None:
    """Writer w: commit n statements at `rate` a second, starting `phase` s after `go`."""
    sent: Sent = {}
    with psycopg.connect(dsn) as conn:
        if mode == "ours":
            conn.execute("SELECT lake.act_as('bench-user', 'session')")
            for _ in range(20):  # plans, PL/Python, the first partition lookups
                conn.execute(INSERT)
            conn.commit()
        go.wait()
        start = time.perf_counter() + phase
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter_ns()
            if mode == "ours":
                row = conn.execute(INSERT).fetchone()
                assert row is not None
                key = int(row[0])
            else:
                key = w * 10_000_000 + i
                conn.execute("SELECT pg_notify('bench_raw', %s)", [str(key)])
            t1 = time.perf_counter_ns()
            conn.commit()
            sent[key] = (t0, t1, time.perf_counter_ns())
    out.put(sent)


def run_writers(mode: str, dsn: str, rate: int, seconds: float, writers: int) -> tuple[Sent, float]:
    """Start the writers, let them go together, and collect what they sent."""
    ctx = mp.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    each = int(rate * seconds) // writers
    procs = [
        ctx.Process(target=writer, args=(mode, dsn, w, rate / writers, each, w / rate, go, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(2)  # connected and warmed up
    t = time.perf_counter()
    go.set()
    sent: Sent = {}
    for _ in procs:
        sent.update(out.get(timeout=seconds * 10 + 60))
    elapsed = time.perf_counter() - t
    for p in procs:
        p.join()
    return sent, elapsed


def wait_for(got: dict[int, int], sent: Sent, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while len(sent.keys() & got.keys()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)


Result = tuple[Sent, dict[int, int], float]


def raw(dsn: str, rate: int, seconds: float, writers: int) -> Result:
    got: dict[int, int] = {}
    done = threading.Event()
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN bench_raw")

        def listen() -> None:
            while not done.is_set():
                for note in listener.notifies(timeout=0.2):
                    got[int(note.payload)] = time.perf_counter_ns()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        sent, elapsed = run_writers("raw", dsn, rate, seconds, writers)
        wait_for(got, sent)
        done.set()
        thread.join(5)
    return sent, got, elapsed


def ours(dsn: str, redis_url: str, rate: int, seconds: float, writers: int) -> Result:
    got: dict[int, int] = {}
    done = threading.Event()
    client = redis.Redis.from_url(redis_url)
    client.delete("bench:changes")  # a previous run's, for the database of that run
    pubsub = client.pubsub()  # type: ignore[no-untyped-call,unused-ignore]
    pubsub.subscribe("cache.invalidate")

    def subscribe() -> None:
        while not done.is_set():
            msg = pubsub.get_message(timeout=0.2)
            if msg and msg["type"] == "message":
                got[int(orjson.loads(msg["data"])["record_id"])] = time.perf_counter_ns()

    thread = threading.Thread(target=subscribe, daemon=True)
    thread.start()
    env = {**os.environ, "LAKE_DATABASE": DB}
    lake = str(Path(sys.executable).with_name("lake"))
    bridge = subprocess.Popen(
        [lake, "bridge", "--name", "bench", "--prefix", "bench", "--stream", "bench:changes"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wakeups = [0]
    counting = threading.Event()
    counter = psycopg.connect(dsn, autocommit=True)
    counter.execute("LISTEN lake_seal")

    def count() -> None:
        while not done.is_set():
            for _ in counter.notifies(timeout=0.2):
                if counting.is_set():
                    wakeups[0] += 1

    counter_thread = threading.Thread(target=count, daemon=True)
    counter_thread.start()
    try:
        time.sleep(2)  # started and listening
        counting.set()
        sent, elapsed = run_writers("ours", dsn, rate, seconds, writers)
        counting.clear()
        wait_for(got, sent)
        NOTES.append(
            f"writers' NOTIFY lake_seal during the run: {wakeups[0]} for {len(sent)} commits"
            " (sent only while the bridge is idle)"
        )
        idle_commits(dsn, got)
        burst(dsn, got, "Redis subscriber")
    finally:
        bridge.terminate()
        bridge.wait(15)
        done.set()
        thread.join(5)
        counter_thread.join(5)
        counter.close()
        pubsub.close()
        client.close()
    return sent, got, elapsed


def idle_commits(dsn: str, got: dict[int, int], n: int = 20) -> None:
    """The first commit after the bridge went idle (0.5 s after the previous): it wakes the
    bridge with its NOTIFY. From the COMMIT to the subscriber."""
    ms = []
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT lake.act_as('bench-user', 'session')")
        for _ in range(n):
            time.sleep(0.5)
            row = conn.execute(INSERT).fetchone()
            assert row is not None
            t0 = time.perf_counter_ns()
            conn.commit()
            deadline = time.monotonic() + 10
            while int(row[0]) not in got and time.monotonic() < deadline:
                time.sleep(0.0002)
            if int(row[0]) in got:
                ms.append((got[int(row[0])] - t0) / 1e6)
    if ms:
        p50, _, worst = percentiles(ms)
        NOTES.append(
            f"idle bridge -> first commit: {len(ms)} of {n} arrived, p50 {p50:.2f} ms,"
            f" max {worst:.2f} ms"
        )


BURST = 20_000
NOTES: list[str] = []  # printed after the table


def burst(dsn: str, got: dict[int, int], where: str) -> None:
    """How fast the bridge forwards: BURST row changes committed at once (one INSERT ... SELECT),
    from the COMMIT to the last message's arrival."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT lake.act_as('bench-user', 'session')")
        ids = [
            int(r[0])
            for r in conn.execute(
                f"INSERT INTO user_data.{DATASET} (ts, doc)"
                f" SELECT now(), '{{}}' FROM generate_series(1, {BURST}) RETURNING id"
            )
        ]
        t0 = time.perf_counter_ns()
        conn.commit()
    deadline = time.monotonic() + 60
    while not all(i in got for i in ids) and time.monotonic() < deadline:
        time.sleep(0.01)
    arrived = [got[i] for i in ids if i in got]
    if len(arrived) < len(ids):
        NOTES.append(
            f"burst ({where}): only {len(arrived)} of {len(ids)} changes arrived within 60 s"
        )
        return
    seconds = (max(arrived) - t0) / 1e9
    NOTES.append(
        f"burst: {BURST} row changes in one commit reached the {where} in {seconds:.2f} s"
        f" ({BURST / seconds:,.0f} changes/s through the bridge)"
    )


QUEUE = "bench.changes"


def consume(url: str, got: dict[int, int], ready: threading.Event, done: threading.Event) -> None:
    """A consumer on a durable quorum queue bound to <dataset>.*: notes when each record's
    message arrives (until `done`, then deletes the queue)."""

    async def main() -> None:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1000)
            exchange = await amqp.declare(channel)
            queue = await channel.declare_queue(
                QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.purge()
            await queue.bind(exchange, f"{DATASET}.*")

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                got[int(orjson.loads(message.body)["record_id"])] = time.perf_counter_ns()
                await message.ack()

            await queue.consume(on_message)
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.05)
            await queue.delete(if_unused=False, if_empty=False)

    asyncio.run(main())


def ours_amqp(dsn: str, settings: Settings, rate: int, seconds: float, writers: int) -> Result:
    started = rabbitmq.server_pid(Paths(settings.home)) is None
    if started:
        rabbitmq.up(settings, to_stderr)
    # The publisher starts after the changes of the paths measured before (its cursor moved
    # there): it is measured on the writers' commits, not on a backlog.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT lake.seal()")
        conn.execute(
            "SELECT lake.bridge_advance('bench-amqp',"
            " (SELECT coalesce(max(id), 0) FROM lake.data_changes))"
        )
    got: dict[int, int] = {}
    ready, done = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=consume, args=(rabbitmq.url(settings), got, ready, done), daemon=True
    )
    thread.start()
    env = {**os.environ, "LAKE_DATABASE": DB}
    lake = str(Path(sys.executable).with_name("lake"))
    bridge = subprocess.Popen(
        [lake, "bridge", "--amqp", "embedded", "--name", "bench-amqp"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not ready.wait(30):
            raise SystemExit("the RabbitMQ consumer did not start")
        time.sleep(2)  # the bridge started and connected
        sent, elapsed = run_writers("ours", dsn, rate, seconds, writers)
        wait_for(got, sent)
        burst(dsn, got, "RabbitMQ consumer")
    finally:
        bridge.terminate()
        bridge.wait(15)
        done.set()
        thread.join(10)
        if started:
            rabbitmq.down(settings)
    return sent, got, elapsed


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="commits a second, all writers")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=2, help="writer processes")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--paths", default="raw,redis,amqp", help="which of raw, redis, amqp to measure"
    )
    args = parser.parse_args()
    settings = lake_settings()
    dsn = fresh_database(settings, DB, {})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('SELECT lake.create_dataset(%s, \'{"type": "object"}\')', [DATASET])
    print("command:", shlex.join(["bench/bridge.py", *sys.argv[1:]]))
    for line in machine_facts(dsn):
        print(line)
    paths = set(args.paths.split(","))
    results = {}
    if "raw" in paths:
        results["raw NOTIFY -> LISTEN"] = raw(dsn, args.rate, args.seconds, args.writers)
    if "redis" in paths:
        results["commit -> lake bridge -> Redis subscriber"] = ours(
            dsn, settings.redis_url(), args.rate, args.seconds, args.writers
        )
    if "amqp" in paths:
        results["commit -> lake bridge --amqp -> RabbitMQ"] = ours_amqp(
            dsn, settings, args.rate, args.seconds, args.writers
        )
    print(
        f"\nfrom COMMIT to arrival, {args.writers} writer(s)\n"
        f"{'path':42} {'sent':>6} {'rate/s':>7} {'arrived':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7}   from the ack: p50, p99   statement: p50"
    )
    p99s = {}
    for name, (sent, got, elapsed) in results.items():
        keys = [k for k in sent if k in got]
        p50, p99, worst = percentiles([(got[k] - sent[k][1]) / 1e6 for k in keys])
        a50, a99, _ = percentiles([max(0, got[k] - sent[k][2]) / 1e6 for k in keys])
        s50, _, _ = percentiles([(sent[k][1] - sent[k][0]) / 1e6 for k in keys])
        p99s[name] = p99
        print(
            f"{name:42} {len(sent):>6} {len(sent) / elapsed:>7.0f} {len(keys):>7} {p50:>7.2f} "
            f"{p99:>7.2f} {worst:>7.2f}   {a50:>13.2f}, {a99:.2f}   {s50:>12.2f}"
        )
    raw_p99 = p99s.get("raw NOTIFY -> LISTEN")
    redis_p99 = p99s.get("commit -> lake bridge -> Redis subscriber")
    if raw_p99 is not None and redis_p99 is not None:
        print(
            f"\np99 ours / raw: {redis_p99 / raw_p99:.1f}; goal: ours at most 2 ms -> "
            f"{'met' if redis_p99 <= 2 else 'not met'}"
        )
    for note in NOTES:
        print(note)
    if not args.keep:
        drop_database(settings, DB)


if __name__ == "__main__":
    main()
