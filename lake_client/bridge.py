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

On a Redis Cluster (``redis.cluster.RedisCluster``) a batch is two pipelines: the invalidations,
whose keys live in many slots, as a cluster pipeline; then the messages and the stream entries,
in change order, as one plain pipeline on the master that holds the stream key (redis-py refuses
PUBLISH in a cluster pipeline, and the cluster broadcasts a PUBLISH from any node to all). Not
the stream entries in the cluster pipeline: when it loses a node it re-sends the failed commands
one by one, and with a master killed mid-batch entries arrived out of order, or more than a
batch of them twice. On one connection Redis runs a prefix of the batch, and the batch sent again
follows it. A failover can still lose the writes the old master acknowledged but had not yet
replicated (Redis Cluster replicates asynchronously).
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
from redis.exceptions import RedisClusterException

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
        self._stale_slots = False

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
            # RedisClusterException (and SlotNotCoveredError) is no RedisError: redis-py raises it
            # when no node of the cluster answers or the slots it sees are not all served.
            except (psycopg.Error, redis.RedisError, RedisClusterException, OSError) as exc:
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
        """One pipeline for the batch (two on a cluster); raises (and so keeps the cursor) unless
        Redis took all."""
        if isinstance(self.client, RedisCluster):
            self._send_cluster(self.client, changes)
            return
        pipe = self.client.pipeline(transaction=False)
        self._queue_invalidations(pipe, changes)
        self._queue_messages(pipe, changes)
        pipe.execute()

    def _send_cluster(self, client: RedisCluster, changes: Sequence[Change]) -> None:
        if self._stale_slots:
            # The stream's slot may have another master now (a failover, a resharding): the
            # cluster pipeline refreshes its map of the slots itself, the plain one does not.
            client.nodes_manager.initialize()
            self._stale_slots = False
        try:
            # Invalidated before anything is published, as in the one pipeline of a single Redis.
            invalidations = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
            self._queue_invalidations(invalidations, changes)
            invalidations.execute()
            node = client.get_node_from_key(self.stream)  # type: ignore[no-untyped-call]
            pipe = client.get_redis_connection(node).pipeline(transaction=False)
            self._queue_messages(pipe, changes)
            pipe.execute()
        except (redis.RedisError, RedisClusterException):
            self._stale_slots = True  # looked up again before the batch is sent again
            raise

    def _queue_invalidations(self, pipe: Any, changes: Sequence[Change]) -> None:
        # Each namespace once a batch: the pipeline runs as a whole, before the cursor moves.
        for dataset, user_id in dict.fromkeys((c["dataset"], c["user_id"]) for c in changes):
            self.cache.queue_invalidation(pipe, dataset, user_id)

    def _queue_messages(self, pipe: Any, changes: Sequence[Change]) -> None:
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

    def _advance(self, conn: psycopg.Connection[dict[str, Any]], last_id: int | None) -> int:
        row = conn.execute(
            sql("bridge_advance"), {"name": self.name, "last_id": last_id}
        ).fetchone()
        assert row is not None
        return int(row["last_id"])
