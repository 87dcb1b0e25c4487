"""PostgreSQL restarted under a running bridge: once crashed (immediate shutdown, crash recovery)
and once shut down cleanly, while two writers commit and roll back. Nothing committed is lost on
the way to Redis, nothing rolled back arrives, and every user who changed is invalidated.

The restarts need a server of the test's own: this module starts a private embedded cluster
(lake_client.local) under /tmp on free ports, so the suite's shared server is never restarted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb

from lake_client import local, migrate
from lake_client.cache import LakeCache
from lake_client.config import PG_ENV_VARS, Settings
from tests.conftest import LOCATION_SCHEMA, private_settings, server_folder
from tests.redis_cluster import free_ports
from tests.test_bridge import change_ids, stream_ids, wait_for

USERS = [f"u{i}" for i in range(10)]
ONLY_ROLLED_BACK = "u10"  # writes, but every one of its transactions is rolled back
PER_WRITER = 1500


@pytest.fixture(scope="module")
def private() -> Iterator[Settings]:
    """A private embedded PostgreSQL + Redis, migrated, with the location_history dataset."""
    base = server_folder("lake-restart-")
    s = private_settings(base, *free_ports(2))
    try:
        local.up(s, quiet=True)
        migrate.upgrade(s.dsn())
        with psycopg.connect(s.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT lake.create_dataset('location_history', %s)", [Jsonb(LOCATION_SCHEMA)]
            )
        yield s
    finally:
        local.down(s)
        shutil.rmtree(base, ignore_errors=True)


def _restart(s: Settings, sig: signal.Signals) -> None:
    """Stop the private PostgreSQL with `sig` (SIGQUIT: immediate, recovery at the next start;
    SIGINT: fast, clean) and start it again."""
    pid_file = s.home / "pg" / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, sig)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 60)
    local.up(s, quiet=True)


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """Connect, waiting out a restarting server."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return psycopg.connect(dsn, connect_timeout=2)
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.2)


class Writer(threading.Thread):
    """PER_WRITER transactions of one record each; every tenth, and all of ONLY_ROLLED_BACK's,
    rolled back. Counts what was acknowledged, and the commits whose outcome the restart left
    unknown (the connection died in COMMIT)."""

    def __init__(self, dsn: str, k: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.k = dsn, k
        self.acked = 0
        self.in_doubt = 0
        self.reconnects = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _write(self) -> None:
        conn = _connect(self.dsn)
        for i in range(PER_WRITER):
            rollback = i % 10 == 9
            user = ONLY_ROLLED_BACK if rollback and i % 20 == 19 else USERS[(i + self.k) % 10]
            committing = False
            try:
                conn.execute("SELECT lake.act_as(%s)", [user])
                conn.execute(
                    "INSERT INTO user_data.location_history (ts, doc)"
                    " SELECT t, jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'lat', %s, 'lon', 2)"
                    " FROM date_trunc('second', now()) AS t",
                    [0 if rollback else 1],
                )
                if rollback:
                    conn.rollback()
                    continue
                committing = True
                conn.commit()
                self.acked += 1
            except psycopg.OperationalError:
                self.in_doubt += committing
                conn.close()
                conn = _connect(self.dsn)
                self.reconnects += 1
        conn.close()


def test_postgres_restarts_mid_stream_lose_nothing(private: Settings) -> None:
    dsn = private.dsn()
    client = redis.Redis.from_url(private.redis_url())
    cache = LakeCache(client)
    for user in [*USERS, ONLY_ROLLED_BACK]:
        cache.put("location_history", user, "recent", "before")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PG_ENV_VARS and k not in ("LAKE_DSN", "LAKE_REDIS_URL")
    }
    env.update(
        LAKE_HOME=str(private.home),
        LAKE_PG_PORT=str(private.pg_port),
        LAKE_REDIS_PORT=str(private.redis_port),
        LAKE_DATABASE=private.database,
    )
    bridge = subprocess.Popen(
        [sys.executable, "-m", "lake_client.cli", "bridge", "--poll", "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    writers = [Writer(dsn, k) for k in (0, 1)]
    try:
        for w in writers:
            w.start()
        for at, sig in ((600, signal.SIGQUIT), (1500, signal.SIGINT)):
            wait_for(lambda n=at: sum(w.acked for w in writers) >= n, 120)
            _restart(private, sig)
        for w in writers:
            w.join(300)
            assert w.error is None, w.error
        assert all(w.reconnects >= 2 for w in writers)  # both restarts hit both writers
        acked = sum(w.acked for w in writers)
        in_doubt = sum(w.in_doubt for w in writers)
        with psycopg.connect(dsn, autocommit=True) as conn:
            ids = change_ids(conn)
            stored = conn.execute("SELECT count(*) FROM user_data.location_history").fetchone()
            rolled_back = conn.execute(
                "SELECT count(*) FROM lake.data_changes WHERE after->'doc'->>'lat' = '0'"
            ).fetchone()
            changed = {
                str(r[0]) for r in conn.execute("SELECT DISTINCT user_id FROM lake.data_changes")
            }
        # Every acknowledged commit survived the crash; the unknown ones either way.
        assert acked <= len(ids) <= acked + in_doubt
        assert stored == (len(ids),) and rolled_back == (0,)
        assert changed == set(USERS)
        wait_for(lambda: ids[-1] in set(stream_ids(client, "lake:changes")), 120)
        arrived = stream_ids(client, "lake:changes")
        assert arrived == ids  # every committed change once, in commit order; nothing rolled back
        for user in USERS:
            assert cache.get("location_history", user, "recent") is None, user
        assert cache.get("location_history", ONLY_ROLLED_BACK, "recent") == "before"
    finally:
        bridge.kill()
        bridge.wait(10)
        for w in writers:
            w.join(60)
        client.close()
