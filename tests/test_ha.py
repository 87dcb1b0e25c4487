"""A highly available lake (local.ha: Patroni, etcd, a primary and two synchronous replicas) of
the tests' own, on free ports: the primary killed during 16 writers' commits loses no
acknowledged commit, a killed replica's readers go on elsewhere, and a lake without etcd has no
primary at all (and says so). Run alone with `pytest -m ha`."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb

from lake_client import migrate
from lake_client.bridge import Bridge
from lake_client.config import Settings
from lake_client.grpc_server import _Pool
from lake_client.local import ha, redis_server
from lake_client.local.processes import Paths, server_user, silent
from lake_client.local.tls import door_files
from lake_client.server import make_server
from lake_client.session import RetryPolicy
from lake_client.transport import client_context
from tests.conftest import LOCATION_SCHEMA, point, private_settings, seal, server_folder
from tests.redis_cluster import free_ports

pytestmark = [pytest.mark.ha, pytest.mark.slow]

Conn = psycopg.Connection[tuple[object, ...]]
WRITERS = 16
ROLLBACK_EVERY = 10  # a tenth of the writers' transactions roll back
STREAM = "ha:changes"
LAUNCHER = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"


@dataclass
class HaLake:
    settings: Settings
    layout: ha.Layout

    def conn(self) -> Conn:
        return psycopg.connect(self.settings.dsn(), autocommit=True)

    def node_conn(self, node: int) -> Conn:
        dsn = f"host={self.settings.socket_dir} port={self.layout.pg_ports[node]} user=postgres"
        return psycopg.connect(f"{dsn} dbname={self.settings.database}", autocommit=True)


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def lake() -> Iterator[HaLake]:
    base = server_folder("lake-ha-")
    pg, rest, etcd, (redis_port,) = (free_ports(n) for n in (3, 3, 2, 1))
    s = private_settings(base, pg[0], redis_port)
    layout = ha.Layout(s.home, tuple(pg), tuple(rest), (etcd[0], etcd[1]))
    s.home.mkdir(mode=0o755)
    try:
        s = ha.up(s, 2, silent, layout=layout)
        redis_server.up(s, silent)
        migrate.upgrade(s.dsn())
        with psycopg.connect(s.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT lake.create_dataset('location_history', %s)", [Jsonb(LOCATION_SCHEMA)]
            )
        yield HaLake(s, layout)
    finally:
        ha.down(s)
        redis_server.down(s)
        shutil.rmtree(base, ignore_errors=True)


def test_the_primary_replicates_synchronously_and_cron_runs_only_there(lake: HaLake) -> None:
    leader = ha.leader(lake.layout)
    assert leader is not None
    with lake.node_conn(leader) as conn:
        states = [r[0] for r in conn.execute("SELECT sync_state FROM pg_stat_replication")]
        assert sorted(states) == ["async", "sync"]
        # TLS on the replication connections
        assert conn.execute(
            "SELECT bool_and(s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
        ).fetchone() == (True,)
        assert conn.execute(LAUNCHER).fetchone() == (1,)
    for node in set(range(lake.layout.nodes)) - {leader}:
        with lake.node_conn(node) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            # pg_cron's launcher starts once recovery has finished: a standby runs no job.
            assert conn.execute(LAUNCHER).fetchone() == (0,)
            # the lake's settings, those that Patroni keeps in etcd too
            settings = "SELECT current_setting('max_locks_per_transaction'),"
            settings += " current_setting('shared_preload_libraries')"
            assert conn.execute(settings).fetchone() == ("256", "pg_cron,timescaledb")


@dataclass
class Writers:
    """WRITERS threads committing one record each per transaction (every ROLLBACK_EVERY-th
    rolled back instead), through the client's retry policy; each attempt tags its record."""

    settings: Settings
    acked: set[str] = field(default_factory=set)  # the commit returned
    rolled_back: set[str] = field(default_factory=set)
    in_doubt: set[str] = field(default_factory=set)  # the COMMIT raised: it may have happened
    retries: int = 0
    acked_at: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._run, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        return threads

    def _run(self, writer: int) -> None:
        policy = RetryPolicy(attempts=12, first_delay=0.25)
        conn: list[Conn] = []
        counter = itertools.count()

        def recover() -> None:
            if conn and (conn[0].broken or conn[0].closed):
                conn.pop().close()
            elif conn:
                conn[0].rollback()

        def once(attempt: int) -> None:
            if attempt > 1:
                with self.lock:
                    self.retries += 1
            if not conn:
                conn.append(psycopg.connect(self.settings.dsn(), connect_timeout=5))
            c = conn[0]
            i = next(counter)
            tag = f"w{writer}-{i}"
            c.execute("SELECT lake.act_as(%s)", [f"user{writer}"])
            c.execute(
                "SELECT lake.ingest('location_history', %s)", [Jsonb([{**point(1), "tag": tag}])]
            )
            if i % ROLLBACK_EVERY == ROLLBACK_EVERY - 1:
                c.rollback()
                with self.lock:
                    self.rolled_back.add(tag)
                return
            try:
                c.commit()
            except psycopg.Error:
                with self.lock:
                    self.in_doubt.add(tag)
                raise
            with self.lock:
                self.acked.add(tag)
                self.acked_at.append(time.monotonic())

        try:
            while not self.stop.is_set():
                policy.run(once, recover)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            for c in conn:
                c.close()

    def acked_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for t in self.acked_at if t > moment)


def test_the_primary_killed_during_16_writers_commits_loses_nothing(
    lake: HaLake, capsys: pytest.CaptureFixture[str]
) -> None:
    s, layout = lake.settings, lake.layout
    client = redis.Redis.from_url(s.redis_url())
    bridge = Bridge(s.dsn(), client, name="ha", stream=STREAM, cache_prefix="ha", poll_s=0.5)
    bridge_stop = threading.Event()
    bridge_thread = threading.Thread(target=bridge.run, args=(bridge_stop,), daemon=True)
    bridge_thread.start()
    pool = _Pool(s.dsn(), 2)  # lake grpc's connections
    pool.put(pool.get())
    writers = Writers(s)
    threads = writers.start()
    old = ha.leader(layout)
    assert old is not None
    try:
        wait_for(lambda: writers.acked_since(0) >= 300, 60, "300 commits before the kill")
        killed_at = time.monotonic()
        ha.kill_node(layout, old)
        wait_for(lambda: ha.leader(layout) not in (None, old), 60, "a new leader")
        new = ha.leader(layout)
        wait_for(lambda: writers.acked_since(killed_at) >= 300, 60, "300 commits after it")
    finally:
        writers.stop.set()
        for t in threads:
            t.join(60)
    assert not writers.errors, writers.errors[:3]
    assert writers.retries > 0  # the writers lost the primary and went on through the policy
    assert new is not None and new != old

    with lake.conn() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert conn.execute("SELECT current_setting('port')::int").fetchone() == (
            layout.pg_ports[new],
        )
        rows = conn.execute(
            "SELECT doc->>'tag', count(*) FROM user_data.location_history"
            " WHERE doc ? 'tag' GROUP BY 1"
        ).fetchall()
        present = {str(tag): int(str(n)) for tag, n in rows}
        assert writers.acked <= present.keys(), sorted(writers.acked - present.keys())[:5]
        assert not writers.rolled_back & present.keys()
        assert present.keys() <= writers.acked | writers.in_doubt
        assert set(present.values()) == {1}
        # pg_cron's launcher started with the promotion: the jobs run on the new primary.
        wait_for(lambda: conn.execute(LAUNCHER).fetchone() == (1,), 30, "pg_cron's launcher")
        # The audit chain verifies; the change stream holds every row once, in commit order.
        seal(conn)
        assert conn.execute("SELECT ok FROM lake.verify_audit_chain()").fetchone() == (True,)
        ids = [int(str(r[0])) for r in conn.execute("SELECT id FROM lake.data_changes ORDER BY id")]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        changed = conn.execute(
            "SELECT count(DISTINCT record_id) FROM lake.data_changes"
            " WHERE dataset = 'location_history' AND op = 'c'"
        ).fetchone()
        stored = conn.execute("SELECT count(*) FROM user_data.location_history").fetchone()
        assert changed == stored

    # lake grpc's pool hands out a connection to the new primary, not the one the old lost.
    conn = pool.get()
    assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == {"pg_is_in_recovery": False}
    pool.put(conn)
    pool.close()

    # The bridge reconnected to the new primary and delivered every committed change.
    wait_for(lambda: bridge.cursor == ids[-1], 60, "the bridge to catch up")
    bridge_stop.set()
    bridge_thread.join(30)
    streamed = [int(f[b"id"]) for _, f in client.xrange(STREAM)]
    assert streamed == ids
    client.close()

    # The old primary rejoins as a replica (pg_rewind, or a new copy) and has every commit.
    ha.start_node(s, layout, old, silent)
    ha.wait_ready(layout, 120)
    assert ha.leader(layout) == new
    with lake.node_conn(old) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        tagged = "SELECT count(*) FROM user_data.location_history WHERE doc ? 'tag'"
        wait_for(lambda: conn.execute(tagged).fetchone() == (len(present),), 30, "the old primary")
    with capsys.disabled():
        print(
            f"\nfailover: {len(writers.acked)} commits acknowledged, {len(writers.rolled_back)}"
            f" rolled back, {len(writers.in_doubt)} in doubt ({len(present)} stored),"
            f" {writers.retries} retries, {len(ids)} changes streamed; node{old} -> node{new}"
        )


def test_a_killed_replica_s_readers_go_on_elsewhere(lake: HaLake) -> None:
    s, layout = lake.settings, lake.layout
    leader = ha.leader(layout)
    replica = next(n for n in range(layout.nodes) if n != leader)
    read = ha.read_dsn(s)
    with lake.conn() as conn:
        with conn.transaction():
            conn.execute("SELECT lake.act_as('reader')")
            conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb([point(3)])])
        expected = conn.execute("SELECT count(*) FROM user_data.location_history").fetchone()
    ha.kill_node(layout, replica)
    for _ in range(3):  # each connection goes to a node that answers: a standby while one does
        with psycopg.connect(read, autocommit=True) as conn:
            port = conn.execute("SELECT current_setting('port')::int").fetchone()
            assert port is not None and port[0] != layout.pg_ports[replica]
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            wait_for(
                lambda c=conn: (
                    c.execute(  # type: ignore[misc]
                        "SELECT count(*) FROM user_data.location_history"
                    ).fetchone()
                    == expected
                ),
                10,
                "the row on the replica",
            )
    ha.start_node(s, layout, replica, silent)
    ha.wait_ready(layout, 120)
    with psycopg.connect(
        f"host={s.socket_dir} port={layout.pg_ports[replica]} user=postgres dbname={s.database}"
    ) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def _ready(base: str, ca: Settings) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(
            base + "/health/ready", timeout=10, context=client_context(ca.ca_file)
        ) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_without_etcd_no_node_is_writable_and_health_says_so(lake: HaLake) -> None:
    s, layout = lake.settings, lake.layout
    server = make_server("127.0.0.1", 0, s.dsn(), s.redis_url(), door_files(s.home, "http", silent))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{server.server_port}"
    try:
        assert _ready(base, s)[0] == 200
        ha.stop_etcd(layout)

        def primaries() -> list[int]:
            found = []
            for node in range(layout.nodes):
                try:
                    with lake.node_conn(node) as conn:
                        if conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,):
                            found.append(node)
                except psycopg.OperationalError:
                    pass
            return found

        # The primary demotes itself once it cannot renew its key; no other node promotes.
        wait_for(lambda: not primaries(), 60, "the primary to demote itself")
        for _ in range(5):
            assert primaries() == []
            time.sleep(0.5)
        code, body = _ready(base, s)
        assert code == 503 and body["status"] == "fail"
        assert "no primary" in body["postgres"], body
        assert body["redis"] == "ok"
        ha.start_etcd(layout, server_user(Paths(s.home)), silent)
        wait_for(lambda: len(primaries()) == 1, 90, "a primary again")
        wait_for(lambda: _ready(base, s)[0] == 200, 30, "ready again")
    finally:
        server.shutdown()
        server.server_close()
        if ha.etcd_pid(layout) is None:
            ha.start_etcd(layout, server_user(Paths(s.home)), silent)
