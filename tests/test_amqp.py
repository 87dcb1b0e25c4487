"""Change events on RabbitMQ (lake_client.amqp, `lake bridge --amqp`): a real broker (Debian's
rabbitmq-server, started once for this module on private ports) takes every committed change,
persistent, routed by <dataset>.<op>, message_id the change id; through a broker killed with
SIGKILL mid-stream, a publisher killed and restarted and its connection cut, a durable queue
holds every committed change at least once, each dataset's in commit order by first arrival,
and nothing of rolled-back work."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import aiormq
import orjson
import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client import amqp
from lake_client.amqp import AmqpBridge
from lake_client.config import Settings
from lake_client.local import rabbitmq
from lake_client.local.processes import Paths, silent
from lake_client.local.tls import files
from lake_client.queries import sql
from tests.conftest import LOCATION_SCHEMA, point, private_settings, seal, server_folder
from tests.tls_probe import foreign_ca, handshake, renew_in_place

Conn = psycopg.Connection[tuple[object, ...]]

pytestmark = pytest.mark.slow


def _free_triple() -> int:
    """A loopback port p with p + 1 and p + 2 free too (AMQP, Erlang distribution, epmd)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 2 > 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port + 1))
                b.bind(("127.0.0.1", port + 2))
        except OSError:
            continue
        return port


@dataclass
class Broker:
    settings: Settings

    @property
    def url(self) -> str:
        return rabbitmq.url(self.settings)

    def start(self) -> None:
        rabbitmq.up(self.settings, silent)

    def kill(self) -> int | None:
        return rabbitmq.kill(self.settings)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """One broker for the module: it takes seconds to start."""
    base = server_folder("lake-amqp-")
    s = dataclasses.replace(private_settings(base, 0, 0), amqp_port=_free_triple())
    s.home.mkdir(mode=0o755)  # the server user must traverse it
    b = Broker(s)
    b.start()
    try:
        yield b
    finally:
        rabbitmq.down(s)
        shutil.rmtree(base, ignore_errors=True)


def _login(url: str) -> None:
    async def login() -> None:
        connection = await aio_pika.connect(url, timeout=10)
        await connection.close()

    asyncio.run(login())


def test_the_broker_speaks_amqps_tls13_only_to_clients_that_trust_the_lake(
    broker: Broker, tmp_path: Path
) -> None:
    """amqps only, TLS 1.3 only: the lake's URL (its CA) logs in; TLS 1.2, plaintext AMQP with
    the right password, and TLS trusting another CA are refused."""
    s = broker.settings
    assert broker.url.startswith("amqps://")
    _login(broker.url)
    assert handshake(s.amqp_port, s.ca_file)[0] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(s.amqp_port, s.ca_file, tls12=True)
    bare = broker.url.split("?", 1)[0]
    with pytest.raises((aiormq.exceptions.AMQPError, OSError)):  # no AMQP greeting comes back
        _login(bare.replace("amqps://", "amqp://", 1))
    foreign = foreign_ca(tmp_path)
    with pytest.raises((aiormq.exceptions.AMQPError, OSError)) as refused:
        _login(f"{bare}?cafile={quote(str(foreign), safe='')}")
    assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value) + repr(refused.value.__cause__)
    _login(broker.url)  # and it still serves


def test_the_broker_takes_a_renewed_certificate_and_open_connections_go_on(
    broker: Broker,
) -> None:
    """The files replaced in place (as the database's job does): after rabbitmq.reload_tls new
    connections get the new certificate; a connection opened before goes on publishing."""
    s = broker.settings
    tls = files(Paths(s.home))
    before = ssl.PEM_cert_to_DER_cert(tls.cert(rabbitmq.NAME).read_text())
    assert handshake(s.amqp_port, s.ca_file)[1] == before

    async def scenario() -> bytes:
        connection = await aio_pika.connect(broker.url, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("t-renewal", auto_delete=True)
            renew_in_place(s, rabbitmq.NAME)
            after = ssl.PEM_cert_to_DER_cert(tls.cert(rabbitmq.NAME).read_text())
            assert handshake(s.amqp_port, s.ca_file)[1] == before  # cached: not yet taken
            assert rabbitmq.reload_tls(s) is True
            assert handshake(s.amqp_port, s.ca_file)[1] == after
            assert rabbitmq.reload_tls(s) is False  # nothing more to do
            # The connection opened before the renewal publishes and consumes on.
            await channel.default_exchange.publish(aio_pika.Message(b"after"), "t-renewal")
            message = await queue.get(timeout=10)
            assert message is not None
            await message.ack()
            return message.body

    assert asyncio.run(scenario()) == b"after"
    _login(broker.url)  # and a new connection works with the new certificate


@dataclass
class Message:
    message_id: str
    routing_key: str
    persistent: bool
    content_type: str | None
    headers: dict[str, Any]
    body: dict[str, Any]


async def _bind(url: str, queue: str, keys: list[str]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await amqp.declare(channel)
        q = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        await q.purge()
        for key in keys:
            await q.bind(exchange, key)


async def _drain(url: str, queue: str) -> list[Message]:
    out: list[Message] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue)
        while (m := await q.get(fail=False)) is not None:
            out.append(
                Message(
                    message_id=str(m.message_id),
                    routing_key=str(m.routing_key),
                    persistent=m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
                    content_type=m.content_type,
                    headers=dict(m.headers),
                    body=orjson.loads(m.body),
                )
            )
            await m.ack()
    return out


def bind(url: str, queue: str, *keys: str) -> None:
    """A durable (quorum) queue `queue`, emptied, bound to lake.changes with `keys`."""
    asyncio.run(_bind(url, queue, list(keys)))


def drain(url: str, queue: str) -> list[Message]:
    """Every message the queue holds, in its order (taken and acknowledged)."""
    return asyncio.run(_drain(url, queue))


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def cursor(conn: Conn, name: str) -> int:
    row = conn.execute("SELECT last_id FROM lake.bridge_cursors WHERE name = %s", [name]).fetchone()
    return 0 if row is None else int(str(row[0]))


def committed_changes(conn: Conn) -> list[tuple[int, str, str]]:
    seal(conn)
    return [
        (int(str(r[0])), str(r[1]), str(r[2]))
        for r in conn.execute("SELECT id, dataset, op FROM lake.data_changes ORDER BY id")
    ]


class Running:
    """A publisher in a thread."""

    def __init__(self, bridge: AmqpBridge) -> None:
        self.bridge = bridge
        self.stop = threading.Event()
        self.thread = threading.Thread(target=bridge.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        self.bridge.close()


def test_each_committed_change_is_published_persistent_and_routed(
    conn: Conn, db: str, location_dataset: str, broker: Broker
) -> None:
    """Creates, an update and a delete, and a rolled-back ingest: each committed change is one
    persistent JSON message with message_id its id, routing key <dataset>.<op>, the lake's
    identity in its headers; a queue bound to `#.d` gets the delete only, and what no binding
    takes goes to lake.changes.unrouted; the cursor (name amqp) is at the last change."""
    bind(broker.url, "t-all", f"{location_dataset}.*")
    bind(broker.url, "t-deletes", "#.d")
    bind(broker.url, "lake.changes.unrouted")  # emptied: earlier tests' leftovers
    for i in range(3):
        with conn.transaction():
            conn.execute("SELECT lake.act_as('u1')")
            conn.execute("SELECT lake.ingest(%s, %s)", [location_dataset, Jsonb([point(i + 1)])])
    with pytest.raises(RuntimeError), conn.transaction():
        conn.execute("SELECT lake.act_as('u1')")
        conn.execute("SELECT lake.ingest(%s, %s)", [location_dataset, Jsonb([point(9)])])
        raise RuntimeError("roll back")
    with conn.transaction():
        conn.execute("SELECT lake.act_as('u1')")
        conn.execute(
            "UPDATE user_data.location_history SET doc = doc || '{\"lat\": 2}'"
            " WHERE id = (SELECT min(id) FROM user_data.location_history)"
        )
        conn.execute(
            "DELETE FROM user_data.location_history"
            " WHERE id = (SELECT max(id) FROM user_data.location_history)"
        )
    changes = committed_changes(conn)
    assert [op for _, _, op in changes] == ["c", "c", "c", "u", "d"]

    running = Running(AmqpBridge(db, broker.url, poll_s=0.2))
    try:
        wait_for(lambda: cursor(conn, amqp.NAME) == changes[-1][0])
    finally:
        running.close()

    got = drain(broker.url, "t-all")
    assert [int(m.message_id) for m in got] == [c[0] for c in changes]
    assert [m.routing_key for m in got] == [f"{d}.{op}" for _, d, op in changes]
    assert all(m.persistent and m.content_type == "application/json" for m in got)
    identity = conn.execute(sql("lake_identity")).fetchone()
    assert identity is not None
    assert {m.headers["lake"] for m in got} == {str(identity[0])}
    assert [m.body["id"] for m in got] == [c[0] for c in changes]
    assert [m.body["op"] for m in got] == ["c", "c", "c", "u", "d"]
    assert got[3].body["after"]["doc"]["lat"] == 2
    assert {m.headers["user_id"] for m in got} == {"u1"}

    deletes = drain(broker.url, "t-deletes")
    assert [int(m.message_id) for m in deletes] == [changes[-1][0]]
    assert drain(broker.url, "lake.changes.unrouted") == []

    # A change of a dataset no queue is bound for goes to the alternate exchange's queue.
    conn.execute("SELECT lake.create_dataset('trips', %s)", [Jsonb(LOCATION_SCHEMA)])
    with conn.transaction():
        conn.execute("SELECT lake.act_as('u2')")
        conn.execute("SELECT lake.ingest('trips', %s)", [Jsonb([point(5)])])
    late = committed_changes(conn)[-1][0]
    running = Running(AmqpBridge(db, broker.url, poll_s=0.2))
    try:
        wait_for(lambda: cursor(conn, amqp.NAME) == late)
    finally:
        running.close()
    unrouted = drain(broker.url, "lake.changes.unrouted")
    assert [(int(m.message_id), m.routing_key) for m in unrouted] == [(late, "trips.c")]
    assert drain(broker.url, "t-all") == drain(broker.url, "t-deletes") == []


class CuttableProxy:
    """A TCP proxy in front of the broker whose connections can be cut at once."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:  # no longer open: cut() counts live connections only
                self._open = [s for s in self._open if s not in (src, dst)]

    def cut(self) -> int:
        """Cut every connection through the proxy; returns how many there were."""
        with self._lock:
            gone, self._open = self._open, []
        for s in gone:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(gone) // 2

    def close(self) -> None:
        self._listener.close()
        self.cut()


def test_faults_lose_nothing_and_keep_each_datasets_order(
    conn: Conn, db: str, location_dataset: str, broker: Broker
) -> None:
    """Two writers commit at least 3 000 transactions into two datasets, a tenth rolled back,
    and go on while `lake bridge --amqp` (its own process, through a proxy) is killed with
    SIGKILL and restarted, the broker is killed with SIGKILL and restarted, and the publisher's
    connection is cut. Then a durable queue holds every committed change at least once,
    nothing else; by first arrival each dataset's changes are in commit order; repeats carry
    the same message_id and body. The counts are printed."""
    conn.execute("SELECT lake.create_dataset('places', %s)", [Jsonb(LOCATION_SCHEMA)])
    datasets = [location_dataset, "places"]
    bind(broker.url, "t-faults", "#")
    proxy = CuttableProxy(broker.settings.amqp_port)
    url = broker.url.replace(f":{broker.settings.amqp_port}/", f":{proxy.port}/")
    env = {**os.environ, "LAKE_DSN": db, "LAKE_AMQP_URL": url}

    log = broker.settings.home / "publisher.log"

    def spawn() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    # Each writer commits at least `per_writer` transactions and goes on until the faults are
    # done: every fault happens while changes are being committed and published.
    per_writer = 1500
    faults_done = threading.Event()
    committed = [0, 0]
    rolled_back = [0, 0]

    def write(k: int) -> None:
        with psycopg.connect(db, autocommit=True) as w:
            i = 0
            while i < per_writer or not faults_done.is_set():
                dataset = datasets[(i + k) % 2]
                try:
                    with w.transaction():
                        w.execute("SELECT lake.act_as(%s)", [f"u{(i * 2 + k) % 10}"])
                        w.execute("SELECT lake.ingest(%s, %s)", [dataset, Jsonb([point(i % 50)])])
                        if i % 10 == 9:
                            raise RuntimeError("roll back")
                    committed[k] += 1
                except RuntimeError:
                    rolled_back[k] += 1
                i += 1

    def published() -> int:
        # A publisher that exited (rather than retrying) fails the test at once, with its log.
        assert bridge.poll() is None, log.read_text(errors="replace")[-3000:]
        return cursor(conn, amqp.NAME)

    bridge = spawn()
    writers = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    faults: dict[str, int] = {}
    try:
        for t in writers:
            t.start()
        # The publisher killed mid-stream, and started again.
        wait_for(lambda: sum(committed) >= 500 and published() > 0, 120)
        bridge.kill()
        assert bridge.wait(10) == -9
        faults["publisher killed"] = 1
        bridge = spawn()
        # The broker killed mid-stream (the publisher has published since), and started again.
        before = published()
        wait_for(lambda: published() > before and sum(committed) >= 1200, 120)
        assert broker.kill() is not None
        faults["broker killed"] = 1
        time.sleep(1.0)  # the writers go on meanwhile
        broker.start()
        # The publisher's connection cut once it is back.
        before = published()
        wait_for(lambda: published() > before, 120)
        faults["connections cut"] = proxy.cut()
        assert faults["connections cut"] >= 1
        faults_done.set()
        for t in writers:
            t.join(300)
        assert not any(t.is_alive() for t in writers)
        changes = committed_changes(conn)
        wait_for(lambda: published() == changes[-1][0], 180)
    finally:
        faults_done.set()
        bridge.terminate()
        bridge.wait(30)
        proxy.close()

    messages = drain(broker.url, "t-faults")
    ids = [c[0] for c in changes]
    # Nothing of rolled-back work was captured (one change per committed ingest), and all the
    # committed work was.
    transactions = sum(committed) + sum(rolled_back)
    assert transactions >= 2 * per_writer
    assert sum(rolled_back) >= transactions // 10 - 2
    assert len(ids) == sum(committed)
    first: dict[str, Message] = {}
    for m in messages:
        if m.message_id in first:
            # A repeat: the same change, recognisable by its message_id.
            assert m.body == first[m.message_id].body
        else:
            first[m.message_id] = m
    # Every committed change at least once, and nothing else.
    assert sorted(int(i) for i in first) == ids
    dataset_of = {str(i): d for i, d, _ in changes}
    for m in first.values():
        assert m.routing_key == f"{dataset_of[m.message_id]}.c"
    # Each dataset's changes in commit order, by first arrival.
    for dataset in datasets:
        arrived = [int(i) for i in first if dataset_of[i] == dataset]
        assert arrived == sorted(arrived)
        assert len(arrived) == sum(1 for c in changes if c[1] == dataset)
    print(
        f"\nRabbitMQ faults ({', '.join(f'{k}: {v}' for k, v in faults.items())}):"
        f" {transactions} transactions, {sum(committed)} committed, {sum(rolled_back)} rolled"
        f" back; {len(messages)} messages, {len(first)} distinct changes,"
        f" {len(messages) - len(first)} repeats"
    )


def test_the_cli_refuses_an_unknown_server_and_a_url_that_is_not_amqp() -> None:
    """`lake up --with kafka` is a usage error (exit 2) before anything starts; `lake bridge
    --amqp http://…` says what an AMQP URL looks like (exit 1), before connecting anywhere."""
    cli = [sys.executable, "-m", "lake_client.cli"]
    env = {**os.environ, "LAKE_HOME": "/nonexistent/lake-home", "NO_COLOR": "1"}
    up = subprocess.run([*cli, "up", "--with", "kafka"], env=env, capture_output=True, text=True)
    assert up.returncode == 2
    assert "unknown server 'kafka'" in up.stderr
    bridge = subprocess.run(
        [*cli, "bridge", "--amqp", "http://127.0.0.1:1/"], env=env, capture_output=True, text=True
    )
    assert bridge.returncode == 1
    assert "invalid AMQP URL" in bridge.stderr
    assert not os.path.exists("/nonexistent/lake-home")
