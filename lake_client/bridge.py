"""The LISTEN/NOTIFY bridge (`lake bridge`): committed changes in lake.data_changes reach Redis.

For each change, in id (commit) order, it

* invalidates the cache namespace of the change's dataset and user (lake_client.cache; the
  dataset's generation when the change has no single owner),
* publishes a JSON message on ``cache.invalidate`` (dataset, user, op, ids), and on
  ``cache.update`` the row as it is now for creates and updates,
* appends the change to a Redis Stream (``lake:changes``) for consumers that need durability;
* for an erasure's event (op ``e``, lake.erase_user), first deletes the person's cache keys and
  their entries in the stream (lake_client.erasure), and once past it calls lake.finish_erasure.

It reads changes in batches of up to 1000 and 8 MiB of their stored rows (at least one change;
a batch the budget cut is followed at once). A change whose entry would exceed 1 MiB goes to the
stream without its rows ("rows_omitted") and to cache.update without them ("after_omitted"):
Redis keeps stream entries in memory and buffers each subscriber's messages; consumers read such
a change with Lake.changes. Each batch is its invalidations (a pipeline), then
one Lua script that publishes its messages and appends its stream entries, entry id
"<change id>-0", but only if the stream still ends with the change the bridge last appended.
Redis runs a script whole, so the stream holds every change once, in order. If the stream ends
elsewhere, Redis lost entries (a failover before they were replicated, a crash under appendfsync
everysec) or took an earlier attempt whose reply was lost: the bridge goes on from the last
change the stream holds, and sends the lost ones again. At start it goes on from there too;
lake.bridge_cursors (moved after each batch, never backwards) is where it starts without a
stream, and what `lake serve` reports. Before each read it runs the sealer (lake.seal()), which
numbers the changes committed since into lake.data_changes: writers only append to a pending table
and wait on no one at commit. While changes keep coming it looks again every BUSY_POLL_S; after
IDLE_AFTER_S without any it raises the wake-up flag (lake.arm_sealer), looks again after each of
ARM_LOOKS_S (for commits of transactions that read the flag before it was raised), and waits:
the next writer then sends NOTIFY lake_seal, and only then (so a busy lake's commits send none,
whose database-wide lock at commit would serialise them). NOTIFY lake_changes (another sealer's,
e.g. the seal job's) wakes it too; without either it looks every 5 s anyway (a notification can
be missed while it reconnects). Lost connections to either side are retried with backoff (1 s
doubling to 30 s); after any outage it catches up. Given a witness (lake_client.witness; `lake
bridge` has one unless --no-witness), it also signs the audit chain's head when it moved, every
WITNESS_EVERY_S at most, into the witness file and Redis stream, out of a database superuser's
reach.

On a Redis Cluster (``redis.cluster.RedisCluster``) the invalidations, whose keys live in many
slots, go as a cluster pipeline, and the script runs on the master holding the stream key (a
PUBLISH from any node reaches subscribers on all). Cache versions live on every master; one that
fails over (or restarts) before its replica (or its disk) has the last invalidations takes them
along, and a version set back would serve values cached under it again. So the bridge looks at the
cluster's masters (node and run ids) after its batches, at most once a second, and when they
changed it invalidates again every namespace it invalidated in the minute before it last saw
them unchanged. Not knowing what happened while it was away, a bridge that starts on a cluster
invalidates again the namespaces of the changes committed in the minute up to where it goes on.

The loop (sealing, batches, wake-ups, backoff, the durable cursor) is ChangeLoop, which the
RabbitMQ publisher (lake_client.amqp, `lake bridge --amqp`) shares; Bridge is its Redis side.
Each batch is a span, lake.bridge.batch (lake_client.telemetry), whose statements name it in
PostgreSQL's log when it is sampled.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
import redis
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from lake_client.cache import DEFAULT_PREFIX, LakeCache
from lake_client.erasure import erase_from_redis
from lake_client.errors import BRIDGE_NAME_RULE, BridgeError, StreamError, from_psycopg
from lake_client.queries import sql
from lake_client.telemetry import tracer
from lake_client.witness import WITNESS_EVERY_S, Witness

__all__ = ["Bridge", "BridgeError", "StreamError", "run_forever", "valid_name"]

log = logging.getLogger("lake.bridge")

# The defaults (of `lake bridge` too).
NAME = "default"
CACHE_PREFIX = DEFAULT_PREFIX
BATCH_SIZE = 1000
BATCH_BYTES = 8 << 20  # and at most this much of changes' stored before and after a batch
ENTRY_MAX_BYTES = 1 << 20  # a larger change goes to the stream and cache.update without its rows
POLL_S = 5.0
BUSY_POLL_S = 0.002  # while changes keep coming, look this often (writers send no NOTIFY then)
IDLE_AFTER_S = 0.2  # and go idle (arm the wake-up flag) after this long without any
ARM_LOOKS_S = (0.02, 0.1, 0.5)  # after arming, look again after each of these waits
STREAM = "lake:changes"
STREAM_MAXLEN = 1_000_000  # entries kept (about: Redis trims whole nodes); older: Lake.changes
BACKOFF_MAX_S = 30.0
MASTERS_CHECK_S = 1.0  # how often, at most, the bridge looks at a cluster's masters
REPLAY_S = 60.0  # how far back invalidations are sent again after the masters changed
REPLAY_MAX_S = 900.0  # nor further back than this before now, however long looks have failed
# A bridge's name, as lake.bridge_cursors' check constraint has it (errors.BRIDGE_NAME_RULE).
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Change = dict[str, Any]
Namespace = tuple[str, str | None]  # (dataset, user id); no user: the dataset's generation

# One batch's messages and stream entries, run by Redis as a whole and only if the last entry the
# stream took (its last-generated-id, which deleting or trimming entries does not lower) is the
# change the bridge last appended (ARGV[1]; "0" for none). Otherwise Redis lost
# entries (a failover before they were replicated, a crash under appendfsync everysec) or holds
# more than the bridge knows (the reply of an earlier attempt was lost): it answers with the last
# change it holds, and the bridge goes on from there, so the stream has every change once, in
# order. Entry ids are "<change id>-0". ARGV[2] is MAXLEN; ARGV[3] the lake database's identity,
# kept in each entry: a stream whose newest entry has another one belongs to another (or an
# earlier, re-created) database, and is refused. Then four per change: its id, the change, the
# cache.invalidate message and the cache.update message ("" for none).
APPEND = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top > 0 then
  local lake = ''
  for i = 1, #top[1][2], 2 do
    if top[1][2][i] == 'lake' then lake = top[1][2][i + 1] end
  end
  if lake ~= ARGV[3] then return {'foreign', lake} end
end
local last = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = string.match(info[i + 1], '^(%d+)-') end
  end
end
if last ~= ARGV[1] then return {'moved', last} end
for i = 4, #ARGV, 4 do
  redis.call('PUBLISH', 'cache.invalidate', ARGV[i + 2])
  if ARGV[i + 3] ~= '' then redis.call('PUBLISH', 'cache.update', ARGV[i + 3]) end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[i] .. '-0',
             'id', ARGV[i], 'change', ARGV[i + 1], 'lake', ARGV[3])
end
return {'ok', ARGV[#ARGV - 3]}
"""


def _text(value: Any) -> str:
    """A Redis reply part as text (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class _JsonAsIs(Loader):
    """jsonb as the server wrote it, for orjson to put into a message as it is."""

    def load(self, data: Buffer) -> orjson.Fragment:
        return orjson.Fragment(bytes(data))


def valid_name(name: str) -> str:
    """`name` if it can name a bridge (its cursor in lake.bridge_cursors); else BridgeError."""
    if _NAME.fullmatch(name) is None:
        raise BridgeError(
            f"invalid bridge name {name[:80]!r}: {BRIDGE_NAME_RULE}",
            hint="e.g. --name default, or --name cache-eu.1",
        )
    return name


class ChangeLoop:
    """What every bridge shares: it seals, reads the changes after its durable cursor
    (lake.bridge_cursors, under its name) in batches, hands each batch to `send`, and moves the
    cursor only when `send` returned; it waits for writers as the module's docstring says, and
    reconnects with backoff after any of `retried`. Subclasses say where changes go (`send`),
    where to start (`_start`), what to do for an erasure (`_erase`) and between looks (`_tend`).
    """

    # Errors after which run() waits (backoff) and starts again from the durable cursor.
    retried: tuple[type[BaseException], ...] = (psycopg.Error, OSError)

    def __init__(
        self,
        dsn: str,
        *,
        name: str,
        batch_size: int,
        batch_bytes: int,
        poll_s: float,
        busy_poll_s: float,
        idle_after_s: float,
        on_batch: Callable[[Sequence[Change]], None] | None,
    ) -> None:
        self.dsn = dsn
        self.name = valid_name(name)
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.poll_s = poll_s
        self.busy_poll_s = busy_poll_s
        self.idle_after_s = idle_after_s
        # Called with each batch sent: the changes as read (JSON columns as orjson.Fragment).
        self.on_batch = on_batch
        self.cursor = 0

    def send(self, changes: Sequence[Change]) -> int | None:
        """Deliver a batch; None when delivered, else the change to go on after instead.
        Raises (one of `retried`) when it failed: the cursor stays."""
        raise NotImplementedError

    def _start(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Where to go on from at each (re)connect: the durable cursor."""
        return self._advance(conn, None)

    def _erase(self, conn: psycopg.Connection[dict[str, Any]], erasures: Sequence[int]) -> None:
        """Before the cursor passes the events of these erasures (lake.erase_user)."""

    @staticmethod
    def _erasure_id(change: Change) -> int:
        source = orjson.loads(orjson.dumps(change["source"]))  # as the server wrote it
        return int(source["erasure"])

    def _tend(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """Between looks (at least every poll_s): housekeeping of the destination."""

    def _checked(self, conn: psycopg.Connection[dict[str, Any]], held: int) -> int:
        """`held` (what send() answered) if the loop may go on after it."""
        return held

    def _advance(
        self,
        conn: psycopg.Connection[dict[str, Any]],
        last_id: int | None,
        batch_seconds: float | None = None,
    ) -> int:
        try:
            row = conn.execute(
                sql("bridge_advance"),
                {"name": self.name, "last_id": last_id, "batch_seconds": batch_seconds},
            ).fetchone()
        except psycopg.errors.CheckViolation as exc:
            # A name the database refuses (should its rule differ from valid_name's): no retry
            # can help, so it is not retried like a lost connection.
            raise from_psycopg(exc) from exc
        assert row is not None
        return int(row["last_id"])

    def run(self, stop: threading.Event) -> None:
        """Bridge until `stop` is set, reconnecting to either side as long as it takes."""
        backoff = 1.0
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self.dsn, autocommit=True, row_factory=dict_row, application_name="lake-bridge"
                ) as conn:
                    conn.execute("LISTEN lake_seal")  # a writer, when the flag is up
                    conn.execute("LISTEN lake_changes")  # another sealer sealed changes
                    # The cursor's commits need not wait for the WAL flush: a cursor lost in a
                    # crash only moves back, and the changes after it are sent again.
                    conn.execute("SET synchronous_commit = off")
                    # The rows' JSON goes to Redis as the server sends it: always as UTF-8.
                    conn.execute("SET client_encoding = 'UTF8'")
                    self.cursor = self._start(conn)
                    look, armed = True, True  # armed: the flag may be up from an earlier run
                    while not stop.is_set():
                        if look:
                            if armed:
                                conn.execute(sql("arm_sealer"), {"armed": False})
                                armed = False
                            self._until_idle(conn, stop)
                            backoff = 1.0
                        self._tend(conn)
                        if not armed:
                            conn.execute(sql("arm_sealer"), {"armed": True})
                            armed = True
                            # A writer that read the flag just before it went up sends no
                            # NOTIFY: look again a moment later, and a while later still.
                            if self._looked_after_arming(conn, stop):
                                continue
                        # Woken by a writer (lake_seal) or another sealer (lake_changes, the
                        # payload its last change id: one already sent needs no look), or after
                        # poll_s anyway; `stop` is looked at every second meanwhile.
                        notes = self._wait(conn, stop)
                        look = not notes or self._news(notes)
                    # Stopped: writers need not wake this bridge any more.
                    conn.execute(sql("arm_sealer"), {"armed": False})
            except self.retried as exc:
                log.warning("bridge %s: %s; retrying in %.0f s", self.name, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _wait(
        self, conn: psycopg.Connection[dict[str, Any]], stop: threading.Event
    ) -> list[psycopg.Notify]:
        deadline = time.monotonic() + self.poll_s
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            notes = list(conn.notifies(timeout=min(left, 1.0), stop_after=1))
            if notes:
                return notes
        return []

    def _looked_after_arming(
        self, conn: psycopg.Connection[dict[str, Any]], stop: threading.Event
    ) -> bool:
        """Look again ARM_LOOKS_S after raising the flag, for commits of transactions that
        read it before; True as soon as there is work."""
        for wait in ARM_LOOKS_S:
            notes = list(conn.notifies(timeout=wait, stop_after=1))
            if stop.is_set() or self._news(notes) or self.drain(conn):
                return True
        return False

    def _news(self, notes: Sequence[psycopg.Notify]) -> bool:
        """Whether notifications may bring work: a writer's (lake_seal, no payload) or a seal's
        beyond the cursor (lake_changes; this bridge's own seals send them too)."""
        return any(not n.payload.isdigit() or int(n.payload) > self.cursor for n in notes)

    def _until_idle(self, conn: psycopg.Connection[dict[str, Any]], stop: threading.Event) -> None:
        """Seal and forward while changes keep coming, looking every busy_poll_s, until
        idle_after_s pass without any."""
        quiet_since = time.monotonic()
        while not stop.is_set() and time.monotonic() - quiet_since < self.idle_after_s:
            if self.drain(conn):
                quiet_since = time.monotonic()
                self._tend(conn)
            list(conn.notifies(timeout=self.busy_poll_s, stop_after=1))

    def drain(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Seal what has committed, then forward every change after the cursor; returns how
        many."""
        done = 0
        while True:
            started = time.monotonic()  # the batch's duration, recorded by bridge_advance
            sealed = conn.execute(sql("seal")).fetchone()
            last = sealed["last_change_id"] if sealed else None
            if done == 0 and last is not None and last <= self.cursor:
                return 0  # nothing new (NULL: another sealer runs; look anyway)
            # A span per batch: the sealer has found news (or another sealer runs).
            with tracer.start_as_current_span(
                "lake.bridge.batch", attributes={"lake.bridge": self.name}
            ) as span:
                with conn.cursor() as cur:
                    # The rows' JSON goes into the messages as the server wrote it, not parsed and
                    # written again (most of the bridge's time per change when it was).
                    cur.adapters.register_loader("jsonb", _JsonAsIs)
                    rows = cur.execute(
                        sql("bridge_changes"),
                        {"since": self.cursor, "limit": self.batch_size, "bytes": self.batch_bytes},
                    ).fetchall()
                # Cut short by the byte budget: more may follow at once.
                full = len(rows) == self.batch_size or (
                    bool(rows) and int(rows[-1]["upto"]) >= self.batch_bytes
                )
                for row in rows:
                    del row["upto"]
                span.set_attribute("lake.changes", len(rows))
                if rows:
                    span.set_attribute("lake.last_change_id", int(rows[-1]["id"]))
                # A person erased: out of Redis before the bridge goes past the event.
                erasures = [self._erasure_id(r) for r in rows if r["op"] == "e"]
                self._erase(conn, erasures)
                if rows:
                    held = self.send(rows)
                    if held is not None:
                        log.warning(
                            "bridge %s: the stream ends at change %s, not %s; going on from there",
                            self.name,
                            held,
                            self.cursor,
                        )
                        self.cursor = self._checked(conn, held)
                        continue
                    self.cursor = int(rows[-1]["id"])
                    self._advance(conn, self.cursor, time.monotonic() - started)
                    for erasure in erasures:
                        conn.execute(sql("finish_erasure"), {"erasure_id": erasure})
                    done += len(rows)
                    if self.on_batch is not None:
                        self.on_batch(rows)
            # A short batch was all there was; later commits' notifications wake us again.
            if not full:
                return done


class Bridge(ChangeLoop):
    """The bridge to Redis (`lake bridge`): see the module's docstring."""

    # RedisClusterException (and SlotNotCoveredError) is no RedisError: redis-py raises it when
    # no node of the cluster answers or the slots it sees are not all served.
    retried = (psycopg.Error, redis.RedisError, RedisClusterException, OSError, StreamError)

    def __init__(
        self,
        dsn: str,
        client: redis.Redis | RedisCluster,
        *,
        name: str = NAME,
        batch_size: int = BATCH_SIZE,
        batch_bytes: int = BATCH_BYTES,
        poll_s: float = POLL_S,
        busy_poll_s: float = BUSY_POLL_S,
        idle_after_s: float = IDLE_AFTER_S,
        stream: str = STREAM,
        stream_maxlen: int = STREAM_MAXLEN,
        cache_prefix: str = CACHE_PREFIX,
        on_batch: Callable[[Sequence[Change]], None] | None = None,
        witness: Witness | None = None,
        witness_every_s: float = WITNESS_EVERY_S,
    ) -> None:
        super().__init__(
            dsn,
            name=name,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            poll_s=poll_s,
            busy_poll_s=busy_poll_s,
            idle_after_s=idle_after_s,
            on_batch=on_batch,
        )
        self.client = client
        self.stream = stream
        if stream_maxlen < 1:
            raise BridgeError(f"stream_maxlen must be at least 1, not {stream_maxlen}")
        self.stream_maxlen = stream_maxlen
        self.cache = LakeCache(client, prefix=cache_prefix)
        self.witness = witness
        self.witness_every_s = witness_every_s
        self._witnessed_at = -float("inf")
        self.lake_id = ""  # "<system identifier>:<database oid>", read at connect
        self._stale_slots = False
        self._append = client.register_script(APPEND)
        # On a cluster: the namespaces of recent batches (when they were invalidated), and the
        # masters (node id, run id) as last seen, and when.
        self._sent: deque[tuple[float, list[Namespace]]] = deque()
        self._masters: frozenset[tuple[str, str]] | None = None
        self._masters_at = 0.0
        self._looked_at = 0.0
        self._look_failed = False

    def _tend(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self._maybe_witness(conn)
        if isinstance(self.client, RedisCluster):
            self.watch_masters(self.client)

    def _maybe_witness(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """Witness the audit chain's head, every witness_every_s at most (it seals first)."""
        if self.witness is None or time.monotonic() - self._witnessed_at < self.witness_every_s:
            return
        self._witnessed_at = time.monotonic()
        conn.execute(sql("seal"))
        self.witness.witness_head(conn)

    def send(self, changes: Sequence[Change]) -> int | None:
        """The batch's invalidations, then its messages and stream entries (one script run).
        Returns None when Redis took it all; the last change the stream holds when that is not
        the cursor (nothing of the batch was published or appended then). Raises, and so keeps
        the cursor, when Redis failed."""
        if isinstance(self.client, RedisCluster):
            return self._send_cluster(self.client, changes)
        pipe = self.client.pipeline(transaction=False)
        self._queue_invalidations(pipe, self._namespaces(changes))
        # EVAL with the script's text: a Script on a pipeline asks SCRIPT EXISTS first, one more
        # round trip a batch; Redis hashes the text and runs its cached compilation.
        pipe.eval(APPEND, 1, self.stream, *self._append_args(changes))
        return self._outcome(pipe.execute()[-1])

    def _send_cluster(self, client: RedisCluster, changes: Sequence[Change]) -> int | None:
        if self._stale_slots:
            # The stream's slot may have another master now (a failover, a resharding).
            client.nodes_manager.initialize()
            self._stale_slots = False
        try:
            # Invalidated before anything is published, as in the one pipeline of a single Redis;
            # the invalidations' keys live in many slots, the script's one key in the stream's.
            namespaces = self._namespaces(changes)
            self._invalidate(client, namespaces)
            self._sent.append((time.monotonic(), namespaces))
            return self._outcome(self._append(keys=[self.stream], args=self._append_args(changes)))
        except (redis.RedisError, RedisClusterException):
            self._stale_slots = True  # looked up again before the batch is sent again
            raise

    @staticmethod
    def _namespaces(changes: Sequence[Change]) -> list[Namespace]:
        # Each namespace once a batch: the pipeline runs as a whole, before the cursor moves.
        # An erasure's event (op e) is no namespace: its keys are deleted (_erase).
        return list(dict.fromkeys((c["dataset"], c["user_id"]) for c in changes if c["op"] != "e"))

    def _erase(self, conn: psycopg.Connection[dict[str, Any]], erasures: Sequence[int]) -> None:
        """Each erased person's cache keys and stream entries, deleted (lake_client.erasure).
        An erasure already closed (another bridge was the last to pass it) names no one."""
        for erasure in erasures:
            row = conn.execute(sql("erasure_subject"), {"erasure_id": erasure}).fetchone()
            if row is None or row["user_id"] is None:
                continue
            gone = erase_from_redis(
                self.client, str(row["user_id"]), stream=self.stream, prefix=self.cache.prefix
            )
            log.info(
                "bridge %s: erasure %s: %d cache keys and %d stream entries deleted",
                self.name,
                erasure,
                gone["cache_keys"],
                gone["stream_entries"],
            )

    def _queue_invalidations(self, pipe: Any, namespaces: Sequence[Namespace]) -> None:
        for dataset, user_id in namespaces:
            self.cache.queue_invalidation(pipe, dataset, user_id)

    def watch_masters(self, client: RedisCluster) -> None:
        """Invalidate again what was invalidated lately when the cluster's masters changed since
        the last look (a failover brings another node, a restart another run id): a master that
        went before its replica or its disk had the last writes lost them. At most once every
        MASTERS_CHECK_S; after looks that failed, the window goes back to the last one that
        succeeded (at most REPLAY_MAX_S)."""
        now = time.monotonic()
        if now - self._looked_at < MASTERS_CHECK_S:
            return
        self._looked_at = now
        try:
            masters = self._master_ids(client)
        except (redis.RedisError, RedisClusterException) as exc:
            if not self._look_failed:
                log.warning(
                    "bridge %s: cannot see the cluster's masters (%s), so invalidations a"
                    " master that fails over loses are not sent again (it needs CLUSTER NODES"
                    " and INFO); looking again every %.0f s",
                    self.name,
                    exc,
                    MASTERS_CHECK_S,
                )
            self._look_failed = True
            # Without a look that succeeded there is nothing to compare with: no window to keep.
            since_ok = now if self._masters is None else max(self._masters_at, now - REPLAY_MAX_S)
            self._forget(since_ok - REPLAY_S)
            return
        self._look_failed = False
        if self._masters is not None and masters != self._masters:
            since = self._masters_at - REPLAY_S
            again = list(dict.fromkeys(ns for t, batch in self._sent if t >= since for ns in batch))
            log.warning(
                "bridge %s: the cluster's masters changed; invalidating %d namespaces again",
                self.name,
                len(again),
            )
            # Raises: the masters stay as they were, and the next look sends again.
            self._invalidate(client, again)
        self._masters, self._masters_at = masters, now
        self._forget(now - REPLAY_S)

    def _forget(self, before: float) -> None:
        while self._sent and self._sent[0][0] < before:
            self._sent.popleft()

    def _invalidate_recent(
        self, conn: psycopg.Connection[dict[str, Any]], client: RedisCluster
    ) -> None:
        """At start: the namespaces of the changes of the last REPLAY_S up to the cursor, again
        (what a predecessor invalidated on a master that failed over since may be lost)."""
        rows = conn.execute(
            sql("recent_namespaces"),
            {"upto": self.cursor, "most": 100_000, "ms": int(REPLAY_S * 1000)},
        ).fetchall()
        if rows:
            log.info("bridge %s: invalidating %d namespaces again at start", self.name, len(rows))
            self._invalidate(client, [(r["dataset"], r["user_id"]) for r in rows])

    def _invalidate(self, client: RedisCluster, namespaces: Sequence[Namespace]) -> None:
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        self._queue_invalidations(pipe, namespaces)
        pipe.execute()

    @staticmethod
    def _master_ids(client: RedisCluster) -> frozenset[tuple[str, str]]:
        """(node id, run id) of each master that serves slots, from CLUSTER NODES of any node."""
        masters = set()
        for address, node in client.cluster_nodes().items():
            if "master" not in str(node["flags"]) or not node["slots"]:
                continue
            host, port = address.rsplit(":", 1)
            # A node that announces a host name (cluster-preferred-endpoint-type hostname, as
            # in docker/compose.yaml) is known to redis-py by that name, not its address.
            names = [str(node.get("hostname") or host), host]
            where = Bridge._known_node(client, names, int(port))
            if where is None:  # new to redis-py: look again
                client.nodes_manager.initialize()
                where = Bridge._known_node(client, names, int(port))
            if where is None:
                raise RedisClusterException(f"master {address} is not among the cluster's nodes")
            run_id = where.redis_connection.info("server")["run_id"]
            masters.add((str(node["node_id"]), str(run_id)))
        return frozenset(masters)

    @staticmethod
    def _known_node(client: RedisCluster, names: Sequence[str], port: int) -> Any:
        """The connected node of redis-py's map at one of ``names``:``port``, else None."""
        for name in names:
            found = client.get_node(name, port)  # type: ignore[no-untyped-call]
            if found is not None and found.redis_connection is not None:
                return found
        return None

    def _append_args(self, changes: Sequence[Change]) -> list[Any]:
        args: list[Any] = [str(self.cursor), self.stream_maxlen, self.lake_id]
        for c in changes:
            head = {
                "id": c["id"],
                "dataset": c["dataset"],
                "user_id": c["user_id"],
                "record_id": c["record_id"],
                "op": c["op"],
                "kind": c["kind"],
                "ts_ms": c["ts_ms"],
            }
            change = {k: v for k, v in c.items() if k != "kind"}  # kind is the messages'
            entry = orjson.dumps(change)
            if len(entry) > ENTRY_MAX_BYTES:
                # Redis buffers each subscriber's messages (client-output-buffer-limit pubsub)
                # and holds stream entries in memory: such a change goes without its rows, and
                # consumers read them with Lake.changes(since=id - 1, limit=1).
                entry = orjson.dumps(
                    {**change, "before": None, "after": None, "rows_omitted": True}
                )
                update = orjson.dumps({**head, "after": None, "after_omitted": True})
            elif c["op"] in ("c", "u"):
                update = orjson.dumps({**head, "after": c["after"]})
            else:
                update = b""
            args += [str(c["id"]), entry, orjson.dumps(head), update]
        return args

    def _outcome(self, reply: Any) -> int | None:
        status, last = (_text(x) for x in reply)
        if status == "foreign":
            self._foreign(last)
        return None if status == "ok" else int(last)

    def _foreign(self, lake: str) -> None:
        raise StreamError(
            f"stream {self.stream} holds the changes of another lake database"
            f" ({lake or 'not a lake bridge'}; this one is {self.lake_id}): delete it, or give"
            " the bridge another --stream"
        )

    def _start(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Where to go on from: the last change the stream took (Redis's own record of what it
        has), else the durable cursor (no stream yet, or Redis lost it all). The script, run
        with a cursor no stream has and nothing to append, answers with the stream's owner
        check and its last generated id (0 for none)."""
        row = conn.execute(sql("lake_identity")).fetchone()
        assert row is not None
        self.lake_id = str(row["lake"])
        durable = self._advance(conn, None)
        held = self._outcome(
            self._append(keys=[self.stream], args=["-1", self.stream_maxlen, self.lake_id])
        )
        assert held is not None
        start = durable if held == 0 else self._checked(conn, held)
        if isinstance(self.client, RedisCluster) and self._masters is None:
            self.cursor = start
            self._invalidate_recent(conn, self.client)
        return start

    def _checked(self, conn: psycopg.Connection[dict[str, Any]], held: int) -> int:
        row = conn.execute(sql("last_change")).fetchone()
        if row is None or held > int(row["last"]):
            raise StreamError(
                f"stream {self.stream} ends at entry {held}, beyond this database's last change:"
                " it was written by something else (or for another database); delete it or"
                " give the bridge another --stream"
            )
        return held


def connect_redis(
    url: str, *, cluster: bool, stop: threading.Event, name: str = NAME
) -> redis.Redis | RedisCluster | None:
    """A client of the Redis at `url`. A cluster client asks a node for the slot map as it is
    made: it waits for the cluster (the bridge may start first), with the backoff of the
    bridge's reconnects; None when `stop` is set meanwhile."""
    backoff = 1.0
    while True:
        try:
            return RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
        except ValueError as exc:  # redis-py's word for a URL it cannot read
            raise BridgeError(
                f"invalid Redis URL: {exc}",
                hint="LAKE_REDIS_URL is redis://[:password@]host:port/db",
            ) from exc
        except (redis.RedisError, RedisClusterException) as exc:
            log.warning("bridge %s: Redis Cluster: %s; retrying in %.0f s", name, exc, backoff)
            if stop.wait(backoff):
                return None
            backoff = min(backoff * 2, BACKOFF_MAX_S)


def run_forever(
    dsn: str,
    redis_url: str,
    *,
    cluster: bool = False,
    name: str = NAME,
    batch_size: int = BATCH_SIZE,
    poll_s: float = POLL_S,
    stream: str = STREAM,
    stream_maxlen: int = STREAM_MAXLEN,
    cache_prefix: str = CACHE_PREFIX,
    on_start: Callable[[Bridge], None] | None = None,
    witness: Callable[[redis.Redis | RedisCluster], Witness] | None = None,
) -> Bridge | None:
    """`lake bridge`: bridge until SIGTERM (called in the main thread) or Ctrl-C, reconnecting
    to either side as long as it takes. Checks its arguments first (BridgeError); calls
    `on_start` once Redis is reached; `witness`, given the Redis client, makes the witness of the
    audit chain's head. Returns the bridge (its cursor is where it stopped), or
    None when it was stopped while it still waited for a Redis Cluster."""
    name = valid_name(name)
    if stream_maxlen < 1:
        raise BridgeError(f"stream_maxlen must be at least 1, not {stream_maxlen}")
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None
    try:
        client = connect_redis(redis_url, cluster=cluster, stop=stop, name=name)
        if client is None:
            return None
        bridge = Bridge(
            dsn,
            client,
            name=name,
            batch_size=batch_size,
            poll_s=poll_s,
            stream=stream,
            stream_maxlen=stream_maxlen,
            cache_prefix=cache_prefix,
            witness=None if witness is None else witness(client),
        )
        if on_start is not None:
            on_start(bridge)
        try:
            bridge.run(stop)
        except KeyboardInterrupt:
            stop.set()
        return bridge
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
