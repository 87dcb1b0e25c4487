"""The LISTEN/NOTIFY bridge (`lake bridge`): committed changes in lake.data_changes reach Redis.

For each change, in id (commit) order, it

* invalidates the cache namespace of the change's dataset and user (lake_client.cache; the
  dataset's generation when the change has no single owner),
* publishes a JSON message on ``cache.invalidate`` (dataset, user, op, ids), and on
  ``cache.update`` the row as it is now for creates and updates,
* appends the change to a Redis Stream (``lake:changes``) for consumers that need durability.

It reads after its durable cursor (lake.bridge_cursors) in batches of up to 1000, sends each
batch as one pipeline, and moves the cursor only after Redis accepted all of it: at least once,
in order, nothing skipped. NOTIFY lake_changes wakes it; without one it looks every 5 s anyway
(a notification can be missed while it reconnects). Lost connections to either side are retried
with backoff (1 s doubling to 30 s); after any outage it catches up from its cursor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
import redis
from psycopg.rows import dict_row
from redis.cluster import RedisCluster

from lake_client.cache import LakeCache
from lake_client.queries import sql

log = logging.getLogger("lake.bridge")

BATCH_SIZE = 1000
POLL_S = 5.0
STREAM = "lake:changes"
STREAM_MAXLEN = 1_000_000
BACKOFF_MAX_S = 30.0

Change = dict[str, Any]


class Bridge:
    def __init__(
        self,
        dsn: str,
        client: redis.Redis | RedisCluster,
        *,
        name: str = "default",
        batch_size: int = BATCH_SIZE,
        poll_s: float = POLL_S,
        stream: str = STREAM,
        cache_prefix: str = "lake",
        on_batch: Callable[[Sequence[Change]], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.client = client
        self.name = name
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.stream = stream
        self.cache = LakeCache(client, prefix=cache_prefix)
        self.on_batch = on_batch
        self.cursor = 0

    def run(self, stop: threading.Event) -> None:
        """Bridge until `stop` is set, reconnecting to either side as long as it takes."""
        backoff = 1.0
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self.dsn, autocommit=True, row_factory=dict_row, application_name="lake-bridge"
                ) as conn:
                    conn.execute("LISTEN lake_changes")
                    # The cursor's commits need not wait for the WAL flush: a cursor lost in a
                    # crash only moves back, and the changes after it are sent again.
                    conn.execute("SET synchronous_commit = off")
                    self.cursor = int(self._advance(conn, None))
                    look = True
                    while not stop.is_set():
                        if look:
                            self.drain(conn)
                            backoff = 1.0
                        # Woken by commits' NOTIFYs (the payload is a commit's last change id:
                        # one already sent needs no query), or after poll_s anyway.
                        notes = list(conn.notifies(timeout=self.poll_s, stop_after=1))
                        look = not notes or any(
                            not n.payload.isdigit() or int(n.payload) > self.cursor for n in notes
                        )
            except (psycopg.Error, redis.RedisError, OSError) as exc:
                log.warning("bridge %s: %s; retrying in %.0f s", self.name, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def drain(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Forward every change after the cursor; returns how many."""
        done = 0
        while True:
            rows = conn.execute(
                sql("changes"), {"since": self.cursor, "limit": self.batch_size}
            ).fetchall()
            if rows:
                self.send(rows)
                self.cursor = int(self._advance(conn, int(rows[-1]["id"])))
                done += len(rows)
                if self.on_batch is not None:
                    self.on_batch(rows)
            # A short batch was all there was; later commits' notifications wake us again.
            if len(rows) < self.batch_size:
                return done

    def send(self, changes: Sequence[Change]) -> None:
        """One pipeline for the batch; raises (and so keeps the cursor) unless Redis took all."""
        pipe = self.client.pipeline(transaction=False)
        # Each namespace once a batch: the pipeline runs as a whole, before the cursor moves.
        for dataset, user_id in dict.fromkeys((c["dataset"], c["user_id"]) for c in changes):
            self.cache.queue_invalidation(pipe, dataset, user_id)
        for c in changes:
            head = {
                "id": c["id"],
                "dataset": c["dataset"],
                "user_id": c["user_id"],
                "record_id": c["record_id"],
                "op": c["op"],
                "kind": (c["source"] or {}).get("kind"),
                "ts_ms": c["ts_ms"],
            }
            pipe.publish("cache.invalidate", orjson.dumps(head))
            if c["op"] in ("c", "u"):
                pipe.publish("cache.update", orjson.dumps({**head, "after": c["after"]}))
            pipe.xadd(
                self.stream,
                {"id": str(c["id"]), "change": orjson.dumps(c)},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
        pipe.execute()

    def _advance(self, conn: psycopg.Connection[dict[str, Any]], last_id: int | None) -> int:
        row = conn.execute(
            sql("bridge_advance"), {"name": self.name, "last_id": last_id}
        ).fetchone()
        assert row is not None
        return int(row["last_id"])
