"""Change events on RabbitMQ (`lake bridge --amqp URL`): every committed change of
lake.data_changes, in commit order, published to a topic exchange.

The exchange is ``lake.changes`` (durable, topic); a change's routing key is ``<dataset>.<op>``
(op c, u, d, t; an erasure's event is ``*.e``). Messages are persistent JSON (the change as the
Redis stream has it: id, xact_id, lsn, dataset, user_id, record_id, op, before, after, source,
ts_ms; a change over 1 MiB goes without its rows, ``rows_omitted``, to be read with
Lake.changes), ``message_id`` the change's id, ``timestamp`` its commit time, headers the lake's
identity, dataset, user and op. What no queue's binding takes goes to the alternate exchange
``lake.changes.unrouted`` and its durable queue of that name, so nothing is dropped.

The publisher is a sibling of the Redis bridge: the same loop (bridge.ChangeLoop), its own
durable cursor in lake.bridge_cursors (name ``amqp`` by default). A batch is published on one
channel in confirm mode, all its messages written, then every confirm awaited; the cursor moves
only when the broker confirmed them all (it confirms a persistent message once its queues have
it on disk). On a nack, a timeout or a lost connection the publisher drops the connection, waits
(backoff) and publishes again from the cursor: a consumer sees every change at least once, each
dataset's changes in commit order by first arrival, a repeat recognisable by its message_id.
Nothing of rolled-back work is published: only committed changes are sealed into
lake.data_changes. An erasure's event is published like any change (consumers must forget the
person; the broker cannot delete messages it holds), and the publisher passing it counts for
lake.finish_erasure like a Redis bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import aio_pika
import aiormq
import orjson
import psycopg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, ExchangeType
from pamqp.commands import Basic

from lake_client.bridge import (
    BATCH_BYTES,
    BATCH_SIZE,
    BUSY_POLL_S,
    ENTRY_MAX_BYTES,
    IDLE_AFTER_S,
    POLL_S,
    Change,
    ChangeLoop,
    valid_name,
)
from lake_client.errors import BridgeError
from lake_client.queries import sql

__all__ = ["EXCHANGE", "NAME", "AmqpBridge", "declare", "routing_key", "run_forever"]

log = logging.getLogger("lake.bridge")

NAME = "amqp"  # the publisher's cursor in lake.bridge_cursors (the Redis bridge's: default)
EXCHANGE = "lake.changes"
CONFIRM_TIMEOUT_S = 30.0  # a batch's confirms not all in by then: publish it again
CONNECT_TIMEOUT_S = 10.0
HEARTBEAT_S = 30

T = TypeVar("T")


def routing_key(change: Change) -> str:
    """``<dataset>.<op>``: bind ``location_history.*`` for a dataset, ``#.d`` for deletes."""
    return f"{change['dataset']}.{change['op']}"


async def declare(channel: AbstractChannel, exchange: str = EXCHANGE) -> AbstractExchange:
    """The exchange (durable, topic), with its alternate exchange and queue for what no binding
    takes (`<exchange>.unrouted`); idempotent. Consumers may declare it before binding."""
    unrouted = await channel.declare_exchange(
        f"{exchange}.unrouted", ExchangeType.FANOUT, durable=True
    )
    # A quorum queue: replicated where there are nodes, on disk before the broker confirms.
    queue = await channel.declare_queue(
        f"{exchange}.unrouted", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(unrouted)
    return await channel.declare_exchange(
        exchange,
        ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": f"{exchange}.unrouted"},
    )


class AmqpBridge(ChangeLoop):
    """Publishes the lake's changes to RabbitMQ with publisher confirms (see the module)."""

    # ChannelInvalidStateError (a publish on a channel that closed) is aiormq's RuntimeError.
    retried = (
        psycopg.Error,
        OSError,
        aiormq.exceptions.AMQPError,
        aiormq.exceptions.ChannelInvalidStateError,
    )

    def __init__(
        self,
        dsn: str,
        url: str,
        *,
        name: str = NAME,
        exchange: str = EXCHANGE,
        batch_size: int = BATCH_SIZE,
        batch_bytes: int = BATCH_BYTES,
        poll_s: float = POLL_S,
        busy_poll_s: float = BUSY_POLL_S,
        idle_after_s: float = IDLE_AFTER_S,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        on_batch: Callable[[Sequence[Change]], None] | None = None,
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
        self.url = url
        self.exchange = exchange
        self.confirm_timeout_s = confirm_timeout_s
        self.lake_id = ""
        # aio-pika runs on an event loop: this one, the bridge's own, run only while it talks
        # to the broker (and between looks, for the heartbeats).
        self._loop = asyncio.new_event_loop()
        self._connection: AbstractConnection | None = None
        self._channel: aiormq.Channel | None = None

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.run_until_complete(work)
        except asyncio.CancelledError as exc:
            # aiormq cancels what waits on a connection that closed (a confirm, a declare):
            # no one else cancels this loop's work. Retried like any lost connection.
            self._loop.run_until_complete(self._drop())
            raise ConnectionError("the connection to the broker closed") from exc

    def close(self) -> None:
        """Close the connection to the broker and the event loop."""
        self._run(self._drop())
        self._loop.close()

    def _start(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        row = conn.execute(sql("lake_identity")).fetchone()
        assert row is not None
        self.lake_id = str(row["lake"])
        self._run(self._connect())
        return self._advance(conn, None)

    def _tend(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        # Heartbeats and the broker's frames (a close, a connection.blocked) are handled only
        # while the loop runs: let it run once. A connection found lost is opened again.
        self._run(self._connect())

    def send(self, changes: Sequence[Change]) -> int | None:
        self._run(self._publish(changes))
        return None

    async def _connect(self) -> None:
        await asyncio.sleep(0)
        if self._connection is not None and not self._connection.is_closed:
            return
        await self._drop()
        connection = await aio_pika.connect(
            self.url,
            timeout=CONNECT_TIMEOUT_S,
            client_properties={"connection_name": f"lake-bridge {self.name}"},
            heartbeat=HEARTBEAT_S,
        )
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, self.exchange)
            underlay = await channel.get_underlay_channel()
            assert isinstance(underlay, aiormq.Channel)  # its basic_publish takes wait
            self._channel = underlay
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        log.info("bridge %s: publishing to exchange %s", self.name, self.exchange)

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            # It is going anyway.
            with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, RuntimeError):
                await asyncio.wait_for(connection.close(), 5.0)

    async def _publish(self, changes: Sequence[Change]) -> None:
        """Every message of the batch written on the channel in order (aiormq writes them
        under the channel's lock, a queue: first come, first written), then all confirms
        awaited. Anything short of every one acked drops the connection and raises."""
        await self._connect()
        channel = self._channel
        assert channel is not None
        try:
            confirms = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        channel.basic_publish(
                            self._body(c),
                            exchange=self.exchange,
                            routing_key=routing_key(c),
                            properties=self._properties(c),
                            wait=False,  # written by the connection's writer, in order
                        )
                        for c in changes
                    )
                ),
                self.confirm_timeout_s,
            )
            nacked = [c for c in confirms if not isinstance(c, Basic.Ack)]
            if nacked:  # the broker could not take them (e.g. a queue's disk failed)
                raise aiormq.exceptions.DeliveryError(None, nacked[0])  # type: ignore[arg-type]
        except BaseException:
            await self._drop()
            raise

    @staticmethod
    def _body(change: Change) -> bytes:
        body = orjson.dumps({k: v for k, v in change.items() if k != "kind"})
        if len(body) > ENTRY_MAX_BYTES:
            body = orjson.dumps(
                {k: v for k, v in change.items() if k != "kind"}
                | {"before": None, "after": None, "rows_omitted": True}
            )
        return body

    def _properties(self, change: Change) -> aiormq.spec.Basic.Properties:
        return aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=2,  # persistent
            message_id=str(change["id"]),
            timestamp=dt.datetime.fromtimestamp(int(change["ts_ms"]) / 1000, dt.UTC),
            message_type=str(change["op"]),
            app_id="datapunk-lake",
            headers={
                "lake": self.lake_id,
                "dataset": str(change["dataset"]),
                "user_id": None if change["user_id"] is None else str(change["user_id"]),
                "op": str(change["op"]),
            },
        )


def run_forever(
    dsn: str,
    url: str,
    *,
    name: str = NAME,
    exchange: str = EXCHANGE,
    batch_size: int = BATCH_SIZE,
    poll_s: float = POLL_S,
    on_start: Callable[[AmqpBridge], None] | None = None,
) -> AmqpBridge:
    """`lake bridge --amqp URL`: publish until SIGTERM (in the main thread) or Ctrl-C,
    reconnecting to either side as long as it takes. Returns the publisher (its cursor is where
    it stopped)."""
    name = valid_name(name)
    if not url.startswith(("amqp://", "amqps://")):
        raise BridgeError(
            "invalid AMQP URL: it must start with amqp:// or amqps://",
            hint="e.g. amqp://user:password@127.0.0.1:5672/%2F (`lake status` shows the lake's)",
        )
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None
    bridge = AmqpBridge(
        dsn, url, name=name, exchange=exchange, batch_size=batch_size, poll_s=poll_s
    )
    try:
        if on_start is not None:
            on_start(bridge)
        try:
            bridge.run(stop)
        except KeyboardInterrupt:
            stop.set()
        return bridge
    finally:
        bridge.close()
        if main:
            signal.signal(signal.SIGTERM, previous)
